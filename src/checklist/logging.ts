import { parse as parseYaml } from 'yaml';
import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import { connEnvName, OPENLINEAGE_KEY, secretNames } from '../spec/values.ts';
import { errorMessage } from '../redact.ts';
import type { AstroDeployment } from '../infra/types.ts';
import { APPLIED_BY_STEP_2, APPLIED_WITH, commonEnv, identityGap, identitySummary, renderedValues, type Cloud } from './configured.ts';
import { planSecret, PREPARED_SECRETS, type PreparedSecret } from './secrets.ts';

type Logging = StepContext['spec']['logging'];
type ObjectStorage = Extract<Logging, { mode: 'object-storage' }>;
type Sidecar = Extract<Logging, { mode: 'sidecar' | 'external-link' }>;

/** Remote log folder scheme → the connection type and cloud identity it needs. */
const STORAGE: Array<{ re: RegExp; connTypes: string[]; cloud: Cloud }> = [
  { re: /^s3:\/\//, connTypes: ['aws'], cloud: 'aws' },
  { re: /^gs:\/\//, connTypes: ['google_cloud_platform'], cloud: 'gcp' },
  { re: /^(wasbs?-|abfss?:\/\/)/, connTypes: ['wasb', 'azure', 'azure_data_lake'], cloud: 'azure' },
];

/** Step 6: task logs, OpenLineage (with its api-key Secret) and Sentinel, as applied by step 2's upgrade. */
export const logging: StepHandler = {
  id: 'logging',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const warnings: string[] = [];
    const parts: string[] = [];
    const output: Record<string, unknown> = {};
    const secrets: string[] = [];
    const prepared: PreparedSecret[] = [];

    const l = spec.logging;
    if (l.mode === 'none') {
      warnings.push('logging.mode is none: task logs stay in the agent pods and are lost when the pods end (reference section 5)');
      parts.push('task logs stay in the agent pods');
    } else if (l.mode === 'object-storage') {
      parts.push(await objectStorage(ctx, l, warnings));
    } else {
      parts.push(await sidecar(ctx, l, warnings));
    }
    output.logging = { mode: l.mode, ...(l.mode === 'object-storage' ? { remoteBaseLogFolder: l.remoteBaseLogFolder, connId: l.connId ?? null } : {}), ...(l.mode === 'sidecar' || l.mode === 'external-link' ? { image: l.image, logsPath: l.logsPath } : {}) };

    const values = renderedValues(ctx) as { openLineage?: { enabled?: boolean; apiKeySecret?: string; url?: string; namespace?: string }; sentinel?: { enabled?: boolean; image?: string } };
    const ol = spec.openLineage;
    if (ol.enabled) {
      const name = secretNames(spec).openLineage;
      if (!values.openLineage?.enabled || values.openLineage.apiKeySecret !== name) {
        throw new StepFailure(`rendered openLineage does not reference Secret ${name}`, { field: 'openLineage.enabled' });
      }
      const source = ol.apiKey ? 'openLineage.apiKey' : 'the Deployment API token';
      // prepared only: step 2 writes it after its approval
      const secret = await planSecret(ctx, 'openlineage');
      prepared.push(secret);
      const action = secret.action;
      secrets.push(name);
      parts.push(`OpenLineage → ${values.openLineage.url} namespace ${values.openLineage.namespace}, Secret ${name} (key ${OPENLINEAGE_KEY} from ${source}, content sha256:${secret.hash}, ${action})`);
      const olFlag = await deploymentOpenLineageFlag(ctx, warnings);
      if (olFlag !== 'enabled') {
        warnings.push(`OpenLineage from the orchestration plane also needs the Deployment environment variable OPENLINEAGE_DISABLED=False (Astro UI or API)${olFlag === 'missing' ? ' (the Deployment does not set it)' : olFlag === 'other' ? ' (the Deployment sets it to another value)' : ''}; re-bot does not change the Deployment`);
      }
      output.openLineage = { enabled: true, url: values.openLineage.url, namespace: values.openLineage.namespace, secret: name, secretKey: OPENLINEAGE_KEY, secretAction: action };
    } else {
      parts.push('OpenLineage off');
      output.openLineage = { enabled: false };
    }

    const sentinelName = `${spec.cluster.resourceNamePrefix}-sentinel`;
    if (values.sentinel?.enabled !== spec.sentinel.enabled) throw new StepFailure('rendered sentinel.enabled differs from the spec', { field: 'sentinel.enabled' });
    parts.push(spec.sentinel.enabled ? `Sentinel on (Deployment ${sentinelName}, ${spec.sentinel.image ?? 'chart default image'})` : 'Sentinel off');
    output.sentinel = { enabled: spec.sentinel.enabled, deployment: spec.sentinel.enabled ? sentinelName : null, image: spec.sentinel.image ?? null };
    output.secrets = secrets;
    output[PREPARED_SECRETS] = prepared;

    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `${parts.join('; ')}; ${APPLIED_BY_STEP_2}`,
      warnings,
      output,
      appliedWith: APPLIED_WITH,
    };
  },
};

