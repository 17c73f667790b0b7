/** Setup specs for the benchmarks: examples/demo.yaml renamed per deployment (as test/e2e/support.ts does). */
import { resolve } from 'node:path';
import { demoSpecNamed } from '../../src/devkit/local-setup.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { registerSecret } from '../../src/redact.ts';

export const ROOT = resolve('.');

/** Fake credentials behind the env refs of examples/demo.yaml (child processes get them through env). */
export const BENCH_SECRETS: Record<string, string> = {
  RE_BOT_DEMO_API_TOKEN: 'bench-api-token-5f1c2a9e77d04b1e',
  RE_BOT_DEMO_AGENT_TOKEN: 'bench-agent-token-0c3e8d21a4f6b9d7',
  RE_BOT_DEMO_GIT_USER: 'bench-git-user',
  RE_BOT_DEMO_GIT_TOKEN: 'bench-git-token-91ab7c34de56f082',
};

export function setBenchSecretEnv(): void {
  for (const [k, v] of Object.entries(BENCH_SECRETS)) {
    process.env[k] = v;
    registerSecret(v);
  }
}

/** examples/demo.yaml renamed per deployment, with benchmark-sized timeouts */
export function demoSpec(name: string, patch: (s: SetupSpec) => void = () => {}): Promise<SetupSpec> {
  return demoSpecNamed(ROOT, name, (spec) => {
    spec.verify.timeoutSeconds = 120;
    spec.agent.readyTimeoutSeconds = 120;
    patch(spec);
  });
}

/** no client image: step 7 is skipped (no buildah) */
export const withoutClientImage = (s: SetupSpec) => {
  delete (s.images as { client?: unknown }).client;
};
