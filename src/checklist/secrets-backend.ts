import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import { CLASS } from '../spec/values.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { APPLIED_BY_STEP_2, APPLIED_WITH, commonEnv, identityGap, identitySummary, renderedValues, type Cloud } from './configured.ts';

type Backend = Exclude<SetupSpec['secretsBackend'], { provider: 'none' }>;

const KWARGS_ENV = 'AIRFLOW__SECRETS__BACKEND_KWARGS';

const PROVIDERS: Record<Backend['provider'], { classPath: string; cloud?: Cloud; pkg: string }> = {
  'aws-secrets-manager': { classPath: CLASS.awsSecretsManager, cloud: 'aws', pkg: 'apache-airflow-providers-amazon' },
  'azure-key-vault': { classPath: CLASS.azureKeyVault, cloud: 'azure', pkg: 'apache-airflow-providers-microsoft-azure' },
  'gcp-secret-manager': { classPath: CLASS.gcpSecretManager, cloud: 'gcp', pkg: 'apache-airflow-providers-google' },
  'hashicorp-vault': { classPath: CLASS.vault, pkg: 'apache-airflow-providers-hashicorp' },
};

/** Step 3: checks the secrets backend part of the values step 2 applies; it needs no Kubernetes Secret (credentials come from workload identity or Vault's credential-less auth). */
export const secretsBackend: StepHandler = {
  id: 'secrets-backend',
  async run(ctx): Promise<StepOutcome> {
    const b = ctx.spec.secretsBackend;
    if (b.provider === 'none') return { status: 'skipped', summary: 'secretsBackend.provider is none: Connections and Variables come only from the orchestration plane / env' };
    const p = PROVIDERS[b.provider];

    const rendered = renderedValues(ctx).secretBackend;
    if (rendered !== p.classPath) {
      throw new StepFailure(`rendered values set secretBackend to ${String(rendered)}, expected ${p.classPath} for ${b.provider}`, { field: 'secretsBackend.provider' });
    }
    const kwargs = parseKwargs(ctx);
    const { target, checks } = describe(b, ctx);
    for (const [kwarg, expected, field] of checks) {
      if (kwargs[kwarg] !== expected) throw new StepFailure(`${KWARGS_ENV} has ${kwarg}=${JSON.stringify(kwargs[kwarg])}, expected ${JSON.stringify(expected)}`, { field });
    }

    const warnings: string[] = [];
    if (b.provider === 'hashicorp-vault') {
      if (b.authType === 'kubernetes' && !b.kubernetesRole) {
        throw new StepFailure("Vault kubernetes auth needs a role: set secretsBackend.kubernetesRole to the Vault role bound to the agent ServiceAccounts", { field: 'secretsBackend.kubernetesRole' });
      }
      const cloud = b.authType === 'aws_iam' ? 'aws' : b.authType === 'gcp' ? 'gcp' : undefined;
      const gap = cloud && identityGap(ctx, cloud, `Vault ${b.authType} auth`);
      if (gap) warnings.push(gap);
    } else {
      const gap = identityGap(ctx, p.cloud!, `${className(p.classPath)}`);
      if (gap) warnings.push(gap);
    }
    const [connKey, varKey] = b.provider === 'hashicorp-vault' ? ['connections_path', 'variables_path'] : ['connections_prefix', 'variables_prefix'];
    if (kwargs[connKey] === null && kwargs[varKey] === null) warnings.push(`${connKey} and ${varKey} are both null: the backend looks up neither Connections nor Variables`);

    const lookups = [`connections ${lookup(kwargs[connKey])}`, `variables ${lookup(kwargs[varKey])}`].join(', ');
    const serviceAccounts = agentServiceAccounts(ctx.spec);
    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `${p.classPath} → ${target}; ${lookups}; ${identitySummary(ctx)}; ${APPLIED_BY_STEP_2}`,
      warnings,
      output: {
        classPath: p.classPath,
        target,
        kwargs,
        providerPackage: p.pkg,
        ...(b.provider === 'hashicorp-vault' && b.authType === 'kubernetes' ? { vaultRoleServiceAccounts: serviceAccounts } : {}),
      },
      appliedWith: APPLIED_WITH,
    };
  },
};

function parseKwargs(ctx: StepContext): Record<string, unknown> {
  const raw = commonEnv(ctx, KWARGS_ENV);
  try {
    const v = raw === undefined ? undefined : JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new StepFailure(`rendered values carry no valid ${KWARGS_ENV} in commonEnv`, { field: 'secretsBackend' });
}

/** What the summary names as the backend's target, and the kwargs that must carry the spec's values. */
function describe(b: Backend, ctx: StepContext): { target: string; checks: Array<[string, unknown, string]> } {
  switch (b.provider) {
    case 'aws-secrets-manager':
      return { target: `AWS Secrets Manager in ${b.region}${b.roleArn ? ` assuming ${b.roleArn}` : ''}`, checks: [['region_name', b.region, 'secretsBackend.region']] };
    case 'azure-key-vault':
      return { target: `Key Vault ${b.vaultUrl}`, checks: [['vault_url', b.vaultUrl, 'secretsBackend.vaultUrl']] };
    case 'gcp-secret-manager':
      return { target: `Secret Manager of project ${b.projectId}`, checks: [['project_id', b.projectId, 'secretsBackend.projectId']] };
    case 'hashicorp-vault': {
      const auth = b.authType === 'kubernetes' ? `kubernetes auth role ${b.kubernetesRole ?? '(none)'} for the agent ServiceAccounts in ${ctx.spec.cluster.namespace}` : `${b.authType} auth`;
      return {
        target: `Vault ${b.url} mount ${b.mountPoint} (kv v${b.kvEngineVersion}, ${auth})`,
        checks: [['url', b.url, 'secretsBackend.url'], ['auth_type', b.authType, 'secretsBackend.authType'], ['kubernetes_role', b.kubernetesRole, 'secretsBackend.kubernetesRole']],
      };
    }
  }
}

function lookup(v: unknown): string {
  return v === null || v === undefined ? 'off' : `under ${String(v)}`;
}

function className(classPath: string): string {
  return classPath.split('.').pop()!;
}

/** ServiceAccounts the chart creates (default names); a Vault kubernetes role must bind these. */
function agentServiceAccounts(spec: SetupSpec): string[] {
  const p = spec.cluster.resourceNamePrefix;
  return [...spec.agent.workers.map((w) => `${p}-worker-${w.name}`), `${p}-dag-processor`, `${p}-triggerer`];
}
