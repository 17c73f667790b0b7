import { describe, expect, it } from 'vitest';
import { xcomBackend } from '../../src/checklist/xcom-backend.ts';
import { APPLIED_BY_STEP_2 } from '../../src/checklist/configured.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { CLASS } from '../../src/spec/values.ts';
import { createFakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';

const ROLE = 'arn:aws:iam::123456789012:role/re-agents';

describe('step 4: XCom backend', () => {
  it('S3 with IRSA: class path, URL with connection, threshold and identity; no Secret written', async () => {
    const infra = createFakeInfra();
    const out = await xcomBackend.run(makeCtx(testSpec({ identity: { provider: 'aws', roleArn: ROLE } }), infra).ctx);
    expect(out.status).toBe('succeeded');
    expect(out.summary).toBe(
      `${CLASS.xcomObjectStorage} → s3://aws_default@acme-xcom/xcom (bucket acme-xcom, prefix 'xcom'), threshold 0 bytes, zip compression, connection aws_default (aws, region us-east-1); identity eks.amazonaws.com/role-arn=${ROLE}; ${APPLIED_BY_STEP_2}`,
    );
    expect(out.output).toMatchObject({ path: 's3://aws_default@acme-xcom/xcom', connType: 'aws', packages: expect.arrayContaining(['apache-airflow-providers-amazon[s3fs]']) });
    expect(infra.state.secrets.size).toBe(0);
  });

  it('an S3 backend without identity wiring warns', async () => {
    const out = await xcomBackend.run(makeCtx(testSpec(), createFakeInfra()).ctx);
    expect(out.status).toBe('warned');
    expect(out.warnings).toEqual([expect.stringMatching(/^XCom s3 backend without identity wiring: identity.provider is none, so the agent pods get no IRSA role/)]);
  });

  it('Azure Blob: container, storage account and prefix in the summary', async () => {
    const clientId = '0b7e1a9c-1111-4222-8333-944455556666';
    const spec = testSpec({ xcomBackend: { type: 'azure-blob', storageAccount: 'acmexcom', container: 'xcom-data', prefix: 'sales' }, identity: { provider: 'azure', clientId } });
    const out = await xcomBackend.run(makeCtx(spec, createFakeInfra()).ctx);
    expect(out.status).toBe('succeeded');
    expect(out.summary).toContain('abfs://wasb_xcom@xcom-data/sales (container xcom-data, prefix \'sales\')');
    expect(out.summary).toContain('connection wasb_xcom (wasb, account acmexcom)');
  });

  it('fails naming xcomBackend.connId when the Git bundle uses the same connection id', async () => {
    const spec = testSpec({
      xcomBackend: { type: 's3', bucket: 'acme-xcom', connId: 'git_default' },
      dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags', credentials: { username: { env: 'T_GIT_USER' }, token: { env: 'T_GIT_TOKEN' } } },
    });
    const err = await xcomBackend.run(makeCtx(spec, createFakeInfra()).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.details.field).toBe('xcomBackend.connId');
    expect(err.message).toContain('AIRFLOW_CONN_GIT_DEFAULT would be defined twice');
  });

  it('type none is skipped with the reason', async () => {
    const out = await xcomBackend.run(makeCtx(testSpec({ xcomBackend: { type: 'none' } }), createFakeInfra()).ctx);
    expect(out).toMatchObject({ status: 'skipped', summary: expect.stringContaining('xcomBackend.type is none') });
  });
});
