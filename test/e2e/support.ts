import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { createLogger, setLogger } from '../../src/log.ts';
import { demoSpecNamed, startLocalSetup, type LocalSetupOptions } from '../../src/devkit/local-setup.ts';
import type { FakeKube } from '../../src/devkit/fake-kube/index.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';

export const ROOT = resolve('.');

/** Recognisable fake credentials: every secrets scan looks for these (and their base64 forms). */
export const SECRETS = {
  RE_BOT_DEMO_API_TOKEN: 'e2e-api-token-Qm9vb3RzdHJhcA7f31',
  RE_BOT_DEMO_AGENT_TOKEN: 'e2e-agent-token-c2VjcmV0Zm9yZTJl9a',
  RE_BOT_DEMO_GIT_USER: 'e2e-git-user',
  RE_BOT_DEMO_GIT_TOKEN: 'e2e-git-token-Z2l0dG9rZW5lMmU44b',
};
export const SCANNED = [SECRETS.RE_BOT_DEMO_API_TOKEN, SECRETS.RE_BOT_DEMO_AGENT_TOKEN, SECRETS.RE_BOT_DEMO_GIT_TOKEN];

export function setSecretEnv(): void {
  Object.assign(process.env, SECRETS);
}

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `rebot-${prefix}-`));
}

/** examples/demo.yaml renamed so several setups share one fake cluster, with test-sized timeouts. */
export function demoSpec(name: string, patch: (s: SetupSpec) => void = () => {}): Promise<SetupSpec> {
  return demoSpecNamed(ROOT, name, (spec) => {
    // these tests cover a pasted token (its value in the Secret, in no log); the demo's created one: agent-token.test.ts, demo.test.ts
    spec.agent.token = { env: 'RE_BOT_DEMO_AGENT_TOKEN' };
    spec.verify.timeoutSeconds = 60;
    spec.agent.readyTimeoutSeconds = 30;
    patch(spec);
  });
}

export async function localSetup(spec: SetupSpec, o: Partial<LocalSetupOptions> & { sharedKube?: FakeKube } = {}) {
  return startLocalSetup(spec, { dir: scratchDir('local'), root: ROOT, apiToken: SECRETS.RE_BOT_DEMO_API_TOKEN, ...o });
}

export function writeSpec(spec: SetupSpec, dir: string): string {
  const file = join(dir, `${spec.deployment.name}.yaml`);
  writeFileSync(file, stringify(spec));
  return file;
}

/** Routes the process logger into a buffer (the secrets scan reads it). */
export function captureLogs(): { text(): string } {
  let buf = '';
  const sink = new Writable({ write(chunk, _enc, cb) { buf += chunk.toString(); cb(); } });
  setLogger(createLogger({}, sink));
  return { text: () => buf };
}

/** Counts occurrences of each secret (plain and base64) in every file under dir. */
export function scanFiles(dir: string, needles = SCANNED): Array<{ file: string; needle: string }> {
  const hits: Array<{ file: string; needle: string }> = [];
  const forms = needles.flatMap((n) => [n, Buffer.from(n).toString('base64')]);
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const text = readFileSync(p).toString('latin1');
        for (const n of forms) if (text.includes(n)) hits.push({ file: p, needle: n });
      }
    }
  };
  walk(dir);
  return hits;
}

export function countIn(text: string, needles = SCANNED): number {
  return needles.flatMap((n) => [n, Buffer.from(n).toString('base64')]).reduce((k, n) => k + text.split(n).length - 1, 0);
}
