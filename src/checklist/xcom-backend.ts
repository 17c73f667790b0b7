import type { StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import { CLASS, connEnvName, secretNames } from '../spec/values.ts';
import { APPLIED_BY_STEP_2, APPLIED_WITH, commonEnv, identityGap, identitySummary, renderedValues, type Cloud } from './configured.ts';

const PATH_ENV = 'AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH';

const TYPES = {
  s3: { scheme: 's3', connType: 'aws', cloud: 'aws', label: 'bucket', packages: ['apache-airflow-providers-amazon[s3fs]', 'apache-airflow-providers-common-io'] },
  'azure-blob': { scheme: 'abfs', connType: 'wasb', cloud: 'azure', label: 'container', packages: ['apache-airflow-providers-microsoft-azure', 'adlfs', 'apache-airflow-providers-common-io'] },
  gcs: { scheme: 'gs', connType: 'google_cloud_platform', cloud: 'gcp', label: 'bucket', packages: ['apache-airflow-providers-google', 'gcsfs', 'apache-airflow-providers-common-io'] },
} as const satisfies Record<string, { scheme: string; connType: string; cloud: Cloud; label: string; packages: string[] }>;

/** Step 4: checks the XCom object-storage part of the values step 2 applies. Its connection carries no credential, so no Secret. */
export const xcomBackend: StepHandler = {
  id: 'xcom-backend',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const x = spec.xcomBackend;
    if (x.type === 'none') return { status: 'skipped', summary: 'xcomBackend.type is none: tasks on remote agents cannot pass XCom values through the orchestration plane' };
    const t = TYPES[x.type];
    const where = x.type === 'azure-blob' ? x.container : x.bucket;

    if (renderedValues(ctx).xcomBackend !== CLASS.xcomObjectStorage) {
      throw new StepFailure(`rendered values do not set xcomBackend to ${CLASS.xcomObjectStorage}`, { field: 'xcomBackend.type' });
    }
    const path = commonEnv(ctx, PATH_ENV);
    const m = path ? /^([a-z0-9]+):\/\/([^@/]+)@([^/]+)(?:\/(.*))?$/.exec(path) : null;
    if (!m || m[1] !== t.scheme) throw new StepFailure(`${PATH_ENV} is ${path ?? 'missing'}, expected a ${t.scheme}:// URL`, { field: 'xcomBackend.type' });
    if (m[2] !== x.connId) throw new StepFailure(`${PATH_ENV} names connection ${m[2]}, but xcomBackend.connId is ${x.connId}`, { field: 'xcomBackend.connId' });
    if (m[3] !== where) throw new StepFailure(`${PATH_ENV} points at ${m[3]}, but the spec names ${t.label} ${where}`, { field: x.type === 'azure-blob' ? 'xcomBackend.container' : 'xcomBackend.bucket' });

    const connEnv = connEnvName(x.connId);
    const git = secretNames(spec).gitConnectionEnv;
    if (git === connEnv) {
      throw new StepFailure(`connection id ${x.connId} is used both for XCom storage and for the Git DAG bundle (${connEnv} would be defined twice)`, { field: 'xcomBackend.connId', hint: 'give the XCom backend its own connection id, e.g. aws_xcom' });
    }
    const connType = connTypeOf(commonEnv(ctx, connEnv));
    if (connType !== t.connType) {
      throw new StepFailure(`connection ${x.connId} for XCom storage is ${connType ? `of type ${connType}` : 'not defined in commonEnv'}, expected ${t.connType}`, { field: 'xcomBackend.connId' });
    }

    const warnings: string[] = [];
    const gap = identityGap(ctx, t.cloud, `XCom ${x.type} backend`);
    if (gap) warnings.push(gap);

    const details = [
      `threshold ${x.threshold} bytes`,
      x.compression ? `${x.compression} compression` : 'no compression',
      `connection ${x.connId} (${t.connType}${x.type === 's3' && x.region ? `, region ${x.region}` : x.type === 'azure-blob' ? `, account ${x.storageAccount}` : ''})`,
    ];
    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `${CLASS.xcomObjectStorage} → ${path} (${t.label} ${where}, prefix '${x.prefix}'), ${details.join(', ')}; ${identitySummary(ctx)}; ${APPLIED_BY_STEP_2}`,
      warnings,
      output: { classPath: CLASS.xcomObjectStorage, path, [t.label]: where, prefix: x.prefix, connId: x.connId, connType: t.connType, threshold: x.threshold, compression: x.compression, packages: t.packages },
      appliedWith: APPLIED_WITH,
    };
  },
};

function connTypeOf(json: string | undefined): string | undefined {
  if (!json) return undefined;
  try {
    return (JSON.parse(json) as { conn_type?: string }).conn_type;
  } catch {
    return undefined;
  }
}