async function objectStorage(ctx: StepContext, l: ObjectStorage, warnings: string[]): Promise<string> {
  const folder = l.remoteBaseLogFolder;
  if (commonEnv(ctx, 'AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER') !== folder || commonEnv(ctx, 'AIRFLOW__LOGGING__REMOTE_LOGGING') !== 'True') {
    throw new StepFailure('rendered commonEnv does not enable remote logging to the configured folder', { field: 'logging.remoteBaseLogFolder' });
  }
  const storage = STORAGE.find((s) => s.re.test(folder))!;
  if (l.region && storage.cloud !== 'aws') warnings.push(`logging.region ${l.region} only applies to S3 log folders; it is ignored for ${folder}`);
  const gap = identityGap(ctx, storage.cloud, `remote logging to ${folder}`);
  if (gap) warnings.push(gap);

  let via = 'default credentials';
  if (l.connId) {
    const defined = connectionType(ctx, l.connId);
    if (defined !== undefined && !storage.connTypes.includes(defined)) {
      throw new StepFailure(`logging.connId ${l.connId} is a ${defined} connection in the agent env, but ${folder} needs ${storage.connTypes.join(' or ')}`, { field: 'logging.connId' });
    }
    if (defined === undefined) {
      const b = ctx.spec.secretsBackend;
      const fromBackend = b.provider !== 'none' && (b.provider === 'hashicorp-vault' ? b.connectionsPath : b.connectionsPrefix) !== null;
      if (!fromBackend) {
        warnings.push(`logging.connId ${l.connId} is not defined in the agent env (${connEnvName(l.connId)}) and no secrets backend serves Connections: it must exist as a Connection of the Astro Deployment, otherwise task logs are not uploaded`);
      }
      via = `connection ${l.connId} (${fromBackend ? 'from the secrets backend' : 'not defined by re-bot'})`;
    } else {
      via = `connection ${l.connId} (${defined})`;
    }
  }

  // the Airflow UI only shows these logs when the Deployment's task log bucket is the same URL (reference 5.3)
  const astro = await deploymentRemoteExecution(ctx, warnings);
  if (astro === null) warnings.push(`the Astro Deployment's task log bucket must be ${folder} for the Airflow UI to show these logs (not checked: no Astro API configured)`);
  else if (astro && astro.taskLogBucket !== folder) warnings.push(`the Astro Deployment's task log bucket is ${astro.taskLogBucket ?? 'not set'}, but the agents write to ${folder}: the Airflow UI will not show these logs until they match`);

  return `remote logging to ${folder} via ${via}${l.region ? ` in ${l.region}` : ''}, ${identitySummary(ctx)}`;
}

