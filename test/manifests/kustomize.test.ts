import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { accessListProblems } from '../../src/policy-env.ts';
import { httpPortFromEnv } from '../../src/app/http.ts';
import { requiredAccess } from '../../src/checklist/prerequisites.ts';
import type { AccessCheck } from '../../src/infra/types.ts';

/**
 * The manifests build with the registry-shipped kubectl (kustomize v5) and every object carries what its
 * kind needs. There is no cluster here: validation is structural (no API server schema check).
 */
const root = join(import.meta.dirname, '..', '..');
const kubectl = join(root, '.tools', 'bin', 'kubectl');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

async function build(dir: string): Promise<Obj[]> {
  const { stdout } = await execa(kubectl, ['kustomize', join(root, dir)], { timeout: 60_000 });
  return parseAllDocuments(stdout).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJSON() as Obj;
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
const API_VERSIONS: Record<string, string> = {
  Namespace: 'v1',
  ServiceAccount: 'v1',
  PersistentVolumeClaim: 'v1',
  Deployment: 'apps/v1',
  ClusterRole: 'rbac.authorization.k8s.io/v1',
  ClusterRoleBinding: 'rbac.authorization.k8s.io/v1',
  Role: 'rbac.authorization.k8s.io/v1',
  RoleBinding: 'rbac.authorization.k8s.io/v1',
  PodDisruptionBudget: 'policy/v1',
};
const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const KNOWN_VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);

function one(objs: Obj[], kind: string, name: string): Obj {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0];
}

/**
 * Checks every object for what its kind requires; returns the problems as readable strings. `store`: the base and
 * its overlays run one replica on SQLite; overlays/ha runs several on PostgreSQL (docs/ha.md).
 */
