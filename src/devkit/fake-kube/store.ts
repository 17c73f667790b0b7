/** In-memory object storage with a global resourceVersion counter and watch events. */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { storageKey, type ResourceType } from './resources.ts';

export type Obj = Record<string, any>;
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  key: string;
  object: Obj;
}

export class Store {
  private data = new Map<string, Map<string, Obj>>();
  private rv = 1000;
  readonly events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  private bucket(t: ResourceType): Map<string, Obj> {
    const k = storageKey(t);
    let b = this.data.get(k);
    if (!b) this.data.set(k, (b = new Map()));
    return b;
  }

  private id(t: ResourceType, ns: string | undefined, name: string): string {
    return t.namespaced ? `${ns}/${name}` : name;
  }

  get(t: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    const o = this.bucket(t).get(this.id(t, ns, name));
    return o && structuredClone(o);
  }

  list(t: ResourceType, ns?: string): Obj[] {
    const out: Obj[] = [];
    for (const o of this.bucket(t).values()) if (!t.namespaced || !ns || o.metadata.namespace === ns) out.push(structuredClone(o));
    return out.sort((a, b) => `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`));
  }

  /** Stores a new object; fills the server-owned metadata. The caller checked that it does not exist. */
  create(t: ResourceType, obj: Obj): Obj {
    const m = obj.metadata;
    m.uid = randomUUID();
    m.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (obj.spec !== undefined) m.generation = 1;
    m.resourceVersion = String(++this.rv);
    this.bucket(t).set(this.id(t, m.namespace, m.name), obj);
    this.emit(t, 'ADDED', obj);
    return structuredClone(obj);
  }

  /** Replaces an existing object; generation moves when anything but metadata/status changed. */
  update(t: ResourceType, obj: Obj): Obj {
    const m = obj.metadata;
    const key = this.id(t, m.namespace, m.name);
    const old = this.bucket(t).get(key);
    if (!old) throw new Error(`update of missing ${key}`);
    for (const f of ['uid', 'creationTimestamp']) m[f] = old.metadata[f];
    const strip = (o: Obj) => JSON.stringify({ ...o, metadata: undefined, status: undefined });
    if (old.metadata.generation !== undefined || obj.spec !== undefined) m.generation = (old.metadata.generation ?? 1) + (strip(old) !== strip(obj) ? 1 : 0);
    if (JSON.stringify(old) === JSON.stringify({ ...obj, metadata: { ...m, resourceVersion: old.metadata.resourceVersion } })) {
      return structuredClone(old); // no-op writes keep their resourceVersion, like the real API
    }
    m.resourceVersion = String(++this.rv);
    this.bucket(t).set(key, obj);
    this.emit(t, 'MODIFIED', obj);
    return structuredClone(obj);
  }

  delete(t: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    const key = this.id(t, ns, name);
    const old = this.bucket(t).get(key);
    if (!old) return undefined;
    this.bucket(t).delete(key);
    old.metadata.resourceVersion = String(++this.rv);
    this.emit(t, 'DELETED', old);
    return structuredClone(old);
  }

  private emit(t: ResourceType, type: WatchEvent['type'], obj: Obj): void {
    this.events.emit('change', { type, key: storageKey(t), object: structuredClone(obj) } satisfies WatchEvent);
  }
}
