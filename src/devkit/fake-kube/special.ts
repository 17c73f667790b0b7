/** Endpoints with their own semantics: access reviews, nodes and their kubelet configz, pod logs. */
import { Cluster, type AccessRule } from './cluster.ts';
import type { Obj } from './store.ts';
import { ApiError, badRequest, notFound } from './status.ts';

/** who the fake cluster says is asking, in Forbidden messages */
const FAKE_USER = 'system:serviceaccount:re-bot:re-bot';

/** The deny rule (if any) that forbids these request attributes; every other request is allowed. */
export function deniedBy(c: Cluster, a: { verb?: string; resource?: string; group?: string; namespace?: string; subresource?: string }): AccessRule | undefined {
  return c.denyRules.find(
    (rule) =>
      (rule.verb === '*' || rule.verb === a.verb) &&
      (rule.resource === '*' || rule.resource === a.resource) &&
      (rule.group === undefined || rule.group === '*' || rule.group === (a.group ?? '')) &&
      (rule.namespace === undefined || rule.namespace === (a.namespace ?? '')) &&
      (rule.subresource === undefined || rule.subresource === (a.subresource ?? '')),
  );
}

export function accessReview(c: Cluster, body: Obj): Obj {
  const a = body.spec?.resourceAttributes;
  if (!a && !body.spec?.nonResourceAttributes) throw badRequest('spec.resourceAttributes or spec.nonResourceAttributes is required');
  const allowed = a ? !deniedBy(c, a) : true;
  const status: Obj = { allowed };
  if (allowed) status.reason = 'allowed by the fake cluster';
  return { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec: body.spec, status };
}

export function rulesReview(body: Obj): Obj {
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec: body.spec ?? {},
    status: { resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }], incomplete: false },
  };
}

const BOOT = new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export function nodeObject(c: Cluster, name: string, index: number): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: `00000000-0000-4000-8000-${String(index + 1).padStart(12, '0')}`, resourceVersion: '1', creationTimestamp: BOOT, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
    spec: {},
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: BOOT, lastTransitionTime: BOOT }],
      addresses: [{ type: 'InternalIP', address: `10.0.0.${index + 10}` }, { type: 'Hostname', address: name }],
      capacity: { cpu: '4', memory: '16Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '16Gi', pods: '110' },
      nodeInfo: { kubeletVersion: c.gitVersion, kubeProxyVersion: c.gitVersion, containerRuntimeVersion: 'containerd://1.7.24', operatingSystem: 'linux', architecture: 'amd64', osImage: 'Fake Linux', kernelVersion: '6.1.0' },
    },
  };
}

export function nodes(c: Cluster): Obj[] {
  return [...c.nodes.keys()].map((n, i) => nodeObject(c, n, i));
}

export function node(c: Cluster, name: string): Obj {
  const i = [...c.nodes.keys()].indexOf(name);
  if (i < 0) throw notFound('nodes', '', name);
  return nodeObject(c, name, i);
}

/**
 * The kubelet configuration through the API server's node proxy. Denied like the real API server when a deny
 * rule matches `get nodes/proxy` (e.g. an identity bound to manifests/base, which grants no nodes/proxy).
 */
export function configz(c: Cluster, name: string): Obj {
  node(c, name);
  if (deniedBy(c, { verb: 'get', resource: 'nodes', subresource: 'proxy' })) {
    throw new ApiError(403, 'Forbidden', `nodes "${name}" is forbidden: User "${FAKE_USER}" cannot get resource "nodes/proxy" in API group "" at the cluster scope`, { name, kind: 'nodes' });
  }
  const oom = c.nodes.get(name);
  const kubeletconfig: Obj = {
    enableServer: true,
    staticPodPath: '/etc/kubernetes/manifests',
    syncFrequency: '1m0s',
    cgroupDriver: 'systemd',
    maxPods: 110,
    failSwapOn: true,
    memorySwap: {},
  };
  if (oom !== null && oom !== undefined) kubeletconfig.singleProcessOOMKill = oom;
  return { kubeletconfig };
}

export function podLog(c: Cluster, pod: Obj, query: URLSearchParams): string {
  const name: string = pod.metadata.name;
  const owner = deploymentOf(pod);
  const crash = owner ? c.crashLoops.get(owner) : undefined;
  const custom = [...c.podLogs.entries()].filter(([p]) => name.startsWith(p)).sort((a, b) => b[0].length - a[0].length)[0]?.[1];
  let text = custom ?? (crash ? (crash.logTail ?? `Error: ${crash.message ?? 'agent exited with code 1'}\n`) : defaultLog(pod));
  const tail = Number(query.get('tailLines'));
  if (query.has('tailLines') && Number.isInteger(tail) && tail >= 0) {
    const lines = text.replace(/\n$/, '').split('\n');
    text = tail === 0 ? '' : `${lines.slice(-tail).join('\n')}\n`;
  }
  return text;
}

/** Pods carry the Deployment's name through their ReplicaSet name `<deploy>-<hash>`. */
export function deploymentOf(pod: Obj): string | undefined {
  const rs = (pod.metadata.ownerReferences ?? []).find((r: Obj) => r.kind === 'ReplicaSet')?.name as string | undefined;
  return rs?.replace(/-[^-]+$/, '');
}

function defaultLog(pod: Obj): string {
  const t = pod.status?.startTime ?? new Date().toISOString();
  return [
    `${t} INFO astro-agent starting (pod ${pod.metadata.name})`,
    `${t} INFO connected to the Astro Deployment API`,
    `${t} INFO heartbeat sent`,
    `${t} INFO waiting for tasks`,
  ].join('\n') + '\n';
}
