/** The resource types the fake API serves, as its discovery documents describe them. */
export interface ResourceType {
  group: string; // '' = core
  version: string;
  name: string; // plural
  singularName: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  subresources?: Array<{ name: string; kind: string; verbs: string[] }>;
}

const ALL = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS = { name: 'status', verbs: ['get', 'patch', 'update'] };

function r(
  group: string,
  version: string,
  name: string,
  kind: string,
  namespaced: boolean,
  extra: Partial<ResourceType> & { status?: boolean; scale?: boolean } = {},
): ResourceType {
  const { status, scale, ...rest } = extra;
  const subs: ResourceType['subresources'] = [...(rest.subresources ?? [])];
  if (status) subs.push({ ...STATUS, kind });
  if (scale) subs.push({ name: 'scale', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
  return { group, version, name, singularName: kind.toLowerCase(), kind, namespaced, verbs: ALL, ...rest, subresources: subs };
}

const apps = (v: string) => [
  r('apps', v, 'deployments', 'Deployment', true, { shortNames: ['deploy'], categories: ['all'], status: true, scale: true }),
  r('apps', v, 'replicasets', 'ReplicaSet', true, { shortNames: ['rs'], categories: ['all'], status: true, scale: true }),
  r('apps', v, 'statefulsets', 'StatefulSet', true, { shortNames: ['sts'], categories: ['all'], status: true, scale: true }),
  r('apps', v, 'daemonsets', 'DaemonSet', true, { shortNames: ['ds'], categories: ['all'], status: true }),
  r('apps', v, 'controllerrevisions', 'ControllerRevision', true),
];

const rbac = ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'].map((name) => {
  const kind = { roles: 'Role', rolebindings: 'RoleBinding', clusterroles: 'ClusterRole', clusterrolebindings: 'ClusterRoleBinding' }[name]!;
  return r('rbac.authorization.k8s.io', 'v1', name, kind, !name.startsWith('cluster'));
});

const review = (name: string, kind: string, namespaced: boolean) =>
  r('authorization.k8s.io', 'v1', name, kind, namespaced, { verbs: ['create'] });

const hpa = (v: string) => r('autoscaling', v, 'horizontalpodautoscalers', 'HorizontalPodAutoscaler', true, { shortNames: ['hpa'], categories: ['all'], status: true });

export const RESOURCES: ResourceType[] = [
  r('', 'v1', 'namespaces', 'Namespace', false, { shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], status: true, subresources: [{ name: 'finalize', kind: 'Namespace', verbs: ['update'] }] }),
  r('', 'v1', 'pods', 'Pod', true, {
    shortNames: ['po'],
    categories: ['all'],
    status: true,
    subresources: [
      { name: 'log', kind: 'Pod', verbs: ['get'] },
      { name: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'eviction', kind: 'Eviction', verbs: ['create'] },
    ],
  }),
  r('', 'v1', 'secrets', 'Secret', true),
  r('', 'v1', 'configmaps', 'ConfigMap', true, { shortNames: ['cm'] }),
  r('', 'v1', 'services', 'Service', true, { shortNames: ['svc'], categories: ['all'], status: true, subresources: [{ name: 'proxy', kind: 'ServiceProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] }] }),
  r('', 'v1', 'serviceaccounts', 'ServiceAccount', true, { shortNames: ['sa'], subresources: [{ name: 'token', kind: 'TokenRequest', verbs: ['create'] }] }),
  r('', 'v1', 'endpoints', 'Endpoints', true, { shortNames: ['ep'] }),
  r('', 'v1', 'events', 'Event', true, { shortNames: ['ev'] }),
  r('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', true, { shortNames: ['pvc'], status: true }),
  r('', 'v1', 'persistentvolumes', 'PersistentVolume', false, { shortNames: ['pv'], status: true }),
  r('', 'v1', 'resourcequotas', 'ResourceQuota', true, { shortNames: ['quota'], status: true }),
  r('', 'v1', 'limitranges', 'LimitRange', true, { shortNames: ['limits'] }),
  r('', 'v1', 'nodes', 'Node', false, { shortNames: ['no'], status: true, subresources: [{ name: 'proxy', kind: 'NodeProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] }] }),
  ...apps('v1'),
  ...rbac,
  review('selfsubjectaccessreviews', 'SelfSubjectAccessReview', false),
  review('selfsubjectrulesreviews', 'SelfSubjectRulesReview', false),
  review('subjectaccessreviews', 'SubjectAccessReview', false),
  review('localsubjectaccessreviews', 'LocalSubjectAccessReview', true),
  r('batch', 'v1', 'jobs', 'Job', true, { categories: ['all'], status: true }),
  r('batch', 'v1', 'cronjobs', 'CronJob', true, { shortNames: ['cj'], categories: ['all'], status: true }),
  hpa('v2'),
  hpa('v1'),
  r('policy', 'v1', 'poddisruptionbudgets', 'PodDisruptionBudget', true, { shortNames: ['pdb'], status: true }),
  r('networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', true, { shortNames: ['netpol'] }),
  r('networking.k8s.io', 'v1', 'ingresses', 'Ingress', true, { shortNames: ['ing'], status: true }),
  r('networking.k8s.io', 'v1', 'ingressclasses', 'IngressClass', false),
  r('coordination.k8s.io', 'v1', 'leases', 'Lease', true),
];

/** group → versions, preferred first */
export function groups(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of RESOURCES) {
    const vs = out.get(t.group) ?? [];
    if (!vs.includes(t.version)) vs.push(t.version);
    out.set(t.group, vs);
  }
  return out;
}

export function findResource(group: string, version: string, name: string): ResourceType | undefined {
  return RESOURCES.find((t) => t.group === group && t.version === version && t.name === name);
}

export function findKind(apiVersion: string, kind: string): ResourceType | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return RESOURCES.find((t) => t.group === group && t.version === version && t.kind === kind);
}

export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** Storage key: versions of one group share objects (autoscaling v1/v2 are the same HPA). */
export function storageKey(t: ResourceType): string {
  return `${t.group}/${t.name}`;
}
