/** Unresolvable secret references name the spec field they belong to; file references follow the spec file. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createSecretResolver, secretResolverForSpec, unresolvedSecretsFailure } from '../../src/app/secrets.ts';
import { withFileRefsFrom } from '../../src/spec/load.ts';
import type { SecretRef } from '../../src/spec/schema.ts';
import { spec } from './fixtures.ts';

it('an unset deployment.apiToken variable names the field and says what to do', async () => {
  const s = spec({ deployment: { ...spec().deployment, apiToken: { env: 'ASTRO_API_TOKEN_UNSET_T1' } } });
  const resolve = secretResolverForSpec(s, createSecretResolver(undefined, {}));
  await expect(resolve(s.deployment.apiToken)).rejects.toThrow(
    /^deployment\.apiToken: environment variable ASTRO_API_TOKEN_UNSET_T1 is not set \(export it .*or use \{ file: PATH \}\)$/,
  );
});

it('the failure before step 1 lists every unresolvable reference, each with its field', async () => {
  const s = spec();
  const raw = createSecretResolver(undefined, { T_AGENT: 'agent-token-value-123' });
  const err = (await unresolvedSecretsFailure(s, raw, new Error('fallback'))) as Error;
  expect(err.message).toMatch(/^1 secret reference\(s\) cannot be resolved: deployment\.apiToken: environment variable T_API is not set/);
  const none = await unresolvedSecretsFailure(s, createSecretResolver(undefined, { T_AGENT: 'x'.repeat(8), T_API: 'y'.repeat(8) }), 'fallback');
  expect(none).toBe('fallback');
});

it('a file reference written relative to the spec is read from the spec directory, wherever re-bot runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 're-bot-refs-'));
  writeFileSync(join(dir, 'agent-token'), 'file-agent-token-value\n');
  const s = withFileRefsFrom(dir, spec({ agent: { ...spec().agent, token: { file: 'agent-token' } } }));
  const resolve = secretResolverForSpec(s, createSecretResolver(undefined, {}));
  expect(await resolve(s.agent.token as SecretRef)).toBe('file-agent-token-value');
  const missing = withFileRefsFrom(dir, spec({ agent: { ...spec().agent, token: { file: 'nope' } } }));
  await expect(secretResolverForSpec(missing, createSecretResolver(undefined, {}))(missing.agent.token as SecretRef)).rejects.toThrow(
    `agent.token: secret file ${join(dir, 'nope')} cannot be read (ENOENT: no such file)`,
  );
});
