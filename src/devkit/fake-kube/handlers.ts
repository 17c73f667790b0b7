/** Generic CRUD, patch and apply for every served resource type. */
import { parse as parseYaml } from 'yaml';
import { Cluster, objectKey } from './cluster.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import type { Obj } from './store.ts';
import { ApiError, alreadyExists, badRequest, conflict, notFound, successStatus } from './status.ts';
import { normalise, validateName } from './defaults.ts';
import { PatchError, jsonPatch, mergePatch, serverSideApply, strategicMerge } from './patch.ts';
import { SelectorError, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';

export interface Request {
  method: string;
  type: ResourceType;
  ns?: string;
  name?: string;
  sub?: string;
  query: URLSearchParams;
  body: string;
  contentType: string;
}
export interface Reply {
  status: number;
  body: unknown;
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export function parseJsonBody(body: string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw badRequest('the request body is not valid JSON');
  }
  if (!isObj(v)) throw badRequest('the request body must be a JSON object');
  return v;
}

function parsePatchBody(body: string, yaml: boolean): unknown {
  try {
    return yaml ? parseYaml(body) : JSON.parse(body);
  } catch {
    throw badRequest(`the patch body is not valid ${yaml ? 'YAML' : 'JSON'}`);
  }
}

/** The object as returned to clients: its type's apiVersion/kind (versions of one group share storage). */
export function present(t: ResourceType, o: Obj): Obj {
  const { apiVersion: _a, kind: _k, ...rest } = o;
  return { apiVersion: apiVersionOf(t), kind: t.kind, ...rest };
}

export function listFilter(q: URLSearchParams): (o: Obj) => boolean {
  try {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    return (o) => matchesLabels(o, labels) && fields(o);
  } catch (e) {
    if (e instanceof SelectorError) throw badRequest(e.message);
    throw e;
  }
}

export function handle(c: Cluster, r: Request): Reply {
  const { method, type: t, name } = r;
  if (r.ns && t.namespaced === false) throw notFound(t.name, t.group, name ?? '');
  if (!name) {
    if (method === 'GET') return list(c, r);
    if (method === 'POST') return create(c, r, parseJsonBody(r.body));
    if (method === 'DELETE') return deleteCollection(c, r);
    throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }
  if (r.sub && r.sub !== 'status' && r.sub !== 'scale') throw notFound(`${t.name}/${r.sub}`, t.group, name);
  switch (method) {
    case 'GET':
      return { status: 200, body: r.sub === 'scale' ? scaleOf(t, existing(c, r)) : present(t, existing(c, r)) };
    case 'PUT':
      return update(c, r, parseJsonBody(r.body));
    case 'PATCH':
      return patch(c, r);
    case 'DELETE':
      return remove(c, r);
    default:
      throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }
}

function existing(c: Cluster, r: Request): Obj {
  const o = c.store.get(r.type, r.ns, r.name!);
  if (!o) throw notFound(r.type.name, r.type.group, r.name!);
  return o;
}

function dryRun(r: Request): boolean {
  return r.query.getAll('dryRun').includes('All');
}

function list(c: Cluster, r: Request): Reply {
  const keep = listFilter(r.query);
  const items = c.store.list(r.type, r.ns).filter(keep).map((o) => present(r.type, o));
  return {
    status: 200,
    body: { kind: `${r.type.kind}List`, apiVersion: apiVersionOf(r.type), metadata: { resourceVersion: c.store.resourceVersion }, items },
  };
}

function prepare(c: Cluster, r: Request, o: Obj, name?: string): Obj {
  const t = r.type;
  if (o.kind && o.kind !== t.kind) throw badRequest(`the kind of the provided object (${o.kind}) does not match the resource ${t.name}`);
  o.metadata = isObj(o.metadata) ? o.metadata : {};
  const m = o.metadata;
  if (!m.name && m.generateName && !name) m.name = `${m.generateName}${Math.random().toString(36).slice(2, 7)}`;
  if (name && m.name && m.name !== name) throw badRequest(`the name of the object (${m.name}) does not match the name on the URL (${name})`);
  m.name ??= name;
  validateName(t.kind, m.name ?? '');
  if (t.namespaced) {
    if (m.namespace && r.ns && m.namespace !== r.ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    m.namespace = r.ns ?? m.namespace;
    if (!m.namespace) throw badRequest('a namespace is required for namespaced resources');
  } else delete m.namespace;
  delete o.apiVersion;
  delete o.kind;
  return normalise(t.kind, o);
}

function create(c: Cluster, r: Request, body: Obj): Reply {
  const t = r.type;
  const o = prepare(c, r, body);
  if (t.namespaced && !c.namespaceExists(o.metadata.namespace)) throw notFound('namespaces', '', o.metadata.namespace);
  if (c.store.get(t, o.metadata.namespace, o.metadata.name)) throw alreadyExists(t.name, t.group, o.metadata.name);
  if (dryRun(r)) return { status: 201, body: present(t, { ...o, metadata: { ...o.metadata, uid: 'dry-run', resourceVersion: '', creationTimestamp: new Date().toISOString() } }) };
  return { status: 201, body: present(t, c.store.create(t, o)) };
}

function hasStatus(t: ResourceType): boolean {
  return (t.subresources ?? []).some((s) => s.name === 'status');
}

/** Writes `next` over `old`, keeping what the addressed endpoint may not change (status vs the rest). */
function write(c: Cluster, r: Request, old: Obj, next: Obj, checkVersion: boolean): Reply {
  const t = r.type;
  const rv = next.metadata?.resourceVersion;
  if (checkVersion && rv && rv !== old.metadata.resourceVersion) throw conflict(t.name, t.group, old.metadata.name);
  let o = prepare(c, r, next, r.name);
  if (r.sub === 'status') o = { ...old, status: o.status };
  else if (hasStatus(t) && t.kind !== 'Namespace') o.status = old.status;
  o.metadata.resourceVersion = old.metadata.resourceVersion;
  if (dryRun(r)) return { status: 200, body: present(t, o) };
  return { status: 200, body: present(t, c.store.update(t, o)) };
}

function update(c: Cluster, r: Request, body: Obj): Reply {
  const old = existing(c, r);
  if (r.sub === 'scale') return scale(c, r, old, body.spec?.replicas);
  return write(c, r, old, body, true);
}

function scaleOf(t: ResourceType, o: Obj): Obj {
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
    spec: { replicas: o.spec?.replicas ?? 0 },
    status: { replicas: o.status?.replicas ?? 0, selector: Object.entries(o.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
  };
}

function scale(c: Cluster, r: Request, old: Obj, replicas: unknown): Reply {
  if (typeof replicas !== 'number' || replicas < 0) throw badRequest('spec.replicas must be a non-negative integer');
  const next = structuredClone(old);
  next.spec.replicas = replicas;
  const res = write(c, { ...r, sub: undefined }, old, next, false);
  return { status: 200, body: scaleOf(r.type, res.body as Obj) };
}

function patch(c: Cluster, r: Request): Reply {
  const t = r.type;
  const ct = r.contentType.split(';')[0]!.trim();
  if (ct === 'application/apply-patch+yaml') return apply(c, r);
  const old = c.store.get(t, r.ns, r.name!);
  if (!old) throw notFound(t.name, t.group, r.name!);
  const body = parsePatchBody(r.body, false);
  const base = r.sub === 'scale' ? scaleOf(t, old) : present(t, old);
  let next: unknown;
  try {
    if (ct === 'application/merge-patch+json') next = mergePatch(base, body);
    else if (ct === 'application/strategic-merge-patch+json') next = strategicMerge(base, body);
    else if (ct === 'application/json-patch+json') next = jsonPatch(base, body);
    else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
  } catch (e) {
    if (e instanceof PatchError) throw new ApiError(422, 'Invalid', e.message);
    throw e;
  }
  if (!isObj(next)) throw badRequest('the patch result is not an object');
  if (r.sub === 'scale') return scale(c, r, old, (next as Obj).spec?.replicas);
  return write(c, r, old, next, true);
}

function apply(c: Cluster, r: Request): Reply {
  const t = r.type;
  const manager = r.query.get('fieldManager');
  if (!manager) throw badRequest('PATCH with apply-patch+yaml requires a fieldManager query parameter');
  const cfg = parsePatchBody(r.body, true);
  if (!isObj(cfg)) throw badRequest('the apply configuration must be an object');
  if (cfg.metadata?.name && cfg.metadata.name !== r.name) throw badRequest(`the name of the object (${cfg.metadata.name}) does not match the name on the URL (${r.name})`);
  const key = `${objectKey(t, r.ns, r.name!)}|${manager}|${r.sub ?? ''}`;
  const old = c.store.get(t, r.ns, r.name!);
  const applied = structuredClone(cfg);
  delete applied.apiVersion;
  delete applied.kind;
  const merged = serverSideApply(old, old ? c.applied.get(key) : undefined, applied);
  const persist = !dryRun(r);
  if (!old) {
    const res = create(c, r, merged);
    if (persist) c.applied.set(key, applied);
    return res;
  }
  const res = write(c, r, old, merged, false);
  if (persist) c.applied.set(key, applied);
  return res;
}

function remove(c: Cluster, r: Request): Reply {
  const t = r.type;
  const old = existing(c, r);
  const pre = r.body ? safeJson(r.body) : undefined;
  const uid = pre?.preconditions?.uid;
  if (uid && uid !== old.metadata.uid) throw conflict(t.name, t.group, old.metadata.name);
  if (dryRun(r) || pre?.dryRun?.includes?.('All')) return { status: 200, body: present(t, old) };
  const orphan = pre?.propagationPolicy === 'Orphan' || pre?.orphanDependents === true || r.query.get('propagationPolicy') === 'Orphan';
  const gone = orphan ? c.store.delete(t, r.ns, r.name!)! : c.deleteCascade(t, r.ns, r.name!)!;
  if (t.kind === 'Namespace') return { status: 200, body: present(t, { ...gone, status: { phase: 'Terminating' } }) };
  return { status: 200, body: t.kind === 'Pod' || t.group === 'apps' || t.group === '' ? present(t, gone) : successStatus({ name: gone.metadata.name, group: t.group, kind: t.name, uid: gone.metadata.uid }) };
}

function deleteCollection(c: Cluster, r: Request): Reply {
  const keep = listFilter(r.query);
  const items = c.store.list(r.type, r.ns).filter(keep);
  if (!dryRun(r)) for (const o of items) c.deleteCascade(r.type, o.metadata.namespace, o.metadata.name);
  return { status: 200, body: { kind: `${r.type.kind}List`, apiVersion: apiVersionOf(r.type), metadata: { resourceVersion: c.store.resourceVersion }, items: items.map((o) => present(r.type, o)) } };
}

function safeJson(s: string): Obj | undefined {
  try {
    const v = JSON.parse(s);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
