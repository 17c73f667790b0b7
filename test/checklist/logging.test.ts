import { describe, expect, it } from 'vitest';
import { logging } from '../../src/checklist/logging.ts';
import { APPLIED_BY_STEP_2 } from '../../src/checklist/configured.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import type { AstroClient } from '../../src/infra/types.ts';
import { createFakeInfra } from './fake-infra.ts';
import { secretContentHash } from '../../src/infra/ownership.ts';
import { FAKE, leakedSecrets, makeCtx, testSpec, visibleText } from './step-context.ts';

const ROLE = 'arn:aws:iam::123456789012:role/re-agents';
const VECTOR = `sources:\n  task_logs:\n    type: file\n    include: ["/usr/local/airflow/logs/**/*.log"]\nsinks:\n  splunk:\n    type: splunk_hec_logs\n    inputs: [task_logs]\n`;
const astroWith = (remoteExecution: Record<string, unknown>): AstroClient => ({ getDeployment: async (_o, id) => ({ id, remoteExecution: { enabled: true, ...remoteExecution } }) });

describe('step 6: logging, OpenLineage, Sentinel', () => {
  it('OpenLineage from the Deployment API token: api-key Secret prepared for step 2 (nothing written), token never shown', async () => {
    const infra = createFakeInfra();
    const h = makeCtx(testSpec({ openLineage: { enabled: true } }), infra);
    const out = await logging.run(h.ctx);
    expect(infra.state.writes).toEqual([]);
    const hash = secretContentHash('Opaque', { 'api-key': FAKE.T_API });
    expect(out.output!.preparedSecrets).toEqual([expect.objectContaining({ kind: 'openlineage', name: 'sales-openlineage', type: 'Opaque', keys: ['api-key'], hash, action: 'create' })]);
    expect(out.appliedWith).toBe('agents');
    expect(h.resolved).toEqual([{ env: 'T_API' }]);
    expect(out.summary).toContain(`OpenLineage → https://o11y.astronomer.io namespace cosmic-nebula-1234, Secret sales-openlineage (key api-key from the Deployment API token, content sha256:${hash}, create)`);
    expect(out.summary).toContain('Sentinel on (Deployment sales-sentinel, chart default image)');
    expect(out.summary.endsWith(APPLIED_BY_STEP_2)).toBe(true);
    expect(leakedSecrets(visibleText(h, out))).toEqual([]);
  });

  it('OpenLineage uses openLineage.apiKey when given', async () => {
    const infra = createFakeInfra();
    const out = await logging.run(makeCtx(testSpec({ openLineage: { enabled: true, apiKey: { env: 'T_OL' } } }), infra).ctx);
    expect((out.output!.preparedSecrets as Array<{ hash: string }>)[0].hash).toBe(secretContentHash('Opaque', { 'api-key': FAKE.T_OL }));
    expect(out.summary).toContain('from openLineage.apiKey');
  });

  it('OpenLineage from the orchestration plane: no warning when the Deployment sets OPENLINEAGE_DISABLED=False, named when it is missing or another value, and one Deployment read', async () => {
    const cases: Array<[Array<{ key: string; value?: string }> | undefined, RegExp | null]> = [
      [[{ key: 'OPENLINEAGE_DISABLED', value: 'False' }], null],
      [[{ key: 'OPENLINEAGE_DISABLED', value: 'false' }, { key: 'OTHER', value: 'x' }], null],
      [[{ key: 'OTHER', value: 'x' }], /needs the Deployment environment variable OPENLINEAGE_DISABLED=False \(Astro UI or API\) \(the Deployment does not set it\); re-bot does not change the Deployment/],
      [[{ key: 'OPENLINEAGE_DISABLED', value: 'True' }], /OPENLINEAGE_DISABLED=False \(Astro UI or API\) \(the Deployment sets it to another value\)/],
      [[{ key: 'OPENLINEAGE_DISABLED' }], /the Deployment sets it to another value/], // a secret variable: its value is not known
      [undefined, /OPENLINEAGE_DISABLED=False \(Astro UI or API\); re-bot/], // an API answer without the list: not checked, advised
    ];
    for (const [environmentVariables, warning] of cases) {
      const infra = createFakeInfra();
      let reads = 0;
      infra.astro = { getDeployment: async (_o, id) => (reads++, { id, remoteExecution: { enabled: true, taskLogBucket: 's3://acme-logs/airflow' }, ...(environmentVariables ? { environmentVariables } : {}) }) };
      const spec = testSpec({ identity: { provider: 'aws', roleArn: ROLE }, openLineage: { enabled: true }, sentinel: { enabled: false }, logging: { mode: 'object-storage', remoteBaseLogFolder: 's3://acme-logs/airflow', connId: 'AWS_DEFAULT', region: 'us-east-1' } });
      const out = await logging.run(makeCtx(spec, infra).ctx);
      const label = JSON.stringify(environmentVariables);
      expect(reads, label).toBe(1);
      if (warning) expect(out.warnings, label).toEqual([expect.stringMatching(warning)]);
      else expect(out.warnings, label).toEqual([]);
    }
  });

  it('object storage whose connection is a different kind than the folder fails naming logging.connId', async () => {
    const spec = testSpec({
      xcomBackend: { type: 'azure-blob', storageAccount: 'acmexcom', container: 'xcom-data' },
      logging: { mode: 'object-storage', remoteBaseLogFolder: 's3://acme-logs/airflow', connId: 'wasb_xcom' },
    });
    const err = await logging.run(makeCtx(spec, createFakeInfra()).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.details.field).toBe('logging.connId');
    expect(err.message).toContain('is a wasb connection');
  });

  it('object storage reusing the XCom S3 connection, with IRSA and matching Deployment bucket: no warnings', async () => {
    const infra = createFakeInfra();
    infra.astro = astroWith({ taskLogBucket: 's3://acme-logs/airflow' });
    const spec = testSpec({ identity: { provider: 'aws', roleArn: ROLE }, sentinel: { enabled: false }, logging: { mode: 'object-storage', remoteBaseLogFolder: 's3://acme-logs/airflow', connId: 'AWS_DEFAULT', region: 'us-east-1' } });
    const out = await logging.run(makeCtx(spec, infra).ctx);
    expect(out.warnings).toEqual([]);
    expect(out.summary).toBe(`remote logging to s3://acme-logs/airflow via connection AWS_DEFAULT (aws) in us-east-1, identity eks.amazonaws.com/role-arn=${ROLE}; OpenLineage off; Sentinel off; ${APPLIED_BY_STEP_2}`);
  });

  it('object storage: a connection defined nowhere and a Deployment bucket that differs are both reported', async () => {
    const infra = createFakeInfra();
    infra.astro = astroWith({ taskLogBucket: 's3://other-bucket/logs' });
    const spec = testSpec({ identity: { provider: 'aws', roleArn: ROLE }, logging: { mode: 'object-storage', remoteBaseLogFolder: 's3://acme-logs/airflow', connId: 'aws_logs' } });
    const out = await logging.run(makeCtx(spec, infra).ctx);
    expect(out.status).toBe('warned');
    expect(out.warnings).toEqual([
      expect.stringContaining('logging.connId aws_logs is not defined in the agent env (AIRFLOW_CONN_AWS_LOGS) and no secrets backend serves Connections'),
      expect.stringContaining("task log bucket is s3://other-bucket/logs, but the agents write to s3://acme-logs/airflow"),
    ]);
  });

  it('sidecar with invalid Vector YAML fails naming logging.config', async () => {
    const spec = testSpec({ logging: { mode: 'sidecar', config: 'sources: [unclosed' } });
    const err = await logging.run(makeCtx(spec, createFakeInfra()).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.details.field).toBe('logging.config');
  });

  it('sidecar: image, shipped folder and sink types in the summary', async () => {
    const out = await logging.run(makeCtx(testSpec({ logging: { mode: 'sidecar', config: VECTOR } }), createFakeInfra()).ctx);
    expect(out.status).toBe('succeeded');
    expect(out.summary).toContain('Vector sidecar timberio/vector:0.45.0-debian ships /usr/local/airflow/logs to splunk_hec_logs');
  });

  it('logging none: warns that task logs are lost', async () => {
    const out = await logging.run(makeCtx(testSpec(), createFakeInfra()).ctx);
    expect(out.status).toBe('warned');
    expect(out.warnings).toEqual([expect.stringContaining('task logs stay in the agent pods and are lost')]);
    expect(out.output?.secrets).toEqual([]);
  });
});
