/** JSON merge patch, strategic merge patch (approximate), RFC 6902 JSON patch and server-side apply (approximate). */
import type { Obj } from './store.ts';

export class PatchError extends Error {}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Merge keys of the associative lists re-bot's objects use; other lists are atomic. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  imagePullSecrets: 'name',
  conditions: 'type',
  ownerReferences: 'uid',
  ports: 'containerPort',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
};

function mergeKey(field: string, items: unknown[]): string | undefined {
  const k = MERGE_KEYS[field];
  if (!k) return undefined;
  // Service ports are keyed by `port`, container ports by `containerPort`
  if (field === 'ports' && items.some((i) => isObj(i) && 'port' in i && !('containerPort' in i))) return 'port';
  return items.every((i) => isObj(i)) ? k : undefined;
}

// ---------- RFC 7386 ----------
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---------- strategic merge ----------
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$retainKeys') {
      for (const key of Object.keys(out)) if (!(v as string[]).includes(key) && !(key in patch)) delete out[key];
      continue;
    }
    if (k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[f])) out[f] = out[f].filter((x: unknown) => !(v as unknown[]).includes(x));
      continue;
    }
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    if (Array.isArray(v)) {
      const key = mergeKey(k, [...v, ...(Array.isArray(out[k]) ? out[k] : [])]);
      out[k] = key && Array.isArray(out[k]) ? mergeList(out[k], v, key) : v.filter((i) => !(isObj(i) && i.$patch)).map((i) => stripDirectives(i));
      const order = patch[`$setElementOrder/${k}`];
      if (key && Array.isArray(order)) out[k] = reorder(out[k], order, key);
      continue;
    }
    const merged = strategicMerge(out[k], v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

function mergeList(live: unknown[], patch: unknown[], key: string): unknown[] {
  const out = [...live];
  for (const item of patch) {
    if (!isObj(item)) continue;
    const idx = out.findIndex((x) => isObj(x) && x[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMerge(out[idx], item);
    else out.push(stripDirectives(item));
  }
  return out;
}

function reorder(list: unknown[], order: unknown[], key: string): unknown[] {
  const pos = (x: unknown) => {
    const i = order.findIndex((o) => isObj(o) && isObj(x) && o[key] === x[key]);
    return i < 0 ? order.length : i;
  };
  return [...list].sort((a, b) => pos(a) - pos(b));
}

// ---------- RFC 6902 ----------
function unescape(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parent(doc: unknown, path: string): { container: any; key: string } {
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${path}`);
  const parts = path.slice(1).split('/').map(unescape);
  const key = parts.pop()!;
  let cur: any = doc;
  for (const p of parts) {
    cur = Array.isArray(cur) ? cur[Number(p)] : cur?.[p];
    if (cur === undefined || cur === null || typeof cur !== 'object') throw new PatchError(`path ${path} does not exist`);
  }
  return { container: cur, key };
}

function getPath(doc: unknown, path: string): unknown {
  if (path === '') return doc;
  const { container, key } = parent(doc, path);
  const v = Array.isArray(container) ? container[Number(key)] : container[key];
  if (v === undefined) throw new PatchError(`path ${path} does not exist`);
  return v;
}

function remove(doc: unknown, path: string): unknown {
  const { container, key } = parent(doc, path);
  if (Array.isArray(container)) {
    const i = Number(key);
    if (!(i >= 0 && i < container.length)) throw new PatchError(`path ${path} does not exist`);
    return container.splice(i, 1)[0];
  }
  if (!(key in container)) throw new PatchError(`path ${path} does not exist`);
  const v = container[key];
  delete container[key];
  return v;
}

function add(doc: unknown, path: string, value: unknown): void {
  const { container, key } = parent(doc, path);
  if (Array.isArray(container)) {
    const i = key === '-' ? container.length : Number(key);
    if (!(i >= 0 && i <= container.length)) throw new PatchError(`index out of range in ${path}`);
    container.splice(i, 0, structuredClone(value));
  } else container[key] = structuredClone(value);
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const op of ops as Obj[]) {
    const path = String(op.path ?? '');
    switch (op.op) {
      case 'add':
        if (path === '') doc = structuredClone(op.value);
        else add(doc, path, op.value);
        break;
      case 'remove':
        remove(doc, path);
        break;
      case 'replace':
        if (path === '') doc = structuredClone(op.value);
        else {
          remove(doc, path);
          add(doc, path, op.value);
        }
        break;
      case 'move': {
        const v = remove(doc, String(op.from));
        add(doc, path, v);
        break;
      }
      case 'copy':
        add(doc, path, getPath(doc, String(op.from)));
        break;
      case 'test':
        if (JSON.stringify(getPath(doc, path)) !== JSON.stringify(op.value)) throw new PatchError(`test operation failed at ${path}`);
        break;
      default:
        throw new PatchError(`unknown JSON patch operation ${String(op.op)}`);
    }
  }
  return doc;
}

// ---------- server-side apply ----------
/**
 * Approximate SSA: each manager owns exactly what it last applied. A new apply first removes from
 * the live object every field (or keyed list item) the manager applied before and no longer sends,
 * then merges the new configuration in (associative lists by merge key, other lists replaced).
 */
export function serverSideApply(live: Obj | undefined, previous: Obj | undefined, applied: Obj): Obj {
  const base = live ? structuredClone(live) : {};
  if (previous) prune(base, previous, applied);
  return applyMerge(base, applied) as Obj;
}

function prune(live: Obj, prev: Obj, next: Obj): void {
  for (const [k, pv] of Object.entries(prev)) {
    if (!(k in live)) continue;
    const nv = next[k];
    if (nv === undefined || nv === null) {
      delete live[k];
      continue;
    }
    if (isObj(pv) && isObj(nv) && isObj(live[k])) {
      prune(live[k], pv, nv);
      continue;
    }
    if (Array.isArray(pv) && Array.isArray(nv) && Array.isArray(live[k])) {
      const key = mergeKey(k, [...pv, ...nv]);
      if (!key) continue; // atomic: replaced wholesale by the merge
      live[k] = (live[k] as unknown[]).filter((item) => {
        if (!isObj(item)) return true;
        const wasMine = pv.find((p) => isObj(p) && p[key] === item[key]);
        const stillMine = nv.find((n) => isObj(n) && n[key] === item[key]);
        if (wasMine && !stillMine) return false;
        if (isObj(wasMine) && isObj(stillMine)) prune(item, wasMine, stillMine);
        return true;
      });
    }
  }
}

function applyMerge(live: unknown, applied: unknown, field = ''): unknown {
  if (Array.isArray(applied)) {
    const key = mergeKey(field, applied);
    if (!key || !Array.isArray(live)) return structuredClone(applied);
    const out = [...live];
    for (const item of applied as Obj[]) {
      const idx = out.findIndex((x) => isObj(x) && x[key] === item[key]);
      if (idx >= 0) out[idx] = applyMerge(out[idx], item);
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (!isObj(applied)) return structuredClone(applied);
  const out: Obj = isObj(live) ? { ...live } : {};
  for (const [k, v] of Object.entries(applied)) {
    if (v === null) delete out[k];
    else out[k] = applyMerge(out[k], v, k);
  }
  return out;
}
