import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync } from 'node:fs';
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  VersionApi,
  setHeaderOptions,
  type V1Deployment,
} from '@kubernetes/client-node';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';

const run = promisify(execFile);
const KUBECTL = join(process.cwd(), '.tools/bin/kubectl');

let kube: FakeKube;
let core: CoreV1Api;
let apps: AppsV1Api;
let authz: AuthorizationV1Api;
let kc: KubeConfig;

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(KUBECTL, ['--kubeconfig', kube.kubeconfigPath, ...args], { timeout: 30_000 });
  return stdout;
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    return (e as { code?: number }).code ?? -1;
  }
}

async function until<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const deployment = (name: string, ns: string, image = 'busybox:1.36', replicas = 2): V1Deployment => ({
  metadata: { name, namespace: ns },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name, tier: 'agent' } }, spec: { containers: [{ name: 'main', image }] } },
  },
});

beforeAll(async () => {
  kube = await startFakeKube({
    nodes: [
      { name: 'node-1', singleProcessOOMKill: true },
      { name: 'node-2', singleProcessOOMKill: false },
      { name: 'node-3', singleProcessOOMKill: null },
    ],
    podReadyDelayMs: 50,
  });
  kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  authz = kc.makeApiClient(AuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: 'team' } } });
});

afterAll(async () => {
  await kube?.close();
});

