import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import { renderValues, valuesYaml, type Values } from '../../src/spec/values.ts';

const run = promisify(execFile);
const ROOT = process.cwd();
const HELM = join(ROOT, '.tools/bin/helm');
const CHART = join(ROOT, 'src/devkit/chart');
const NS = 'astro-agents';
const RELEASE = 'astro-agent';

let kube: FakeKube;
let dir: string;
let base: Values;

async function helm(...args: string[]): Promise<string> {
  const { stdout } = await run(HELM, [...args, '--kubeconfig', kube.kubeconfigPath], { timeout: 60_000, env: { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data') } });
  return stdout;
}

function valuesFile(name: string, values: Values): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, valuesYaml(values));
  return file;
}

async function until<T>(fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const deployments = (ns = NS) => kube.list('apps/v1', 'Deployment', ns).map((d) => d.metadata.name as string).sort();
const envOf = (name: string) => (kube.get('apps/v1', 'Deployment', NS, name)?.spec.template.spec.containers[0].env ?? []).map((e: { name: string }) => e.name);
const allReady = (names: string[]) =>
  names.every((n) => {
    const pods = kube.list('v1', 'Pod', NS).filter((p) => p.metadata.labels?.app === n);
    return pods.length > 0 && pods.every((p) => p.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'));
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fake-kube-helm-'));
  const parsed = await loadSpecFile(join(ROOT, 'examples/demo.yaml'));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  base = renderValues(parsed.spec);
  kube = await startFakeKube({ podReadyDelayMs: 30 });
  await run(join(ROOT, '.tools/bin/kubectl'), ['--kubeconfig', kube.kubeconfigPath, 'create', 'namespace', NS]);
});

afterAll(async () => {
  await kube?.close();
});

describe('real helm v4 against fake-kube with the stand-in chart', () => {
  it('installs, upgrades with removals, keeps history, rolls back and uninstalls', async () => {
    const first = structuredClone(base);
    const workers = first.workers as Array<Record<string, unknown>>;
    workers.push({ ...structuredClone(workers[0]!), name: 'extra', queues: ['extra'] });
    (first.commonEnv as Array<Record<string, unknown>>).push({ name: 'TEMP_FLAG', value: '1' });

    await helm('upgrade', '--install', RELEASE, CHART, '-n', NS, '-f', valuesFile('first', first));
    const list = JSON.parse(await helm('list', '-n', NS, '-o', 'json'));
    expect(list).toMatchObject([{ name: RELEASE, namespace: NS, revision: '1', status: 'deployed', chart: 'astro-remote-execution-agent-2.3.3-fake.1' }]);
    expect(JSON.parse(await helm('get', 'values', RELEASE, '-n', NS, '-o', 'json'))).toEqual(first);
    const manifest = await helm('get', 'manifest', RELEASE, '-n', NS);
    expect(manifest).toContain('name: demo-worker-extra');

    const all = ['demo-dag-processor', 'demo-sentinel', 'demo-triggerer', 'demo-worker-default-worker', 'demo-worker-extra'];
    expect(deployments()).toEqual(all);
    expect(envOf('demo-worker-default-worker')).toContain('TEMP_FLAG');
    expect(envOf('demo-worker-default-worker')).toContain('ASTRO_AGENT_CLIENT_API_TOKEN');
    await until(() => allReady(all));
    const sa = kube.get('v1', 'ServiceAccount', NS, 'demo-worker-default-worker');
    expect(sa.metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/re-bot-demo-agents');
    const oldPods = kube.list('v1', 'Pod', NS).filter((p) => p.metadata.labels.app === 'demo-worker-default-worker').map((p) => p.metadata.name);

    await helm('upgrade', '--install', RELEASE, CHART, '-n', NS, '-f', valuesFile('second', base));
    const remaining = all.filter((n) => n !== 'demo-worker-extra');
    expect(deployments()).toEqual(remaining);
    expect(kube.get('v1', 'ServiceAccount', NS, 'demo-worker-extra')).toBeUndefined();
    expect(envOf('demo-worker-default-worker')).not.toContain('TEMP_FLAG');
    expect(envOf('demo-worker-default-worker')).toContain('ASTRO_DEPLOYMENT_ID');
    await until(() => allReady(remaining) && kube.list('v1', 'Pod', NS).every((p) => !oldPods.includes(p.metadata.name)));
    expect(kube.list('v1', 'Pod', NS).filter((p) => p.metadata.labels.app === 'demo-worker-extra')).toEqual([]);

    const history = JSON.parse(await helm('history', RELEASE, '-n', NS, '-o', 'json'));
    expect(history.map((h: { revision: number }) => h.revision)).toEqual([1, 2]);

    await helm('rollback', RELEASE, '1', '-n', NS);
    expect(deployments()).toEqual(all);
    expect(envOf('demo-worker-default-worker')).toContain('TEMP_FLAG');
    expect(JSON.parse(await helm('get', 'values', RELEASE, '-n', NS, '-o', 'json'))).toEqual(first);
    await until(() => allReady(all));

    await helm('uninstall', RELEASE, '-n', NS);
    expect(deployments()).toEqual([]);
    expect(kube.list('v1', 'Pod', NS)).toEqual([]);
    expect(kube.list('v1', 'ServiceAccount', NS)).toEqual([]);
    expect(kube.list('v1', 'Secret', NS).filter((s) => s.metadata.labels?.owner === 'helm')).toEqual([]);
    expect(JSON.parse(await helm('list', '-n', NS, '-o', 'json'))).toEqual([]);
  }, 120_000);

  it('upgrade --install twice with the same values is idempotent', async () => {
    const file = valuesFile('same', base);
    await helm('upgrade', '--install', 'again', CHART, '-n', NS, '-f', file);
    const before = kube.get('apps/v1', 'Deployment', NS, 'demo-worker-default-worker');
    await helm('upgrade', '--install', 'again', CHART, '-n', NS, '-f', file);
    const after = kube.get('apps/v1', 'Deployment', NS, 'demo-worker-default-worker');
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(after.metadata.generation).toBe(before.metadata.generation);
    expect(after.spec).toEqual(before.spec);
    const history = JSON.parse(await helm('history', 'again', '-n', NS, '-o', 'json'));
    expect(history.map((h: { revision: number; status: string }) => [h.revision, h.status])).toEqual([
      [1, 'superseded'],
      [2, 'deployed'],
    ]);
    await helm('uninstall', 'again', '-n', NS);
  }, 120_000);

  it('helm --wait succeeds on Ready pods and times out on a crash-looping Deployment', async () => {
    const file = valuesFile('wait', base);
    await helm('upgrade', '--install', 'waity', CHART, '-n', NS, '-f', file, '--wait', '--timeout', '30s');
    expect(allReady(['demo-worker-default-worker', 'demo-sentinel'])).toBe(true);

    kube.crashLoop('demo-worker-default-worker', { reason: 'CrashLoopBackOff', restarts: 3 });
    const changed = structuredClone(base);
    (changed.commonEnv as Array<Record<string, unknown>>).push({ name: 'ROLL', value: '1' });
    const started = Date.now();
    const err = await helm('upgrade', '--install', 'waity', CHART, '-n', NS, '-f', valuesFile('wait2', changed), '--wait', '--timeout', '3s').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(30_000);
    const history = JSON.parse(await helm('history', 'waity', '-n', NS, '-o', 'json'));
    expect(history.at(-1).status).toBe('failed');

    kube.heal('demo-worker-default-worker');
    await helm('upgrade', '--install', 'waity', CHART, '-n', NS, '-f', valuesFile('wait2', changed), '--wait', '--timeout', '30s');
    await helm('uninstall', 'waity', '-n', NS);
  }, 120_000);
});

describe('stand-in chart', () => {
  const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml') && f !== 'invalid.yaml');

  it.each(examples)('lints and renders with the values of examples/%s', async (example) => {
    const parsed = await loadSpecFile(join(ROOT, 'examples', example));
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const values = renderValues(parsed.spec);
    const file = valuesFile(`example-${example}`, values);
    await run(HELM, ['lint', CHART, '-f', file], { timeout: 60_000 });
    const { stdout } = await run(HELM, ['template', 'r', CHART, '-n', NS, '-f', file], { timeout: 60_000 });
    const docs = parseAllDocuments(stdout).map((d) => d.toJS()).filter(Boolean);
    const prefix = values.resourceNamePrefix as string;
    const names = docs.filter((d) => d.kind === 'Deployment').map((d) => d.metadata.name);
    for (const w of values.workers as Array<{ name: string }>) expect(names).toContain(`${prefix}-worker-${w.name}`);
    expect(names).toContain(`${prefix}-dag-processor`);
    expect(names).toContain(`${prefix}-triggerer`);
    expect(names.includes(`${prefix}-sentinel`)).toBe((values.sentinel as { enabled: boolean }).enabled);
    const worker = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === `${prefix}-worker-${(values.workers as Array<{ name: string }>)[0]!.name}`);
    const env = worker.spec.template.spec.containers[0].env;
    expect(env.find((e: { name: string }) => e.name === 'ASTRO_AGENT_CLIENT_API_TOKEN').valueFrom.secretKeyRef).toEqual({ name: values.agentTokenSecretName, key: 'token' });
    expect(worker.spec.template.spec.imagePullSecrets).toEqual([{ name: values.imagePullSecretName }]);
  }, 60_000);

  it('fails like the real chart without resourceNamePrefix or with two token sources', async () => {
    const file = valuesFile('bad', { ...base, resourceNamePrefix: '' });
    await expect(run(HELM, ['template', 'r', CHART, '-f', file])).rejects.toThrow(/resourceNamePrefix/);
    const both = valuesFile('both', { ...base, agentToken: 'plain' });
    await expect(run(HELM, ['template', 'r', CHART, '-f', both])).rejects.toThrow(/only one of agentToken, agentTokenSecretName/);
  }, 60_000);
});

describe('fake-kube CLI', () => {
  it('prints the kubeconfig, serves helm, exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/fake-kube.mjs'), '--port', '0', '--k8s-version', '1.29'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no kubeconfig line in: ${out}`)), 30_000);
      child.stdout.on('data', () => {
        const m = /^KUBECONFIG=(.+)$/m.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]!.trim());
        }
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${out}`)));
    });
    expect(out).toMatch(/fake Kubernetes API on https:\/\/127\.0\.0\.1:\d+/);
    expect(out).toContain(`helm --kubeconfig ${kubeconfig} list -A`);
    const { stdout } = await run(HELM, ['list', '-A', '--kubeconfig', kubeconfig], { timeout: 30_000 });
    expect(stdout).toMatch(/^NAME\s+NAMESPACE/);
    const { stdout: version } = await run(join(ROOT, '.tools/bin/kubectl'), ['version', '--kubeconfig', kubeconfig], { timeout: 30_000 });
    expect(version).toContain('Server Version: v1.29.1');
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }, 60_000);
});
