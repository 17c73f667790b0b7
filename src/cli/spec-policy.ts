/** `re-bot plan` and `re-bot run`: the spec safety policy (src/spec/safety.ts) after loading, before anything is written. */
import { specPolicyFromEnv } from '../policy-env.ts';
import { checkSpecSafety } from '../spec/safety.ts';
import type { SetupSpec } from '../spec/schema.ts';

/**
 * Prints every problem (`file: N problem(s)` then `  field: message`, like schema errors) and returns true when
 * the spec must not be used. The build root is RE_BOT_BUILD_ROOT, else the working directory: relative paths in
 * a spec (images.client.contextDir, cluster.chart.path) are resolved there, and the builder runs there.
 */
export function refuseUnsafeSpec(file: string, spec: SetupSpec, env: Record<string, string | undefined> = process.env): boolean {
  const { policy, problems } = specPolicyFromEnv(env);
  const errors = [...problems.map((p) => ({ path: p.variable, message: p.message })), ...checkSpecSafety(spec, policy)];
  if (errors.length === 0) return false;
  process.stderr.write(`${file}: ${errors.length} problem(s)\n`);
  for (const e of errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
  return true;
}
