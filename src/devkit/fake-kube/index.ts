/** An in-memory Kubernetes API server over HTTPS that real helm v4, kubectl and @kubernetes/client-node accept. */
import { mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type AccessRule, type Version } from './cluster.ts';
import { DeploymentController } from './controller.ts';
import { findKind } from './resources.ts';
import { present } from './handlers.ts';
import { startHttpServer, type RequestRecord } from './server.ts';
import { generateServingCert } from './tls.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { nodes as nodeObjects } from './special.ts';

export type { AccessRule } from './cluster.ts';

export interface FakeKubeOptions {
  port?: number;
  version?: Version;
  /** null = the kubelet's configz has no singleProcessOOMKill field */
  nodes?: Array<{ name: string; singleProcessOOMKill?: boolean | null }>;
  /**
   * access denied to the identity: SelfSubjectAccessReviews answer allowed: false, and the kubelet configz
   * (`{ verb: 'get', resource: 'nodes', subresource: 'proxy' }`) answers 403 Forbidden. Other requests are not checked.
   */
  deny?: AccessRule[];
  podReadyDelayMs?: number;
  dir?: string;
  logRequests?: boolean;
}

export interface FakeKube {
  url: string;
  kubeconfigPath: string;
  setVersion(v: Version): void;
  setNodeOomKill(node: string, value: boolean | null): void;
  deny(rule: AccessRule): void;
  allowAll(): void;
  crashLoop(deploymentName: string, opts?: { reason?: string; restarts?: number; message?: string; logTail?: string }): void;
  heal(deploymentName: string): void;
  setPodLog(podNamePrefix: string, text: string): void;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): any | undefined;
  list(apiVersion: string, kind: string, namespace?: string): any[];
  requests: RequestRecord[];
  close(): Promise<void>;
}

export async function startFakeKube(opts: FakeKubeOptions = {}): Promise<FakeKube> {
  const cluster = new Cluster(opts.version ?? { major: '1', minor: '33', gitVersion: 'v1.33.1' });
  for (const n of opts.nodes ?? [{ name: 'node-1', singleProcessOOMKill: true }]) cluster.nodes.set(n.name, n.singleProcessOOMKill ?? null);
  cluster.denyRules = [...(opts.deny ?? [])];
  const nsType = cluster.type('v1', 'Namespace');
  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    cluster.store.create(nsType, { metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }
  const controller = new DeploymentController(cluster, opts.podReadyDelayMs ?? 150);
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'fake-kube-')));
  await mkdir(dir, { recursive: true });
  const tls = generateServingCert();
  const requests: RequestRecord[] = [];
  const http = await startHttpServer(cluster, tls, opts.port ?? 0, opts.logRequests ? requests : undefined);
  const url = `https://127.0.0.1:${http.port}`;
  const kubeconfigPath = await writeKubeconfig(dir, url, tls.cert);

  const typeOf = (apiVersion: string, kind: string) => {
    const t = findKind(apiVersion, kind);
    if (!t) throw new Error(`fake-kube does not serve ${apiVersion} ${kind}`);
    return t;
  };

  return {
    url,
    kubeconfigPath,
    requests,
    setVersion(v) {
      cluster.version = v;
    },
    setNodeOomKill(node, value) {
      cluster.nodes.set(node, value);
    },
    deny(rule) {
      cluster.denyRules.push(rule);
    },
    allowAll() {
      cluster.denyRules = [];
    },
    crashLoop(name, o = {}) {
      cluster.crashLoops.set(name, { reason: o.reason ?? 'CrashLoopBackOff', restarts: o.restarts ?? 5, message: o.message, logTail: o.logTail });
      controller.refresh(name);
    },
    heal(name) {
      cluster.crashLoops.delete(name);
      controller.refresh(name);
    },
    setPodLog(prefix, text) {
      cluster.podLogs.set(prefix, text);
    },
    get(apiVersion, kind, namespace, name) {
      if (kind === 'Node') return nodeObjects(cluster).find((n) => n.metadata.name === name);
      const t = typeOf(apiVersion, kind);
      const o = cluster.store.get(t, namespace, name);
      return o && present(t, o);
    },
    list(apiVersion, kind, namespace) {
      if (kind === 'Node') return nodeObjects(cluster);
      const t = typeOf(apiVersion, kind);
      return cluster.store.list(t, namespace).map((o) => present(t, o));
    },
    async close() {
      controller.close();
      await http.close();
    },
  };
}