describe('fake-kube with @kubernetes/client-node', () => {
  it('writes a private kubeconfig for context "fake" on an https URL', () => {
    expect(kube.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(kube.kubeconfigPath).mode & 0o777).toBe(0o600);
    expect(kc.getCurrentContext()).toBe('fake');
  });

  it('reports a configurable version', async () => {
    const v = kc.makeApiClient(VersionApi);
    expect((await v.getCode()).gitVersion).toBe('v1.33.1');
    kube.setVersion({ major: '1', minor: '29', gitVersion: 'v1.29.4' });
    expect(await v.getCode()).toMatchObject({ major: '1', minor: '29', gitVersion: 'v1.29.4' });
    kube.setVersion({ major: '1', minor: '33', gitVersion: 'v1.33.1' });
  });

  it('creates, reads, replaces, patches and deletes a Secret with Kubernetes error semantics', async () => {
    const ns = 'team';
    const created = await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'tok', labels: { app: 'x' } }, stringData: { token: 's3cret' } } });
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.data?.token).toBe(Buffer.from('s3cret').toString('base64'));
    expect(created.type).toBe('Opaque');
    expect(await status(core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'tok' } } }))).toBe(409);
    expect(await status(core.createNamespacedSecret({ namespace: 'nope', body: { metadata: { name: 'tok' } } }))).toBe(404);
    expect(await status(core.readNamespacedSecret({ namespace: ns, name: 'missing' }))).toBe(404);

    const read = await core.readNamespacedSecret({ namespace: ns, name: 'tok' });
    const stale = structuredClone(read);
    read.data = { token: Buffer.from('v2').toString('base64') };
    const replaced = await core.replaceNamespacedSecret({ namespace: ns, name: 'tok', body: read });
    expect(Number(replaced.metadata!.resourceVersion)).toBeGreaterThan(Number(stale.metadata!.resourceVersion));
    expect(await status(core.replaceNamespacedSecret({ namespace: ns, name: 'tok', body: stale }))).toBe(409);

    const patched = await core.patchNamespacedSecret(
      { namespace: ns, name: 'tok', body: { metadata: { labels: { extra: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.labels).toEqual({ app: 'x', extra: 'yes' });

    await core.deleteNamespacedSecret({ namespace: ns, name: 'tok' });
    expect(await status(core.readNamespacedSecret({ namespace: ns, name: 'tok' }))).toBe(404);
    expect(await status(core.deleteNamespacedSecret({ namespace: ns, name: 'tok' }))).toBe(404);
  });

  it('returns Kubernetes Status bodies', async () => {
    try {
      await core.readNamespacedSecret({ namespace: 'team', name: 'ghost' });
      expect.unreachable();
    } catch (e) {
      const body = JSON.parse((e as { body: string }).body);
      expect(body).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
    }
  });

  it('lists with label and field selectors, also across namespaces', async () => {
    await core.createNamespace({ body: { metadata: { name: 'other' } } });
    for (const [name, labels, ns] of [
      ['a', { app: 'agent', tier: 'one' }, 'team'],
      ['b', { app: 'agent', tier: 'two' }, 'team'],
      ['c', { app: 'web' }, 'team'],
      ['d', { app: 'agent' }, 'other'],
    ] as const) {
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels } } });
    }
    const names = async (labelSelector?: string, fieldSelector?: string, namespace = 'team') =>
      (await core.listNamespacedConfigMap({ namespace, labelSelector, fieldSelector })).items.map((i) => i.metadata!.name).sort();
    expect(await names('app=agent')).toEqual(['a', 'b']);
    expect(await names('app==agent,tier!=one')).toEqual(['b']);
    expect(await names('tier in (one,two)')).toEqual(['a', 'b']);
    expect(await names('app,tier notin (one)')).toEqual(['b', 'c']);
    expect(await names('!tier')).toEqual(['c']);
    expect(await names('tier')).toEqual(['a', 'b']);
    expect(await names(undefined, 'metadata.name=c')).toEqual(['c']);
    const all = await core.listConfigMapForAllNamespaces({ labelSelector: 'app=agent' });
    expect(all.items.map((i) => `${i.metadata!.namespace}/${i.metadata!.name}`).sort()).toEqual(['other/d', 'team/a', 'team/b']);
    await core.createNamespacedSecret({ namespace: 'other', body: { metadata: { name: 'pull' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'e30=' } } });
    const typed = await core.listSecretForAllNamespaces({ fieldSelector: 'type=kubernetes.io/dockerconfigjson' });
    expect(typed.items.map((s) => s.metadata!.name)).toEqual(['pull']);
  });

  it('deleting a namespace deletes its objects', async () => {
    await core.deleteNamespace({ name: 'other' });
    expect(await status(core.readNamespacedConfigMap({ namespace: 'other', name: 'd' }))).toBe(404);
    expect(kube.list('v1', 'Secret', 'other')).toEqual([]);
  });

  it('answers SelfSubjectAccessReviews from the deny list', async () => {
    const can = async (verb: string, resource: string, namespace?: string, group = '') =>
      (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, namespace, group } } } })).status!.allowed;
    expect(await can('create', 'secrets', 'team')).toBe(true);
    kube.deny({ verb: 'create', resource: 'secrets', namespace: 'team' });
    kube.deny({ verb: 'patch', resource: 'deployments', group: 'apps' });
    expect(await can('create', 'secrets', 'team')).toBe(false);
    expect(await can('create', 'secrets', 'elsewhere')).toBe(true);
    expect(await can('patch', 'deployments', 'team', 'apps')).toBe(false);
    expect(await can('patch', 'deployments', 'team', '')).toBe(true);
    kube.allowAll();
    expect(await can('create', 'secrets', 'team')).toBe(true);
  });

  it('lists nodes and serves kubelet configz with or without singleProcessOOMKill', async () => {
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata!.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(nodes.items[0]!.status!.nodeInfo!.kubeletVersion).toBe('v1.33.1');
    expect(nodes.items[0]!.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
    const configz = async (name: string) => {
      // served as application/json, which client-node parses although it declares string
      const r: unknown = await core.connectGetNodeProxyWithPath({ name, path: 'configz' });
      return (typeof r === 'string' ? JSON.parse(r) : r).kubeletconfig;
    };
    expect((await configz('node-1')).singleProcessOOMKill).toBe(true);
    expect((await configz('node-2')).singleProcessOOMKill).toBe(false);
    expect('singleProcessOOMKill' in (await configz('node-3'))).toBe(false);
    kube.setNodeOomKill('node-3', true);
    expect((await configz('node-3')).singleProcessOOMKill).toBe(true);
  });

  it('runs Deployments: Ready pods with the template labels, status, rollout on template change', async () => {
    await apps.createNamespacedDeployment({ namespace: 'team', body: deployment('agent', 'team') });
    const ready = await until(async () => {
      const d = await apps.readNamespacedDeployment({ namespace: 'team', name: 'agent' });
      return d.status?.readyReplicas === 2 ? d : undefined;
    });
    expect(ready.status).toMatchObject({ replicas: 2, availableReplicas: 2, updatedReplicas: 2, observedGeneration: 1 });
    expect(ready.status!.conditions!.find((c) => c.type === 'Available')!.status).toBe('True');
    const pods = (await core.listNamespacedPod({ namespace: 'team', labelSelector: 'app=agent' })).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.metadata!.name).toMatch(/^agent-[a-z0-9]{10}-[a-z0-9]{5}$/);
      expect(p.metadata!.labels).toMatchObject({ app: 'agent', tier: 'agent' });
      expect(p.status!.phase).toBe('Running');
      expect(p.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
      expect(p.spec!.containers[0]!.image).toBe('busybox:1.36');
    }
    const running = await core.listNamespacedPod({ namespace: 'team', fieldSelector: 'status.phase=Running', labelSelector: 'app=agent' });
    expect(running.items).toHaveLength(2);

    await apps.patchNamespacedDeployment(
      { namespace: 'team', name: 'agent', body: { spec: { template: { spec: { containers: [{ name: 'main', image: 'busybox:1.37' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const rolled = await until(async () => {
      const list = (await core.listNamespacedPod({ namespace: 'team', labelSelector: 'app=agent' })).items;
      return list.length === 2 && list.every((p) => p.spec!.containers[0]!.image === 'busybox:1.37' && p.status!.conditions!.some((c) => c.type === 'Ready' && c.status === 'True')) ? list : undefined;
    });
    expect(rolled.every((p) => !pods.some((o) => o.metadata!.name === p.metadata!.name))).toBe(true);
  });

  it('crashLoop makes pods not Ready with a waiting reason, restarts and a log tail; heal recovers', async () => {
    kube.crashLoop('agent', { restarts: 7, logTail: 'line 1\nline 2\nFATAL: bad token\n' });
    const pods = await until(async () => {
      const list = (await core.listNamespacedPod({ namespace: 'team', labelSelector: 'app=agent' })).items;
      return list.length && list.every((p) => p.status!.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff') ? list : undefined;
    });
    const p = pods[0]!;
    expect(p.status!.phase).toBe('Running');
    expect(p.status!.containerStatuses![0]!.restartCount).toBe(7);
    expect(p.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('False');
    const log = await core.readNamespacedPodLog({ namespace: 'team', name: p.metadata!.name!, tailLines: 2, container: 'main' });
    expect(log).toBe('line 2\nFATAL: bad token\n');
    await until(async () => ((await apps.readNamespacedDeployment({ namespace: 'team', name: 'agent' })).status?.readyReplicas ?? 0) === 0 || undefined);

    kube.heal('agent');
    await until(async () => (await apps.readNamespacedDeployment({ namespace: 'team', name: 'agent' })).status?.readyReplicas === 2 || undefined);
    kube.setPodLog('agent-', 'custom log\n');
    expect(await core.readNamespacedPodLog({ namespace: 'team', name: p.metadata!.name! })).toBe('custom log\n');
  });

  it('deleting a Deployment deletes its ReplicaSets and pods', async () => {
    await apps.deleteNamespacedDeployment({ namespace: 'team', name: 'agent' });
    expect(kube.list('apps/v1', 'ReplicaSet', 'team')).toEqual([]);
    expect(kube.list('v1', 'Pod', 'team')).toEqual([]);
  });

  it('does not persist dryRun=All', async () => {
    await core.createNamespacedConfigMap({ namespace: 'team', dryRun: 'All', body: { metadata: { name: 'dry' } } });
    expect(kube.get('v1', 'ConfigMap', 'team', 'dry')).toBeUndefined();
  });

  it('answers unknown paths with a 404 Status, bad JSON with 400, and stays up', async () => {
    const ca = kc.getCurrentCluster()!.caData!;
    const raw = (method: string, path: string, body?: string) =>
      new Promise<{ status: number; json: any }>((resolve, reject) => {
        const req = httpsRequest(`${kube.url}${path}`, { method, ca: Buffer.from(ca, 'base64'), headers: { 'content-type': 'application/json', authorization: 'Bearer x' } }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await raw('GET', '/nope/at/all')).toMatchObject({ status: 404, json: { kind: 'Status', reason: 'NotFound', code: 404 } });
    expect(await raw('GET', '/apis/nope.io/v1/things')).toMatchObject({ status: 404 });
    expect(await raw('POST', '/api/v1/namespaces/team/configmaps', '{nope')).toMatchObject({ status: 400, json: { kind: 'Status', reason: 'BadRequest' } });
    expect(await raw('PATCH', '/api/v1/namespaces/team/configmaps/a', '[')).toMatchObject({ status: 400 });
    expect(await raw('GET', '/api/v1/namespaces/team/configmaps?labelSelector=in%20(')).toMatchObject({ status: 400 });
    expect((await raw('GET', '/version')).json.gitVersion).toBe('v1.33.1');
    expect((await raw('GET', '/apis/apps/v1')).json.resources.map((r: { name: string }) => r.name)).toEqual(
      expect.arrayContaining(['deployments', 'deployments/status', 'deployments/scale', 'replicasets']),
    );
  });

  it('supports JSON patch and server-side apply that removes fields the manager stopped sending', async () => {
    await core.patchNamespacedConfigMap(
      { namespace: 'team', name: 'a', body: [{ op: 'add', path: '/data', value: { k: 'v' } }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    expect(kube.get('v1', 'ConfigMap', 'team', 'a').data).toEqual({ k: 'v' });
    const apply = (data: Record<string, string>) =>
      core.patchNamespacedConfigMap(
        { namespace: 'team', name: 'ssa', fieldManager: 'test', force: true, body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'ssa' }, data } },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    await apply({ one: '1', two: '2' });
    await apply({ one: '1' });
    expect(kube.get('v1', 'ConfigMap', 'team', 'ssa').data).toEqual({ one: '1' });
  });
});

describe('fake-kube with real kubectl', () => {
  it('get ns, apply (client-side and server-side), get pods by label, logs, auth can-i', async () => {
    expect(await kubectl('get', 'ns')).toMatch(/team/);
    const dir = mkdtempSync(join(tmpdir(), 'fake-kube-test-'));
    const file = join(dir, 'm.yaml');
    const manifest = (image: string, extraEnv: string) => `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: team}
data: {a: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ${image}
          env:
            - {name: KEEP, value: "1"}${extraEnv}
`;
    writeFileSync(file, manifest('nginx:1.27', '\n            - {name: DROP, value: "2"}'));
    expect(await kubectl('apply', '-f', file)).toMatch(/deployment.apps\/web created/);
    writeFileSync(file, manifest('nginx:1.28', ''));
    expect(await kubectl('apply', '-f', file)).toMatch(/deployment.apps\/web configured/);
    let env = kube.get('apps/v1', 'Deployment', 'team', 'web').spec.template.spec.containers[0].env;
    expect(env).toEqual([{ name: 'KEEP', value: '1' }]);

    expect(await kubectl('apply', '--server-side', '--force-conflicts', '-f', file)).toMatch(/serverside-applied/);
    writeFileSync(file, manifest('nginx:1.29', '\n            - {name: NEW, value: "3"}'));
    await kubectl('apply', '--server-side', '--force-conflicts', '-f', file);
    writeFileSync(file, manifest('nginx:1.29', ''));
    await kubectl('apply', '--server-side', '--force-conflicts', '-f', file);
    env = kube.get('apps/v1', 'Deployment', 'team', 'web').spec.template.spec.containers[0].env;
    expect(env).toEqual([{ name: 'KEEP', value: '1' }]);

    const pod = await until(async () => {
      const out = await kubectl('get', 'pods', '-n', 'team', '-l', 'app=web', '-o', 'jsonpath={.items[*].metadata.name}');
      return out.trim() || undefined;
    });
    expect(pod).toMatch(/^web-/);
    expect(await kubectl('get', 'pods', '-n', 'team', '-l', 'app=web')).toMatch(/web-/);
    expect(await kubectl('logs', '-n', 'team', pod, '--tail', '2')).toMatch(/waiting for tasks/);
    expect((await kubectl('auth', 'can-i', 'create', 'secrets', '-n', 'team')).trim()).toBe('yes');
    kube.deny({ verb: 'create', resource: 'secrets' });
    const denied = await kubectl('auth', 'can-i', 'create', 'secrets', '-n', 'team').catch((e) => e.stdout as string);
    expect(denied.trim()).toBe('no');
    kube.allowAll();
  }, 60_000);
});
