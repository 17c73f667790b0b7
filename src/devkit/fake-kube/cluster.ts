/** The fake cluster's mutable state: objects, knobs tests turn (version, nodes, denials, crash loops, logs), garbage collection. */
import { Store, type Obj } from './store.ts';
import { RESOURCES, findKind, findResource, type ResourceType } from './resources.ts';

export interface AccessRule {
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
  subresource?: string;
}
export interface Version {
  major: string;
  minor: string;
  gitVersion?: string;
}
export interface CrashLoop {
  reason: string;
  restarts: number;
  message?: string;
  logTail?: string;
}

export class Cluster {
  readonly store = new Store();
  version: Version;
  readonly nodes = new Map<string, boolean | null>();
  denyRules: AccessRule[] = [];
  readonly crashLoops = new Map<string, CrashLoop>();
  readonly podLogs = new Map<string, string>();
  /** last configuration each field manager applied, by object key + manager */
  readonly applied = new Map<string, Obj>();

  constructor(version: Version) {
    this.version = version;
  }

  get gitVersion(): string {
    return this.version.gitVersion ?? `v${this.version.major}.${this.version.minor.replace(/\D+$/, '')}.1`;
  }

  type(apiVersion: string, kind: string): ResourceType {
    const t = findKind(apiVersion, kind);
    if (!t) throw new Error(`fake-kube does not serve ${apiVersion} ${kind}`);
    return t;
  }

  namespaceExists(ns: string): boolean {
    return !!this.store.get(findResource('', 'v1', 'namespaces')!, undefined, ns);
  }

  /** Deletes an object and, like the garbage collector with background propagation, everything it owns. */
  deleteCascade(t: ResourceType, ns: string | undefined, name: string): Obj | undefined {
    const gone = this.store.delete(t, ns, name);
    if (!gone) return undefined;
    for (const key of [...this.applied.keys()]) if (key.startsWith(`${objectKey(t, ns, name)}|`)) this.applied.delete(key);
    if (t.kind === 'Namespace') {
      for (const rt of uniqueStorage()) if (rt.namespaced) for (const o of this.store.list(rt, name)) this.deleteCascade(rt, name, o.metadata.name);
    }
    const uid = gone.metadata.uid;
    for (const rt of uniqueStorage()) {
      for (const o of this.store.list(rt, ns)) {
        if ((o.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === uid)) this.deleteCascade(rt, o.metadata.namespace, o.metadata.name);
      }
    }
    return gone;
  }
}

export function objectKey(t: ResourceType, ns: string | undefined, name: string): string {
  return `${t.group}/${t.name}/${t.namespaced ? ns : ''}/${name}`;
}

function uniqueStorage(): ResourceType[] {
  const seen = new Set<string>();
  return RESOURCES.filter((t) => {
    const k = `${t.group}/${t.name}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