async function sidecar(ctx: StepContext, l: Sidecar, warnings: string[]): Promise<string> {
  const v = renderedValues(ctx) as { loggingSidecar?: { enabled?: boolean; image?: string } };
  if (!v.loggingSidecar?.enabled || v.loggingSidecar.image !== l.image) throw new StepFailure('rendered loggingSidecar is not enabled with the configured image', { field: 'logging.image' });
  let config: unknown;
  try {
    config = parseYaml(l.config);
  } catch (err) {
    throw new StepFailure(`logging.config is not valid YAML: ${errorMessage(err).split('\n')[0]}`, { field: 'logging.config' });
  }
  const sinks = config && typeof config === 'object' ? (config as { sinks?: Record<string, { type?: string }> }).sinks : undefined;
  const sinkTypes = sinks && typeof sinks === 'object' ? [...new Set(Object.values(sinks).map((s) => s?.type ?? '?'))] : [];
  if (!sinkTypes.length) warnings.push('logging.config defines no Vector sinks: the sidecar ships task logs nowhere');
  if (!l.config.includes(l.logsPath)) warnings.push(`logging.config never mentions ${l.logsPath} (logging.logsPath): the sidecar's file source probably reads another folder`);

  let text = `Vector sidecar ${l.image} ships ${l.logsPath}${sinkTypes.length ? ` to ${sinkTypes.join(', ')}` : ''}`;
  if (l.mode === 'external-link') {
    text += `, task log links via ${l.taskLogUrlPattern}`;
    const astro = await deploymentRemoteExecution(ctx, warnings);
    if (astro === null) warnings.push(`the Astro Deployment must use the task log URL pattern ${l.taskLogUrlPattern} (remoteExecution.taskLogUrlPattern; not checked: no Astro API configured)`);
    else if (astro && astro.taskLogUrlPattern !== l.taskLogUrlPattern) warnings.push(`the Astro Deployment's task log URL pattern is ${astro.taskLogUrlPattern ?? 'not set'}, expected ${l.taskLogUrlPattern}: the Airflow UI will not link to these logs until they match`);
  }
  return text;
}

/** Type of the connection as the agent env defines it: commonEnv JSON, or the Git connection Secret. */
function connectionType(ctx: StepContext, connId: string): string | undefined {
  const env = connEnvName(connId);
  const json = commonEnv(ctx, env);
  if (json) {
    try {
      return (JSON.parse(json) as { conn_type?: string }).conn_type ?? 'unknown';
    } catch {
      return 'unknown';
    }
  }
  return secretNames(ctx.spec).gitConnectionEnv === env ? 'git' : undefined;
}

/** one read of the Deployment per step run (the log settings and the OpenLineage flag both come from it) */
const deploymentReads = new WeakMap<StepContext, Promise<AstroDeployment | Error | null>>();
function readDeployment(ctx: StepContext): Promise<AstroDeployment | Error | null> {
  let p = deploymentReads.get(ctx);
  if (!p) {
    const astro = ctx.infra.astro;
    p = !astro ? Promise.resolve(null) : astro.getDeployment(ctx.spec.deployment.organizationId, ctx.spec.deployment.id, { signal: ctx.signal }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    deploymentReads.set(ctx, p);
  }
  return p;
}

/** The Deployment's remoteExecution block; null without an Astro API, undefined (plus a warning) when it cannot be read. */
async function deploymentRemoteExecution(ctx: StepContext, warnings: string[]): Promise<{ taskLogBucket?: string; taskLogUrlPattern?: string } | null | undefined> {
  const d = await readDeployment(ctx);
  if (d === null) return null;
  if (d instanceof Error) {
    warnings.push(`could not read the Astro Deployment's log settings: ${errorMessage(d)}`);
    return undefined;
  }
  return d.remoteExecution ?? {};
}

/** Whether the Deployment sets OPENLINEAGE_DISABLED=False; 'unknown' without an Astro API or when it cannot be read */
async function deploymentOpenLineageFlag(ctx: StepContext, warnings: string[]): Promise<'enabled' | 'missing' | 'other' | 'unknown'> {
  const d = await readDeployment(ctx);
  if (d === null) return 'unknown';
  if (d instanceof Error) {
    if (!warnings.some((w) => w.startsWith("could not read the Astro Deployment's"))) warnings.push(`could not read the Astro Deployment's environment variables: ${errorMessage(d)}`);
    return 'unknown';
  }
  if (!d.environmentVariables) return 'unknown';
  const flag = d.environmentVariables.find((v) => v.key === 'OPENLINEAGE_DISABLED');
  if (!flag) return 'missing';
  return /^(false|0)$/i.test(flag.value?.trim() ?? '') ? 'enabled' : 'other';
}
