/**
 * helm, the image tools and the version probes get an allow-listed environment: the bot's Slack tokens, its
 * sealing key and the values behind the spec's `{ env: NAME }` references never reach them.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childEnv, secretEnvNames, workerEnv } from '../../src/infra/child-env.ts';
import { createHelmAdapter } from '../../src/infra/helm.ts';
import { createInfra } from '../../src/app/infra.ts';
import { probeTool } from '../../src/infra/tools.ts';

const HELM = resolve('.tools/bin/helm');
const CHART = resolve('test/fixtures/chart-min');
const scratch = mkdtempSync(join(tmpdir(), 'child-env-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const BOT_SECRETS = {
  SLACK_BOT_TOKEN: 'xoxb-child-env-test-bot-token',
  SLACK_APP_TOKEN: 'xapp-child-env-test-app-token',
  SLACK_SIGNING_SECRET: 'child-env-signing-secret',
  RE_BOT_SECRET_KEY: 'child-env-test-sealing-key-0123456789',
  ASTRO_AGENT_TOKEN: 'agent-token-from-the-spec-env-ref',
  // a secret reference may name an allow-listed variable: it is still removed
  AWS_SESSION_TOKEN: 'aws-named-secret-from-the-spec',
};

/** A helm wrapper: writes its environment to a file (NUL-separated), then runs the real helm. */
function dumpingHelm(name: string): { bin: string; dump: string } {
  const bin = join(scratch, `${name}.sh`);
  const dump = join(scratch, `${name}.env`);
  writeFileSync(bin, `#!/bin/sh\nenv -0 > '${dump}'\nexec '${HELM}' "$@"\n`);
  chmodSync(bin, 0o755);
  return { bin, dump };
}