function validate(objs: Obj[], store: 'sqlite' | 'postgres' = 'sqlite'): string[] {
  const problems: string[] = [];
  const bad = (o: Obj, msg: string) => problems.push(`${o.kind}/${o.metadata?.name}: ${msg}`);
  const namespaces = new Set(objs.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
  const roles = new Set(objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`));
  const serviceAccounts = new Set(objs.filter((o) => o.kind === 'ServiceAccount').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
  const pvcs = new Set(objs.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));

  for (const o of objs) {
    if (!o.kind || !o.apiVersion || !o.metadata?.name) {
      problems.push(`object without apiVersion/kind/metadata.name: ${JSON.stringify(o).slice(0, 80)}`);
      continue;
    }
    if (API_VERSIONS[o.kind] !== o.apiVersion) bad(o, `apiVersion ${o.apiVersion}, expected ${API_VERSIONS[o.kind] ?? '(kind not expected here)'}`);
    if (!DNS1123.test(o.metadata.name)) bad(o, 'metadata.name is not a DNS-1123 name');
    if (CLUSTER_SCOPED.has(o.kind) && o.metadata.namespace) bad(o, 'cluster-scoped object has metadata.namespace');
    if (!CLUSTER_SCOPED.has(o.kind) && !o.metadata.namespace) bad(o, 'namespaced object lacks metadata.namespace');

    switch (o.kind) {
      case 'ClusterRole':
      case 'Role':
        if (!Array.isArray(o.rules) || !o.rules.length) bad(o, 'no rules');
        for (const [i, r] of (o.rules ?? []).entries()) {
          for (const field of ['apiGroups', 'resources', 'verbs']) {
            if (!Array.isArray(r[field]) || !r[field].length) bad(o, `rules[${i}].${field} missing`);
            if ((r[field] ?? []).some((v: string) => v.includes('*'))) bad(o, `rules[${i}].${field} has a wildcard`);
          }
          if (r.nonResourceURLs) bad(o, `rules[${i}] grants nonResourceURLs`);
          for (const v of r.verbs ?? []) if (!KNOWN_VERBS.has(v)) bad(o, `rules[${i}] verb ${v} is not one the bot uses`);
        }
        break;
      case 'ClusterRoleBinding':
      case 'RoleBinding': {
        const ref = o.roleRef ?? {};
        if (ref.apiGroup !== 'rbac.authorization.k8s.io') bad(o, 'roleRef.apiGroup');
        const key = ref.kind === 'Role' ? `Role/${o.metadata.namespace}/${ref.name}` : `ClusterRole//${ref.name}`;
        if (!roles.has(key)) bad(o, `roleRef ${ref.kind}/${ref.name} is not defined`);
        if (!Array.isArray(o.subjects) || !o.subjects.length) bad(o, 'no subjects');
        for (const s of o.subjects ?? []) {
          if (s.kind !== 'ServiceAccount' || !serviceAccounts.has(`${s.namespace}/${s.name}`)) bad(o, `subject ${s.kind} ${s.namespace}/${s.name} is not our ServiceAccount`);
        }
        break;
      }
      case 'PersistentVolumeClaim':
        if (!o.spec?.accessModes?.includes('ReadWriteOnce')) bad(o, 'accessModes must include ReadWriteOnce');
        if (!/^\d+(Mi|Gi)$/.test(o.spec?.resources?.requests?.storage ?? '')) bad(o, 'spec.resources.requests.storage missing');
        break;
      case 'Deployment': {
        const spec = o.spec ?? {};
        if (store === 'sqlite') {
          if (spec.replicas !== 1) bad(o, 'replicas must be 1 (SQLite has one writer)');
          if (spec.strategy?.type !== 'Recreate') bad(o, 'strategy must be Recreate');
        } else {
          if (!(spec.replicas >= 2)) bad(o, 'replicas must be at least 2 on PostgreSQL');
          if (spec.strategy?.type !== 'RollingUpdate' || spec.strategy.rollingUpdate?.maxUnavailable !== 0) bad(o, 'strategy must be RollingUpdate with maxUnavailable 0');
          if ((spec.template?.spec?.volumes ?? []).some((v: any) => v.persistentVolumeClaim)) bad(o, 'no PVC on PostgreSQL (a ReadWriteOnce claim pins every replica to one node)');
        }
        const sel = spec.selector?.matchLabels ?? {};
        const tplLabels = spec.template?.metadata?.labels ?? {};
        if (!Object.keys(sel).length || Object.entries(sel).some(([k, v]) => tplLabels[k] !== v)) bad(o, 'selector does not match the pod template labels');
        const pod = spec.template?.spec ?? {};
        if (!serviceAccounts.has(`${o.metadata.namespace}/${pod.serviceAccountName}`)) bad(o, `serviceAccountName ${pod.serviceAccountName} is not defined`);
        if (pod.securityContext?.runAsNonRoot !== true) bad(o, 'pod securityContext.runAsNonRoot must be true');
        if (!(pod.securityContext?.runAsUser > 0)) bad(o, 'pod securityContext.runAsUser must be a non-zero uid');
        const volumes = new Map<string, any>((pod.volumes ?? []).map((v: any) => [v.name, v]));
        for (const v of volumes.values()) {
          if (v.persistentVolumeClaim && !pvcs.has(`${o.metadata.namespace}/${v.persistentVolumeClaim.claimName}`)) bad(o, `volume ${v.name} claims an undefined PVC`);
        }
        if (!pod.containers?.length) bad(o, 'no containers');
        for (const c of pod.containers ?? []) {
          const where = `container ${c.name}`;
          if (!c.image) bad(o, `${where}: no image`);
          const sc = c.securityContext ?? {};
          if (sc.runAsNonRoot !== true) bad(o, `${where}: securityContext.runAsNonRoot must be true`);
          if (sc.readOnlyRootFilesystem !== true) bad(o, `${where}: securityContext.readOnlyRootFilesystem must be true`);
          if (sc.allowPrivilegeEscalation !== false) bad(o, `${where}: allowPrivilegeEscalation must be false`);
          if (!sc.capabilities?.drop?.includes('ALL')) bad(o, `${where}: capabilities must drop ALL`);
          const env = new Map<string, any>((c.env ?? []).map((e: any) => [e.name, e]));
          const port = Number(env.get('RE_BOT_HTTP_PORT')?.value);
          const named = new Map<string, number>((c.ports ?? []).map((p: any) => [p.name, p.containerPort]));
          if (!port || ![...named.values()].includes(port)) bad(o, `${where}: RE_BOT_HTTP_PORT must be set and exposed as a containerPort`);
          for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
            const g = c[probe]?.httpGet;
            if (!g) bad(o, `${where}: ${probe} missing`);
            else {
              if (g.path !== path) bad(o, `${where}: ${probe} path ${g.path}, expected ${path}`);
              const p = typeof g.port === 'string' ? named.get(g.port) : g.port;
              if (p !== port) bad(o, `${where}: ${probe} port ${g.port} is not RE_BOT_HTTP_PORT ${port}`);
            }
          }
          for (const [name, e] of env) {
            if (/^SLACK_.*(TOKEN|SECRET)$/.test(name)) {
              if (e.value !== undefined) bad(o, `${where}: ${name} has an inline value`);
              if (e.valueFrom?.secretKeyRef?.name !== 're-bot-slack') bad(o, `${where}: ${name} must come from Secret re-bot-slack`);
            }
          }
          const mounts = new Map<string, any>((c.volumeMounts ?? []).map((m: any) => [m.mountPath, m]));
          for (const m of mounts.values()) if (!volumes.has(m.name)) bad(o, `${where}: volumeMount ${m.name} has no volume`);
          const dbUrl = env.get('RE_BOT_DATABASE_URL');
          if (store === 'sqlite') {
            if (env.get('RE_BOT_DB')?.value !== '/data/re-bot.db') bad(o, `${where}: RE_BOT_DB must be /data/re-bot.db`);
            if (!volumes.get(mounts.get('/data')?.name)?.persistentVolumeClaim) bad(o, `${where}: /data must be the PVC`);
            if (dbUrl) bad(o, `${where}: RE_BOT_DATABASE_URL is set on a SQLite Deployment (re-bot refuses to start)`);
          } else {
            if (env.has('RE_BOT_DB')) bad(o, `${where}: RE_BOT_DB is set on PostgreSQL (no /data volume)`);
            if (mounts.has('/data')) bad(o, `${where}: /data is mounted on PostgreSQL`);
            if (dbUrl?.value !== undefined) bad(o, `${where}: RE_BOT_DATABASE_URL has an inline value`);
            if (!dbUrl?.valueFrom?.secretKeyRef?.name || dbUrl.valueFrom.secretKeyRef.optional) bad(o, `${where}: RE_BOT_DATABASE_URL must come from a (required) Secret key`);
          }
          if (!volumes.get(mounts.get('/tmp')?.name)?.emptyDir) bad(o, `${where}: /tmp must be an emptyDir (root filesystem is read-only)`);
        }
        break;
      }
      case 'PodDisruptionBudget': {
        const sel = o.spec?.selector?.matchLabels ?? {};
        const covered = objs.filter((d) => d.kind === 'Deployment' && d.metadata.namespace === o.metadata.namespace && Object.keys(sel).length
          && Object.entries(sel).every(([k, v]) => d.spec?.template?.metadata?.labels?.[k] === v));
        if (covered.length !== 1) bad(o, `selector matches ${covered.length} Deployments, expected 1`);
        // minAvailable ≥ replicas would block every node drain
        for (const d of covered) if (!(o.spec.minAvailable >= 1 && o.spec.minAvailable < d.spec.replicas)) bad(o, `minAvailable ${o.spec.minAvailable} must be ≥ 1 and < the ${d.spec.replicas} replicas`);
        break;
      }
      case 'Namespace':
      case 'ServiceAccount':
        break;
      case 'Secret':
        bad(o, 'Secrets must not be defined in the manifests (create re-bot-slack yourself)');
        break;
      default:
        bad(o, 'unexpected kind');
    }
    // Roles and RoleBindings go into the agent namespaces, which exist beforehand
    if (o.metadata.namespace && !CLUSTER_SCOPED.has(o.kind) && o.kind !== 'Role' && o.kind !== 'RoleBinding' && !namespaces.has(o.metadata.namespace)) {
      bad(o, `namespace ${o.metadata.namespace} is not created by these manifests`);
    }
  }
  return problems;
}

