import type { StepContext } from './types.ts';
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

/** Steps 3–6 only prepare: step 2 writes their Secrets and applies their values after its approval. */
export const APPLIED_BY_STEP_2 = 'applied with step 2 after its approval';
export const APPLIED_WITH = 'agents';

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
