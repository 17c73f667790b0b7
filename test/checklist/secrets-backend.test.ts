import { describe, expect, it } from 'vitest';
import { secretsBackend } from '../../src/checklist/secrets-backend.ts';
import { APPLIED_BY_STEP_2 } from '../../src/checklist/configured.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { CLASS } from '../../src/spec/values.ts';
import { createFakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';

const ROLE = 'arn:aws:iam::123456789012:role/re-agents';
const aws = { provider: 'aws-secrets-manager', region: 'eu-west-1' };

describe('step 3: secrets backend', () => {
  it('AWS Secrets Manager with IRSA: class path, region, prefixes and role in the summary; no Secret written', async () => {
    const infra = createFakeInfra();
    const h = makeCtx(testSpec({ secretsBackend: aws, identity: { provider: 'aws', roleArn: ROLE } }), infra);
    const out = await secretsBackend.run(h.ctx);
    expect(out.status).toBe('succeeded');
    expect(out.summary).toBe(
      `${CLASS.awsSecretsManager} → AWS Secrets Manager in eu-west-1; connections under airflow/connections, variables under airflow/variables; identity eks.amazonaws.com/role-arn=${ROLE}; ${APPLIED_BY_STEP_2}`,
    );
    expect(out.output).toMatchObject({ classPath: CLASS.awsSecretsManager, providerPackage: 'apache-airflow-providers-amazon', kwargs: { region_name: 'eu-west-1' } });
    expect(infra.state.secrets.size).toBe(0);
    expect(infra.state.namespaces.size).toBe(0);
  });

  it('warns when the backend has no matching cloud identity', async () => {
    const h = makeCtx(testSpec({ secretsBackend: aws }), createFakeInfra());
    const out = await secretsBackend.run(h.ctx);
    expect(out.status).toBe('warned');
    expect(out.warnings).toEqual([expect.stringContaining('SecretsManagerBackend without identity wiring: identity.provider is none')]);
    expect(out.summary).toContain('no cloud identity wiring');
  });

  it('Key Vault: vault URL and the workload identity client id in the summary', async () => {
    const clientId = '0b7e1a9c-1111-4222-8333-944455556666';
    const h = makeCtx(testSpec({ secretsBackend: { provider: 'azure-key-vault', vaultUrl: 'https://acme-kv.vault.azure.net/' }, identity: { provider: 'azure', clientId } }), createFakeInfra());
    const out = await secretsBackend.run(h.ctx);
    expect(out.status).toBe('succeeded');
    expect(out.summary).toContain('Key Vault https://acme-kv.vault.azure.net/');
    expect(out.summary).toContain(`azure.workload.identity/client-id=${clientId}`);
    expect(out.summary).toContain('label azure.workload.identity/use=true');
  });

  it('Vault kubernetes auth without a role fails naming secretsBackend.kubernetesRole', async () => {
    const spec = testSpec({ secretsBackend: { provider: 'hashicorp-vault', url: 'https://vault.acme.internal:8200', kubernetesRole: 'airflow' } });
    // a spec built by the wizard could skip the schema's refinement
    (spec.secretsBackend as { kubernetesRole?: string }).kubernetesRole = undefined;
    const err = await secretsBackend.run(makeCtx(spec, createFakeInfra()).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.details.field).toBe('secretsBackend.kubernetesRole');
  });

  it('Vault kubernetes auth names the role and the ServiceAccounts it must bind', async () => {
    const h = makeCtx(testSpec({ secretsBackend: { provider: 'hashicorp-vault', url: 'https://vault.acme.internal:8200', kubernetesRole: 'airflow' } }), createFakeInfra());
    const out = await secretsBackend.run(h.ctx);
    expect(out.summary).toContain('Vault https://vault.acme.internal:8200 mount secret (kv v2, kubernetes auth role airflow for the agent ServiceAccounts in astro-agents)');
    expect(out.output?.vaultRoleServiceAccounts).toEqual(['sales-worker-default-worker', 'sales-dag-processor', 'sales-triggerer']);
  });

  it('warns when both lookups are disabled', async () => {
    const h = makeCtx(testSpec({ secretsBackend: { ...aws, connectionsPrefix: null, variablesPrefix: null }, identity: { provider: 'aws', roleArn: ROLE } }), createFakeInfra());
    const out = await secretsBackend.run(h.ctx);
    expect(out.warnings).toEqual(['connections_prefix and variables_prefix are both null: the backend looks up neither Connections nor Variables']);
    expect(out.summary).toContain('connections off, variables off');
  });

  it('provider none is skipped with the reason', async () => {
    const out = await secretsBackend.run(makeCtx(testSpec(), createFakeInfra()).ctx);
    expect(out).toMatchObject({ status: 'skipped', summary: expect.stringContaining('secretsBackend.provider is none') });
  });
});
