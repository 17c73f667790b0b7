import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import { renderValues } from '../spec/values.ts';

/** Reads one commonEnv entry of the rendered values (steps 3–6 report what step 2's upgrade applies). */
export function commonEnv(ctx: StepContext, name: string): string | undefined {
  const values = renderValues(ctx.spec) as { commonEnv?: Array<{ name: string; value?: string }> };
  return values.commonEnv?.find((e) => e.name === name)?.value;
}

export function renderedValues(ctx: StepContext): Record<string, unknown> {
  return renderValues(ctx.spec) as Record<string, unknown>;
}

/** Identity wiring (IRSA / Azure workload identity / GKE) as it will appear on the agent pods. */
export function identityWiring(ctx: StepContext): string[] {
  const v = renderedValues(ctx) as {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    serviceAccount?: { annotations?: Record<string, string> };
  };
  const out: string[] = [];
  const all = { ...(v.annotations ?? {}), ...(v.serviceAccount?.annotations ?? {}) };
  for (const [k, val] of Object.entries(all)) {
    if (/eks\.amazonaws\.com\/role-arn|azure\.workload\.identity\/client-id|iam\.gke\.io\/gcp-service-account/.test(k)) out.push(`${k}=${val}`);
  }
  for (const [k, val] of Object.entries(v.labels ?? {})) if (k.startsWith('azure.workload.identity/')) out.push(`label ${k}=${val}`);
  return out;
}

export const APPLIED_BY_STEP_2 = 'applied by the Helm upgrade of step 2';

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 're-bot' };

/**
 * Create-or-update a Secret that step 2's upgrade will reference. Steps 3–6 run before step 2, so the
 * namespace is created here first when re-bot owns it (cluster.createNamespace).
 */
export async function writeReferencedSecret(ctx: StepContext, name: string, stringData: Record<string, string>, type?: string): Promise<'created' | 'updated' | 'unchanged'> {
  const { namespace, createNamespace } = ctx.spec.cluster;
  const opts = { signal: ctx.signal };
  if (createNamespace) await ctx.infra.kube.ensureNamespace(namespace, MANAGED_BY, opts);
  ctx.progress(`writing Secret ${name} in ${namespace}`);
  try {
    const action = (await ctx.infra.kube.applySecret({ namespace, name, stringData, labels: MANAGED_BY, ...(type ? { type } : {}) }, opts)).action;
    // a step re-runs after its approval: report what the first run did, not the no-op of the second
    const first = ctx.checkpoint.get<string>(`secret.${name}`);
    if (first && action === 'unchanged') return first as 'created' | 'updated';
    ctx.checkpoint.set(`secret.${name}`, action);
    return action;
  } catch (err) {
    if (!createNamespace && (err as { code?: string }).code === 'not_found') {
      throw new StepFailure(`namespace ${namespace} does not exist and cluster.createNamespace is false, so Secret ${name} cannot be written`, {
        field: 'cluster.namespace',
        hint: `create the namespace (kubectl create namespace ${namespace}) or set cluster.createNamespace: true`,
      });
    }
    throw err;
  }
}

export type Cloud = 'aws' | 'azure' | 'gcp';
const CLOUD_IDENTITY: Record<Cloud, string> = {
  aws: 'IRSA role (identity.provider: aws with roleArn)',
  azure: 'Azure workload identity (identity.provider: azure with clientId)',
  gcp: 'GKE workload identity (identity.provider: gcp with serviceAccount)',
};

/** A warning when `what` needs credentials of `cloud` but the agent pods get no such identity; undefined when wired. */
export function identityGap(ctx: StepContext, cloud: Cloud, what: string): string | undefined {
  const p = ctx.spec.identity.provider;
  if (p === cloud) return undefined;
  return `${what} without identity wiring: identity.provider is ${p}, so the agent pods get no ${CLOUD_IDENTITY[cloud]} and need ${cloud.toUpperCase()} credentials from somewhere else (node role, static keys)`;
}

export function identitySummary(ctx: StepContext): string {
  const w = identityWiring(ctx);
  return w.length ? `identity ${w.join(', ')}` : 'no cloud identity wiring';
}
