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

export const APPLIED_BY_STEP_2 = 'applied by the Helm upgrade of step 2';