/** (group, resource, verb) triples granted by a role, for exact comparisons. */
function grants(role: Obj): string[] {
  const out: string[] = [];
  for (const r of role.rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.push(`${g || 'core'}/${res}:${v}`);
  return out.sort();
}
const all = (group: string, resources: string[], verbs: string[]) => resources.flatMap((r) => verbs.map((v) => `${group}/${r}:${v}`));
const MANAGE = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const READ = new Set(['get', 'list', 'watch']);
/** what the agent chart's helm upgrade/rollback/uninstall and re-bot's steps need in an agent namespace */
const AGENT_GRANTS = [
  ...all('core', ['secrets', 'serviceaccounts', 'configmaps', 'services'], MANAGE),
  ...all('apps', ['deployments'], MANAGE),
  ...all('autoscaling', ['horizontalpodautoscalers'], MANAGE),
  ...all('rbac.authorization.k8s.io', ['roles', 'rolebindings'], MANAGE),
  ...all('apps', ['replicasets'], ['get', 'list', 'watch']),
  ...all('core', ['pods'], ['get', 'list', 'watch']),
  'core/pods/log:get',
].sort();
const BOT = { namespace: 're-bot', name: 're-bot' };

/**
 * Would the API server allow re-bot's ServiceAccount this request, given these manifests? A ClusterRoleBinding
 * grants everywhere; a RoleBinding only namespaced resources in its own namespace (Kubernetes' RBAC rules).
 */
function allowed(objs: Obj[], a: AccessCheck): boolean {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const grantsIt = (role: Obj | undefined) =>
    !!role?.rules.some((r: any) => r.apiGroups.includes(a.group ?? '') && r.resources.includes(res) && r.verbs.includes(a.verb));
  const find = (kind: string, name: string, ns?: string) => objs.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === ns);
  return objs.some((b) => {
    if (!(b.subjects ?? []).some((s: any) => s.kind === 'ServiceAccount' && s.namespace === BOT.namespace && s.name === BOT.name)) return false;
    if (b.kind === 'ClusterRoleBinding') return grantsIt(find('ClusterRole', b.roleRef.name));
    if (b.kind === 'RoleBinding' && a.namespace === b.metadata.namespace) {
      return grantsIt(b.roleRef.kind === 'Role' ? find('Role', b.roleRef.name, b.metadata.namespace) : find('ClusterRole', b.roleRef.name));
    }
    return false;
  });
}
const denied = (objs: Obj[], checks: AccessCheck[]) => checks.filter((c) => !allowed(objs, c)).map((c) => `${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ''}${c.namespace ? ` in ${c.namespace}` : ''}`);
/** what step 1 reads besides its SelfSubjectAccessReviews: the node list, and each kubelet's configz */
const LIST_NODES: AccessCheck = { verb: 'list', resource: 'nodes', group: '' };
const CONFIGZ: AccessCheck = { verb: 'get', resource: 'nodes', group: '', subresource: 'proxy' };

