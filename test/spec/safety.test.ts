/**
 * The spec safety policy as `re-bot plan` users meet it: an unsafe spec exits 2 naming the field, what was
 * expected and what to do, and never echoes a credential it found. The table runs through the CLI's own
 * dispatch (main) in-process; a few cases spawn bin/re-bot.mjs to pin the real exit code and environment.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { checkSpecSafety } from '../../src/spec/safety.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 're-bot-safety-'));
const DEMO = parse(readFileSync(join(ROOT, 'examples', 'demo.yaml'), 'utf8'));
const CRED = 'tok3n-S3CRET';
const POLICY_VARS = ['RE_BOT_ALLOWED_API_HOSTS', 'RE_BOT_ALLOWED_NAMESPACES', 'RE_BOT_ALLOWED_REGISTRIES', 'RE_BOT_BUILD_ROOT'];

type Raw = Record<string, any>;
let n = 0;
function specFile(patch: (s: Raw) => void): string {
  const s = structuredClone(DEMO);
  patch(s);
  const file = join(work, `spec-${++n}.yaml`);
  writeFileSync(file, stringify(s));
  return file;
}

/** `re-bot plan <file>` through the CLI dispatch, with policy variables set for the call only */
async function plan(file: string, env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: any) => ((stderr += String(c)), true));
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const saved = Object.fromEntries(POLICY_VARS.map((k) => [k, process.env[k]]));
  for (const k of POLICY_VARS) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const code = await main(['plan', file, '--out', join(work, `out-${n}`)]);
    return { code, stderr };
  } finally {
    spy.mockRestore();
    out.mockRestore();
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

afterEach(() => vi.restoreAllMocks());

const userinfo = (url: string) => url.replace('://', `://${CRED}@`);

interface Case {
  name: string;
  field: string;
  expect: RegExp;
  patch: (s: Raw) => void;
  env?: Record<string, string>;
}

const CASES: Case[] = [
  { name: 'a Dockerfile URL', field: 'images.client.dockerfile', expect: /must not be a URL.*relative path inside images\.client\.contextDir/, patch: (s) => (s.images.client.dockerfile = 'https://evil.example/Dockerfile') },
  { name: 'a Dockerfile as git@ remote', field: 'images.client.dockerfile', expect: /must not be a URL/, patch: (s) => (s.images.client.dockerfile = 'git@github.com:evil/repo.git') },
  { name: 'a Dockerfile with ..', field: 'images.client.dockerfile', expect: /must not contain a '\.\.' segment/, patch: (s) => (s.images.client.dockerfile = '../../Dockerfile') },
  { name: 'an absolute Dockerfile', field: 'images.client.dockerfile', expect: /must not be an absolute path/, patch: (s) => (s.images.client.dockerfile = '/etc/Dockerfile') },
  { name: 'contextDir: /', field: 'images.client.contextDir', expect: /must be inside the build root .*resolves to \//, patch: (s) => (s.images.client.contextDir = '/') },
  { name: 'contextDir escaping with ..', field: 'images.client.contextDir', expect: /must be inside the build root/, patch: (s) => (s.images.client.contextDir = 'examples/../..') },
  { name: 'contextDir outside RE_BOT_BUILD_ROOT', field: 'images.client.contextDir', expect: /must be inside the build root .*examples/, patch: () => {}, env: { RE_BOT_BUILD_ROOT: join(ROOT, 'examples', 'demo-project', 'dags') } },
  // every URL field, with a credential before the host
  { name: 'userinfo in deployment.apiUrl', field: 'deployment.apiUrl', expect: /userinfo/, patch: (s) => (s.deployment.apiUrl = userinfo(s.deployment.apiUrl)) },
  { name: 'userinfo in deployment.airflowApiUrl', field: 'deployment.airflowApiUrl', expect: /^ {2}deployment\.airflowApiUrl: `deployment\.airflowApiUrl` must not contain a user name or password \(found userinfo before @\); put credentials in a secret reference$/m, patch: (s) => (s.deployment.airflowApiUrl = userinfo('https://airflow.example.com/api/v2')) },
  { name: 'userinfo (user:password) in deployment.astroApiUrl', field: 'deployment.astroApiUrl', expect: /userinfo/, patch: (s) => (s.deployment.astroApiUrl = `https://me:${CRED}@api.astronomer.io`) },
  { name: 'userinfo in cluster.chart.repo', field: 'cluster.chart.repo', expect: /userinfo/, patch: (s) => (s.cluster.chart = { repo: userinfo('https://helm.astronomer.io'), version: '2.3.3' }) },
  { name: 'userinfo in secretsBackend.vaultUrl', field: 'secretsBackend.vaultUrl', expect: /userinfo/, patch: (s) => (s.secretsBackend = { provider: 'azure-key-vault', vaultUrl: userinfo('https://kv.vault.azure.net/') }) },
  { name: 'userinfo in secretsBackend.url', field: 'secretsBackend.url', expect: /userinfo/, patch: (s) => (s.secretsBackend = { provider: 'hashicorp-vault', url: userinfo('https://vault.acme.internal:8200'), kubernetesRole: 'agents' }) },
  { name: 'userinfo in dagSource.repoUrl', field: 'dagSource.repoUrl', expect: /userinfo/, patch: (s) => (s.dagSource.repoUrl = userinfo(s.dagSource.repoUrl)) },
  { name: 'userinfo in logging.taskLogUrlPattern', field: 'logging.taskLogUrlPattern', expect: /userinfo/, patch: (s) => (s.logging = { mode: 'external-link', config: 'sources: {}', taskLogUrlPattern: userinfo('https://logs.example.com/{{ ti.dag_id }}') }) },
  { name: 'userinfo in logging.remoteBaseLogFolder', field: 'logging.remoteBaseLogFolder', expect: /userinfo/, patch: (s) => (s.logging.remoteBaseLogFolder = `s3://AKIA:${CRED}@re-bot-demo-logs/logs`) },
  { name: 'userinfo in openLineage.url', field: 'openLineage.url', expect: /userinfo/, patch: (s) => (s.openLineage.url = userinfo('https://o11y.astronomer.io')) },
  { name: 'userinfo in a loopback http URL', field: 'deployment.airflowApiUrl', expect: /userinfo/, patch: (s) => (s.deployment.airflowApiUrl = userinfo(s.deployment.airflowApiUrl)) },
  { name: 'http to a non-loopback host', field: 'deployment.airflowApiUrl', expect: /must use https \(got http to airflow\.example\.com\); only loopback hosts/, patch: (s) => (s.deployment.airflowApiUrl = 'http://airflow.example.com/api/v2') },
  { name: 'http to 128.0.0.1 (not 127/8)', field: 'openLineage.url', expect: /must use https/, patch: (s) => (s.openLineage.url = 'http://128.0.0.1:8080') },
  // the Deployment API token goes only to Astronomer's hosts (or the admin's RE_BOT_ALLOWED_API_HOSTS): step 1 uses it before any approval
  { name: 'airflowApiUrl on a host that is not Astronomer\'s', field: 'deployment.airflowApiUrl', expect: /would receive the Deployment API token at collector\.evil\.example, which is not in the default API hosts \(api\.astronomer\.io, \*\.astronomer\.run, \*\.astronomer\.io\); the bot's admin can widen them with RE_BOT_ALLOWED_API_HOSTS/, patch: (s) => (s.deployment.airflowApiUrl = 'https://collector.evil.example/api/v2') },
  { name: 'astroApiUrl on a look-alike host', field: 'deployment.astroApiUrl', expect: /token at api\.astronomer\.io\.evil\.example, which is not in the default API hosts/, patch: (s) => (s.deployment.astroApiUrl = 'https://api.astronomer.io.evil.example') },
  { name: 'OpenLineage sending the API token to another host', field: 'openLineage.url', expect: /token at lineage\.example\.com, which is not in the default API hosts/, patch: (s) => (s.openLineage.url = 'https://lineage.example.com') },
  { name: 'a host outside RE_BOT_ALLOWED_API_HOSTS', field: 'deployment.astroApiUrl', expect: /token at api\.astronomer\.io, which is not in RE_BOT_ALLOWED_API_HOSTS \(astro-proxy\.acme\.internal\)/, patch: (s) => (s.deployment.astroApiUrl = 'https://api.astronomer.io'), env: { RE_BOT_ALLOWED_API_HOSTS: 'astro-proxy.acme.internal' } },
  { name: 'namespace kube-system', field: 'cluster.namespace', expect: /must not be kube-system \(reserved.*choose a namespace of its own/, patch: (s) => (s.cluster.namespace = 'kube-system') },
  { name: 'namespace default', field: 'cluster.namespace', expect: /must not be default/, patch: (s) => (s.cluster.namespace = 'default') },
  { name: 'namespace outside RE_BOT_ALLOWED_NAMESPACES', field: 'cluster.namespace', expect: /astro-agents is not allowed by RE_BOT_ALLOWED_NAMESPACES \(team-\*-agents, re-bot\)/, patch: () => {}, env: { RE_BOT_ALLOWED_NAMESPACES: 'team-*-agents,re-bot' } },
  { name: 'registry outside RE_BOT_ALLOWED_REGISTRIES', field: 'images.client.repository', expect: /pushes to 127\.0\.0\.1:5000, which is not in RE_BOT_ALLOWED_REGISTRIES/, patch: () => {}, env: { RE_BOT_ALLOWED_REGISTRIES: '*.dkr.ecr.*.amazonaws.com,127.0.0.1:5001' } },
  { name: 'Docker Hub when only a private registry is allowed', field: 'images.client.repository', expect: /pushes to docker\.io/, patch: (s) => (s.images.client.repository = 'acme/client'), env: { RE_BOT_ALLOWED_REGISTRIES: 'registry.acme.internal' } },
];

describe('re-bot plan refuses an unsafe spec (exit 2, the field named, nothing secret printed)', () => {
  it.each(CASES)('$name', async (c) => {
    const r = await plan(specFile(c.patch), c.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^ {2}${c.field.replace(/\./g, '\\.')}: `, 'm'));
    expect(r.stderr.split('\n').find((l) => l.startsWith(`  ${c.field}: `) && c.expect.test(l)) ?? r.stderr).toMatch(c.expect);
    expect(r.stderr).not.toContain(CRED);
  });
});

describe('what the policy lets through', () => {
  it.each(readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml') && f !== 'invalid.yaml'))('examples/%s plans (loopback http in demo.yaml included)', async (f) => {
    const r = await plan(join(ROOT, 'examples', f));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a namespace and a registry on the allow-lists (globs, a host pattern without port allows any port)', async () => {
    const file = specFile((s) => (s.cluster.namespace = 'team-a-agents'));
    const r = await plan(file, { RE_BOT_ALLOWED_NAMESPACES: 'astro-*, team-*-agents', RE_BOT_ALLOWED_REGISTRIES: 'registry.acme.internal,127.0.0.1' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('http to ::1 and localhost, a Dockerfile in a sub-directory of contextDir', async () => {
    const file = specFile((s) => {
      s.deployment.airflowApiUrl = 'http://[::1]:8793/api/v2';
      s.openLineage.url = 'http://localhost:5000';
      s.images.client.dockerfile = 'docker/Dockerfile.client';
    });
    const r = await plan(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('API hosts: an admin-allowed proxy host, `*`, and OpenLineage with a key of its own on any host', async () => {
    const proxied = specFile((s) => (s.deployment.airflowApiUrl = 'https://airflow-proxy.acme.internal/api/v2'));
    expect(await plan(proxied)).toMatchObject({ code: 2 });
    expect(await plan(proxied, { RE_BOT_ALLOWED_API_HOSTS: '*.acme.internal, *.astronomer.run, *.astronomer.io' })).toEqual({ code: 0, stderr: '' });
    expect(await plan(proxied, { RE_BOT_ALLOWED_API_HOSTS: '*' })).toEqual({ code: 0, stderr: '' });
    const ownKey = specFile((s) => {
      s.openLineage = { enabled: true, url: 'https://lineage.example.com', apiKey: { env: 'OL_KEY' } };
    });
    expect(await plan(ownKey, {})).toMatchObject({ stderr: expect.not.stringContaining('openLineage.url') });
  });

  it('a malformed policy variable is refused, naming it', async () => {
    const r = await plan(join(ROOT, 'examples', 'aws-minimal.yaml'), { RE_BOT_ALLOWED_NAMESPACES: 'Astro_*', RE_BOT_BUILD_ROOT: join(work, 'missing'), RE_BOT_ALLOWED_API_HOSTS: 'https://api.astronomer.io' });
    expect(r.stderr).toMatch(/^ {2}RE_BOT_ALLOWED_API_HOSTS: expected comma-separated host names or globs \(no scheme, port or path\).*not valid: https:\/\/api\.astronomer\.io/m);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}RE_BOT_ALLOWED_NAMESPACES: .*not valid: Astro_\*/m);
    expect(r.stderr).toMatch(/^ {2}RE_BOT_BUILD_ROOT: .*is not a directory/m);
  });
});

describe('real paths', () => {
  it('a contextDir inside the build root that is a symbolic link out of it is refused; a Dockerfile linked out of the context too', () => {
    const root = mkdtempSync(join(tmpdir(), 're-bot-root-'));
    mkdirSync(join(root, 'ctx'));
    symlinkSync('/', join(root, 'escape'));
    symlinkSync('/etc/hostname', join(root, 'ctx', 'Dockerfile'));
    const spec = (contextDir: string, dockerfile = 'Dockerfile.client') => ({ cluster: { namespace: 'astro-agents' }, images: { client: { contextDir, dockerfile, repository: 'r.example.com/a/b' } } });
    const policy = { buildRoot: root, workDir: root };
    expect(checkSpecSafety(spec('escape'), policy).map((e) => e.path)).toEqual(['images.client.contextDir']);
    expect(checkSpecSafety(spec('ctx', 'Dockerfile'), policy).map((e) => e.message)).toEqual([expect.stringMatching(/resolves outside images\.client\.contextDir/)]);
    expect(checkSpecSafety(spec('ctx'), policy)).toEqual([]);
    expect(checkSpecSafety(spec('not-yet/created'), policy)).toEqual([]);
  });
});

describe('bin/re-bot.mjs', () => {
  it('plan exits 2 on a token in a URL, naming the field and never printing the token; run refuses the same spec before doing anything', async () => {
    const file = specFile((s) => (s.deployment.apiUrl = userinfo(s.deployment.apiUrl)));
    for (const cmd of ['plan', 'run']) {
      const r = await execa('node', [join(ROOT, 'bin', 're-bot.mjs'), cmd, file, '--out', join(work, 'bin-out')], { cwd: ROOT, reject: false, timeout: 60_000, env: { RE_BOT_DB: join(work, 'never.db') } });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('deployment.apiUrl: `deployment.apiUrl` must not contain a user name or password');
      expect(r.stderr + r.stdout).not.toContain(CRED);
    }
    expect(readdirSync(work)).not.toContain('never.db');
    expect(readdirSync(work)).not.toContain('bin-out');
  }, 60_000);

  it('plan reads RE_BOT_ALLOWED_NAMESPACES from the environment', async () => {
    const file = specFile(() => {});
    const r = await execa('node', [join(ROOT, 'bin', 're-bot.mjs'), 'plan', file, '--out', join(work, 'bin-out2')], { cwd: ROOT, reject: false, timeout: 60_000, env: { RE_BOT_ALLOWED_NAMESPACES: 'prod-*' } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/cluster\.namespace: .*not allowed by RE_BOT_ALLOWED_NAMESPACES \(prod-\*\)/);
  }, 60_000);
});