function readDump(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(file, 'utf8').split('\0').filter(Boolean)) {
    const i = entry.indexOf('=');
    out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

const saved: Record<string, string | undefined> = {};
beforeEach(() => {
  for (const k of [...Object.keys(BOT_SECRETS), 'KUBECONFIG', 'RE_BOT_HELM', 'HTTPS_PROXY']) saved[k] = process.env[k];
  Object.assign(process.env, BOT_SECRETS, { KUBECONFIG: join(scratch, 'kubeconfig'), HTTPS_PROXY: 'http://proxy.internal:3128' });
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function expectNoBotSecrets(env: Record<string, string>, secretRefs: string[]) {
  const all = Object.values(env).join('\n');
  for (const k of ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET', 'RE_BOT_SECRET_KEY', ...secretRefs] as Array<keyof typeof BOT_SECRETS>) {
    expect(env, k).not.toHaveProperty(k);
    expect(all).not.toContain(BOT_SECRETS[k]);
  }
}

describe('helm runs with an allow-listed environment', () => {
  it('RE_BOT_HELM wrapper sees PATH, KUBECONFIG and the proxy, and none of the bot secrets or spec secret variables', async () => {
    const { bin, dump } = dumpingHelm('helm-template');
    process.env.RE_BOT_HELM = bin;
    const helm = createHelmAdapter({ defaultTimeoutMs: 30_000, secretEnvNames: ['ASTRO_AGENT_TOKEN', 'AWS_SESSION_TOKEN'] });
    const out = await helm.template({ release: 'r1', namespace: 'agents', chart: { path: CHART }, values: { replicas: 2 } });
    expect(out).toContain('replicas: 2'); // the real helm ran behind the wrapper
    const env = readDump(dump);
    expectNoBotSecrets(env, ['ASTRO_AGENT_TOKEN', 'AWS_SESSION_TOKEN']);
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.KUBECONFIG).toBe(join(scratch, 'kubeconfig'));
    expect(env.HTTPS_PROXY).toBe('http://proxy.internal:3128');
    expect(env.HELM_DEBUG).toBe('false');
  });

  it('a job\'s helm (createInfra) drops every variable the spec names in a secret reference', async () => {
    const { bin, dump } = dumpingHelm('helm-infra');
    process.env.RE_BOT_HELM = bin;
    const spec = {
      cluster: { namespace: 'agents', release: 'r1', kubeconfig: join(scratch, 'kubeconfig') },
      deployment: { name: 'd', apiToken: { env: 'AWS_SESSION_TOKEN' } },
      agent: { token: { env: 'ASTRO_AGENT_TOKEN' }, imagePullToken: { stored: 'sec_1' } },
    };
    const infra = await createInfra(spec as never);
    expect(await infra.helm.version({ timeoutMs: 10_000 })).toMatch(/^v\d+\./);
    const env = readDump(dump);
    expectNoBotSecrets(env, ['ASTRO_AGENT_TOKEN', 'AWS_SESSION_TOKEN']);
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.KUBECONFIG).toBe(join(scratch, 'kubeconfig'));
  });

  it('the helm version probe (re-bot doctor) gets the same allow-list', async () => {
    const { bin, dump } = dumpingHelm('helm-probe');
    const status = await probeTool('helm', { ...process.env, RE_BOT_HELM: bin });
    expect(status.version).toMatch(/^v\d+\./);
    const env = readDump(dump);
    expectNoBotSecrets(env, []);
    expect(env.KUBECONFIG).toBe(join(scratch, 'kubeconfig'));
  });
});

describe('childEnv / workerEnv / secretEnvNames', () => {
  const source = {
    PATH: '/usr/bin', HOME: '/home/bot', LC_ALL: 'C.UTF-8', no_proxy: 'localhost', HELM_CACHE_HOME: '/c', AWS_PROFILE: 'prod',
    AZURE_CONFIG_DIR: '/az', CLOUDSDK_CONFIG: '/g', GOOGLE_APPLICATION_CREDENTIALS: '/g.json', BUILDAH_FORMAT: 'docker',
    CONTAINERS_CONF: '/cc', REGISTRY_AUTH_FILE: '/a.json', KUBERNETES_SERVICE_HOST: '10.0.0.1', LOG_LEVEL: 'debug', RE_BOT_DB: '/db',
    ...BOT_SECRETS,
  };

  it('keeps the allow-listed variables, adds extra, removes secret-reference names even when allow-listed', () => {
    const env = childEnv({ HELM_DEBUG: 'false' }, { source, drop: ['AWS_SESSION_TOKEN'] });
    expect(Object.keys(env).sort()).toEqual([
      'AWS_PROFILE', 'AZURE_CONFIG_DIR', 'BUILDAH_FORMAT', 'CLOUDSDK_CONFIG', 'CONTAINERS_CONF', 'GOOGLE_APPLICATION_CREDENTIALS',
      'HELM_CACHE_HOME', 'HELM_DEBUG', 'HOME', 'KUBERNETES_SERVICE_HOST', 'LC_ALL', 'PATH', 'REGISTRY_AUTH_FILE', 'no_proxy',
    ]);
  });

  it('the worker keeps RE_BOT_*, LOG_LEVEL and secret-reference variables but no Slack credential', () => {
    const env = workerEnv(source);
    expect(env.RE_BOT_SECRET_KEY).toBe(BOT_SECRETS.RE_BOT_SECRET_KEY);
    expect(env.RE_BOT_DB).toBe('/db');
    expect(env.LOG_LEVEL).toBe('debug');
    expect(env.ASTRO_AGENT_TOKEN).toBe(BOT_SECRETS.ASTRO_AGENT_TOKEN);
    expect(Object.keys(env).filter((k) => k.startsWith('SLACK_'))).toEqual([]);
  });

  it('finds every { env: NAME } reference in a spec, and nothing else', () => {
    const spec = { a: { token: { env: 'A' } }, list: [{ password: { env: 'B' } }, { file: '/x' }], commonEnv: [{ name: 'C', value: 'v' }], env: 'NOT_A_REF', s: { stored: 'id' } };
    expect(secretEnvNames(spec).sort()).toEqual(['A', 'B']);
  });
});