/** Least-privilege problems: wildcards, nodes/proxy, and any cluster-wide grant beyond reading (and SSAR create). */
function privilegeProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const roles = objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  for (const r of roles) {
    if (JSON.stringify(r.rules).includes('*')) problems.push(`${r.kind}/${r.metadata.name} has a wildcard`);
    for (const g of grants(r)) if (g.startsWith('core/nodes/proxy:')) problems.push(`${r.kind}/${r.metadata.name} grants ${g}`);
  }
  for (const b of objs.filter((o) => o.kind === 'ClusterRoleBinding')) {
    const role = roles.find((r) => r.kind === 'ClusterRole' && r.metadata.name === b.roleRef.name);
    for (const g of role ? grants(role) : []) {
      const verb = g.split(':')[1];
      if (!READ.has(verb) && g !== 'authorization.k8s.io/selfsubjectaccessreviews:create') problems.push(`cluster-wide ${g} (ClusterRoleBinding/${b.metadata.name})`);
    }
  }
  return problems;
}

describe('manifests (kustomize, built by the registry-shipped kubectl)', () => {
  it.runIf(existsSync(kubectl))('the base builds and every object validates', async () => {
    const objs = await build('manifests');
    expect(validate(objs)).toEqual([]);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/re-bot-cluster',
      'ClusterRoleBinding/re-bot-cluster',
      'Deployment/re-bot',
      'Namespace/re-bot',
      'PersistentVolumeClaim/re-bot-data',
      'Role/re-bot-agent',
      'RoleBinding/re-bot-agent',
      'ServiceAccount/re-bot',
    ]);
    // the bot's own objects stay in re-bot; only the agent Role and RoleBinding live in the agent namespace
    for (const o of objs) if (o.metadata.namespace) expect(`${o.kind}/${o.metadata.namespace}`).toBe(/Role/.test(o.kind) ? `${o.kind}/astro-agents` : `${o.kind}/re-bot`);
    const container = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0];
    expect(container.image).toBe('re-bot:0.1.0');
    expect(container.args).toEqual(['start']);
  });

  it.runIf(existsSync(kubectl))('base RBAC: agent permissions only in the agent namespace, cluster-wide only reads', async () => {
    const objs = await build('manifests');
    expect(grants(one(objs, 'ClusterRole', 're-bot-cluster'))).toEqual(
      [...all('core', ['namespaces', 'nodes'], ['get', 'list']), 'authorization.k8s.io/selfsubjectaccessreviews:create'].sort(),
    );
    const role = one(objs, 'Role', 're-bot-agent');
    expect(role.metadata.namespace).toBe('astro-agents');
    expect(grants(role)).toEqual(AGENT_GRANTS);
    const rb = one(objs, 'RoleBinding', 're-bot-agent');
    expect(rb.metadata.namespace).toBe('astro-agents');
    expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 're-bot-agent' });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', ...BOT }]);
    const verbs = new Set(objs.filter((o) => o.kind.endsWith('Role')).flatMap((o) => o.rules.flatMap((r: any) => r.verbs)));
    for (const v of ['escalate', 'bind', 'impersonate', 'deletecollection']) expect(verbs.has(v)).toBe(false);
  });

  it.runIf(existsSync(kubectl))('the base has no wildcard, no cluster-wide write (secrets, deployments, roles, rolebindings …) and no nodes/proxy', async () => {
    const base = await build('manifests');
    expect(privilegeProblems(base)).toEqual([]);
    expect(allowed(base, CONFIGZ)).toBe(false);
    for (const [resource, group] of [['secrets', ''], ['deployments', 'apps'], ['roles', 'rbac.authorization.k8s.io'], ['rolebindings', 'rbac.authorization.k8s.io']]) {
      for (const verb of ['create', 'update', 'patch', 'delete']) {
        expect(allowed(base, { verb, resource, group, namespace: 'kube-system' }), `${verb} ${resource} in kube-system`).toBe(false);
        expect(allowed(base, { verb, resource, group, namespace: 'astro-agents' }), `${verb} ${resource} in astro-agents`).toBe(true);
      }
    }
    // the check sees what the broader overlay grants, so a base drifting that way fails here
    const wide = await build('manifests/overlays/cluster-wide');
    expect(privilegeProblems(wide)).toEqual(
      expect.arrayContaining(['cluster-wide core/secrets:create (ClusterRoleBinding/re-bot-agent-namespaces)', 'cluster-wide core/namespaces:create (ClusterRoleBinding/re-bot-cluster)']),
    );
  });

  it.runIf(existsSync(kubectl))('the base grants every permission step 1 checks for a spec with createNamespace: false, and the bot allows only that namespace', async () => {
    const objs = await build('manifests');
    expect(denied(objs, [...requiredAccess('astro-agents', false), LIST_NODES])).toEqual([]);
    // re-bot creating the namespace needs overlays/cluster-wide: step 1 names exactly that
    expect(denied(objs, requiredAccess('astro-agents', true))).toEqual(['create namespaces']);
    expect(denied(objs, requiredAccess('team-b-agents', false))).toContain('create secrets in team-b-agents');
    const env = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0].env as any[];
    expect(env.find((e) => e.name === 'RE_BOT_ALLOWED_NAMESPACES').value).toBe('astro-agents');
  });

  it.runIf(existsSync(kubectl))('Slack tokens come only from Secret re-bot-slack, which is not defined inline', async () => {
    const objs = await build('manifests');
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    const env = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0].env as any[];
    const slack = env.filter((e) => e.name.startsWith('SLACK_'));
    expect(slack.map((e) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key])).toEqual([
      ['SLACK_BOT_TOKEN', 're-bot-slack', 'bot-token'],
      ['SLACK_APP_TOKEN', 're-bot-slack', 'app-token'],
      ['SLACK_SIGNING_SECRET', 're-bot-slack', 'signing-secret'],
    ]);
  });

  it.runIf(existsSync(kubectl))('the remote-cluster overlay mounts the kubeconfig Secret read-only and points KUBECONFIG at it', async () => {
    const objs = await build('manifests/overlays/remote-cluster');
    expect(validate(objs)).toEqual([]);
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    const pod = one(objs, 'Deployment', 're-bot').spec.template.spec;
    const c = pod.containers[0];
    const mount = c.volumeMounts.find((m: any) => m.name === 'kubeconfig');
    expect(mount).toEqual({ name: 'kubeconfig', mountPath: '/etc/re-bot/kubeconfig', readOnly: true });
    expect(pod.volumes.find((v: any) => v.name === 'kubeconfig').secret.secretName).toBe('re-bot-kubeconfig');
    expect(c.env.find((e: any) => e.name === 'KUBECONFIG').value).toBe('/etc/re-bot/kubeconfig/config');
    // the base's mounts and env survive the patch
    expect(c.volumeMounts.map((m: any) => m.mountPath).sort()).toEqual(['/data', '/etc/re-bot/kubeconfig', '/tmp']);
    expect(c.env.some((e: any) => e.name === 'SLACK_BOT_TOKEN')).toBe(true);
  });

  it.runIf(existsSync(kubectl))('the ha overlay: 3 replicas rolled one at a time, a PDB of 2, spread over nodes, no PVC, the database URL from a Secret, ready on /readyz', async () => {
    const [base, ha] = await Promise.all([build('manifests'), build('manifests/overlays/ha')]);
    expect(validate(ha, 'postgres')).toEqual([]);
    expect(privilegeProblems(ha)).toEqual([]);
    const d = one(ha, 'Deployment', 're-bot');
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const podLabels = d.spec.template.metadata.labels;
    const pdb = one(ha, 'PodDisruptionBudget', 're-bot');
    expect(pdb.metadata.namespace).toBe('re-bot');
    expect(pdb.spec.minAvailable).toBe(2);
    expect(pdb.spec.selector.matchLabels).toEqual(podLabels);

    const pod = d.spec.template.spec;
    const anti = pod.affinity.podAntiAffinity;
    expect(anti.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(anti.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: podLabels } } },
    ]);
    for (const t of pod.topologySpreadConstraints) {
      expect(t.whenUnsatisfiable).toBe('ScheduleAnyway');
      expect(t.labelSelector.matchLabels).toEqual(podLabels);
    }

    // no SQLite: no claim, no /data volume or mount, no RE_BOT_DB; /tmp stays
    expect(ha.some((o) => o.kind === 'PersistentVolumeClaim')).toBe(false);
    const c = pod.containers[0];
    expect(pod.volumes.map((v: any) => v.name)).toEqual(['tmp']);
    expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
    const env = c.env as any[];
    expect(env.some((e) => e.name === 'RE_BOT_DB')).toBe(false);
    expect(env.find((e) => e.name === 'RE_BOT_DATABASE_URL')).toEqual({ name: 'RE_BOT_DATABASE_URL', valueFrom: { secretKeyRef: { name: 're-bot-database', key: 'url' } } });
    // one sealed-secret key for every replica (re-bot refuses PostgreSQL without it)
    expect(env.find((e) => e.name === 'RE_BOT_SECRET_KEY')).toEqual({ name: 'RE_BOT_SECRET_KEY', valueFrom: { secretKeyRef: { name: 're-bot-database', key: 'secret-key' } } });
    // the Secret is created by hand, never generated from a value in git
    expect(ha.some((o) => o.kind === 'Secret')).toBe(false);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    // liveness stays on /healthz: a database outage makes pods unready, it does not restart them
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });

    // nothing else of the base is lost or changed: undo the overlay's intended differences and compare
    const expected = structuredClone(base.filter((o) => o.kind !== 'PersistentVolumeClaim'));
    const bd = one(expected, 'Deployment', 're-bot');
    bd.spec.replicas = 3;
    bd.spec.strategy = d.spec.strategy;
    bd.spec.template.spec.affinity = pod.affinity;
    bd.spec.template.spec.topologySpreadConstraints = pod.topologySpreadConstraints;
    bd.spec.template.spec.volumes = bd.spec.template.spec.volumes.filter((v: any) => v.name !== 'data');
    const bc = bd.spec.template.spec.containers[0];
    bc.volumeMounts = bc.volumeMounts.filter((m: any) => m.mountPath !== '/data');
    bc.env = [env.find((e) => e.name === 'RE_BOT_DATABASE_URL'), env.find((e) => e.name === 'RE_BOT_SECRET_KEY'), ...bc.env.filter((e: any) => e.name !== 'RE_BOT_DB')];
    const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const sorted = (objs: Obj[]) => [...objs].sort((a, b) => key(a).localeCompare(key(b)));
    expect(sorted(ha.filter((o) => o.kind !== 'PodDisruptionBudget'))).toEqual(sorted(expected));
  });

  it.runIf(existsSync(kubectl))('the base still builds as one SQLite replica (the ha overlay changes nothing under manifests/base)', async () => {
    const d = one(await build('manifests'), 'Deployment', 're-bot');
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    const c = d.spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'RE_BOT_DB').value).toBe('/data/re-bot.db');
    expect(c.env.some((e: any) => e.name === 'RE_BOT_DATABASE_URL')).toBe(false);
    expect(d.spec.template.spec.affinity).toBeUndefined();
  });

  it.runIf(existsSync(kubectl))('the cluster-wide overlay (broader) binds the agent permissions everywhere and may create namespaces, still without nodes/proxy', async () => {
    const objs = await build('manifests/overlays/cluster-wide');
    expect(validate(objs)).toEqual([]);
    expect(objs.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding')).toEqual([]);
    // the same rules as the base's Role, so the two modes cannot drift apart
    expect(grants(one(objs, 'ClusterRole', 're-bot-agent-namespaces'))).toEqual(AGENT_GRANTS);
    expect(one(objs, 'ClusterRoleBinding', 're-bot-agent-namespaces').roleRef).toMatchObject({ kind: 'ClusterRole', name: 're-bot-agent-namespaces' });
    expect(grants(one(objs, 'ClusterRole', 're-bot-cluster'))).toContain('core/namespaces:create');
    expect(denied(objs, [...requiredAccess('any-team-agents', true), LIST_NODES])).toEqual([]);
    expect(allowed(objs, CONFIGZ)).toBe(false);
    const env = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0].env as any[];
    expect(env.find((e) => e.name === 'RE_BOT_ALLOWED_NAMESPACES').value).toBe('');
  });

  it.runIf(existsSync(kubectl))('the more-namespaces overlay adds the agent Role per extra namespace and allows exactly those namespaces', async () => {
    const objs = await build('manifests/overlays/more-namespaces');
    expect(validate(objs)).toEqual([]);
    expect(privilegeProblems(objs)).toEqual([]);
    const ns = objs.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.namespace ?? '').sort();
    expect(ns).toEqual(['astro-agents', 'team-b-agents']);
    for (const n of ns) {
      expect(grants(one(objs.filter((o) => o.metadata.namespace === n), 'Role', 're-bot-agent'))).toEqual(AGENT_GRANTS);
      expect(denied(objs, requiredAccess(n, false))).toEqual([]);
    }
    const env = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0].env as any[];
    expect(env.find((e) => e.name === 'RE_BOT_ALLOWED_NAMESPACES').value.split(',').sort()).toEqual(ns);
  });

  it.runIf(existsSync(kubectl))('every overlay builds and validates', async () => {
    const overlays = readdirSync(join(root, 'manifests', 'overlays'));
    expect(overlays.sort()).toEqual(['cluster-wide', 'ha', 'more-namespaces', 'remote-cluster']);
    for (const o of overlays) expect(validate(await build(`manifests/overlays/${o}`), o === 'ha' ? 'postgres' : 'sqlite'), o).toEqual([]);
  });

  it('the validator catches what it claims to (wildcards, inline Slack tokens, missing probes, writable root)', () => {
    const deployment: Obj = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 're-bot', namespace: 're-bot' },
      spec: {
        replicas: 2,
        strategy: { type: 'RollingUpdate' },
        selector: { matchLabels: { app: 'x' } },
        template: {
          metadata: { labels: { app: 'x' } },
          spec: {
            serviceAccountName: 're-bot',
            securityContext: { runAsNonRoot: true, runAsUser: 1000 },
            containers: [{ name: 'c', image: 'i', securityContext: {}, env: [{ name: 'SLACK_BOT_TOKEN', value: 'xoxb-inline' }] }],
          },
        },
      },
    };
    const role: Obj = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' }, rules: [{ apiGroups: ['*'], resources: ['pods'], verbs: ['*'] }] };
    const problems = validate([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 're-bot' } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 're-bot', namespace: 're-bot' } },
      deployment,
      role,
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 're-bot-slack', namespace: 're-bot' } },
    ]).join('\n');
    for (const expected of [
      'replicas must be 1',
      'strategy must be Recreate',
      'readOnlyRootFilesystem must be true',
      'livenessProbe missing',
      'readinessProbe missing',
      'SLACK_BOT_TOKEN has an inline value',
      'rules[0].apiGroups has a wildcard',
      'rules[0].verbs has a wildcard',
      'Secrets must not be defined',
      '/tmp must be an emptyDir',
    ]) {
      expect(problems).toContain(expected);
    }
  });
  it('the validator catches a PostgreSQL Deployment that is not highly available or leaks the database URL', () => {
    const objs: Obj[] = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 're-bot' } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 're-bot', namespace: 're-bot' } },
      { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'd', namespace: 're-bot' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
      {
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 're-bot', namespace: 're-bot' },
        spec: {
          replicas: 1, strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } }, selector: { matchLabels: { app: 'x' } },
          template: {
            metadata: { labels: { app: 'x' } },
            spec: {
              serviceAccountName: 're-bot', securityContext: { runAsNonRoot: true, runAsUser: 1000 },
              volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'd' } }, { name: 'tmp', emptyDir: {} }],
              containers: [{
                name: 'c', image: 'i', securityContext: {}, volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'tmp', mountPath: '/tmp' }],
                env: [{ name: 'RE_BOT_DATABASE_URL', value: 'postgres://bot:inline@db/rebot' }, { name: 'RE_BOT_DB', value: '/data/re-bot.db' }],
              }],
            },
          },
        },
      },
      { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'p', namespace: 're-bot' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'other' } } } },
    ];
    const problems = validate(objs, 'postgres').join('\n');
    for (const expected of [
      'replicas must be at least 2',
      'strategy must be RollingUpdate with maxUnavailable 0',
      'no PVC on PostgreSQL',
      'RE_BOT_DATABASE_URL has an inline value',
      'RE_BOT_DATABASE_URL must come from a (required) Secret key',
      'RE_BOT_DB is set on PostgreSQL',
      '/data is mounted on PostgreSQL',
      'selector matches 0 Deployments',
    ]) expect(problems).toContain(expected);
    // a PDB as large as the Deployment blocks every drain
    const d = objs[3]!;
    d.spec.replicas = 2;
    objs[4]!.spec = { minAvailable: 2, selector: { matchLabels: { app: 'x' } } };
    expect(validate(objs, 'postgres').join('\n')).toContain('minAvailable 2 must be ≥ 1 and < the 2 replicas');
    // the same URL on the SQLite base is refused too (re-bot would not start)
    expect(validate(objs, 'sqlite').join('\n')).toContain('RE_BOT_DATABASE_URL is set on a SQLite Deployment');
  });

  it.runIf(existsSync(kubectl))('the Deployment sets only variables the code reads, including the approver policy, on the port start serves', async () => {
    const objs = await build('manifests/overlays/remote-cluster');
    const c = one(objs, 'Deployment', 're-bot').spec.template.spec.containers[0];
    const names: string[] = c.env.map((e: any) => e.name);
    const src = readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.ts') && !f.parentPath.includes('devkit'))
      .map((f) => readFileSync(join(f.parentPath, f.name), 'utf8'))
      .join('\n');
    for (const name of names) expect(src, `${name} is read somewhere in src/`).toMatch(new RegExp(`\\b${name}\\b`));
    for (const name of ['RE_BOT_APPROVERS', 'RE_BOT_OPERATORS', 'RE_BOT_REQUIRED_APPROVALS', 'RE_BOT_CONCURRENCY', 'RE_BOT_SLACK_MODE', 'LOG_LEVEL']) expect(names).toContain(name);
    // fails closed: until an overlay sets who may approve and start setups, `re-bot start` refuses to start
    const value = (n: string) => c.env.find((e: any) => e.name === n).value;
    expect(accessListProblems({ RE_BOT_APPROVERS: value('RE_BOT_APPROVERS'), RE_BOT_OPERATORS: value('RE_BOT_OPERATORS') }).map((p) => p.variable)).toEqual(['RE_BOT_APPROVERS', 'RE_BOT_OPERATORS']);
    // probes hit the port `re-bot start` serves health on (RE_BOT_HTTP_PORT, default 8080) in both Slack modes
    const port = c.env.find((e: any) => e.name === 'RE_BOT_HTTP_PORT').value;
    expect(httpPortFromEnv({ RE_BOT_HTTP_PORT: port })).toBe(httpPortFromEnv({}));
    expect(c.ports).toEqual([{ name: 'http', containerPort: Number(port) }]);
    expect(names).not.toContain('PORT');
  });
});
