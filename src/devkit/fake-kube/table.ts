/** meta.k8s.io/v1 Table responses, so `kubectl get` prints the usual columns (READY, STATUS, ...). */
import type { Obj } from './store.ts';
import type { ResourceType } from './resources.ts';

type Column = [name: string, cell: (o: Obj) => string | number];

function age(o: Obj): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(o.metadata?.creationTimestamp ?? '')) / 1000)) || 0;
  if (s < 120) return `${s}s`;
  if (s < 600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function podStatus(p: Obj): string {
  const waiting = (p.status?.containerStatuses ?? []).map((c: Obj) => c.state?.waiting?.reason).find(Boolean);
  return waiting ?? p.status?.phase ?? 'Unknown';
}

const COLUMNS: Record<string, Column[]> = {
  Pod: [
    ['Ready', (p) => `${(p.status?.containerStatuses ?? []).filter((c: Obj) => c.ready).length}/${(p.spec?.containers ?? []).length}`],
    ['Status', podStatus],
    ['Restarts', (p) => (p.status?.containerStatuses ?? []).reduce((n: number, c: Obj) => n + (c.restartCount ?? 0), 0)],
  ],
  Deployment: [
    ['Ready', (d) => `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`],
    ['Up-to-date', (d) => d.status?.updatedReplicas ?? 0],
    ['Available', (d) => d.status?.availableReplicas ?? 0],
  ],
  ReplicaSet: [
    ['Desired', (r) => r.spec?.replicas ?? 0],
    ['Current', (r) => r.status?.replicas ?? 0],
    ['Ready', (r) => r.status?.readyReplicas ?? 0],
  ],
  Namespace: [['Status', (n) => n.status?.phase ?? 'Active']],
  Secret: [
    ['Type', (s) => s.type ?? 'Opaque'],
    ['Data', (s) => Object.keys(s.data ?? {}).length],
  ],
  ConfigMap: [['Data', (c) => Object.keys(c.data ?? {}).length + Object.keys(c.binaryData ?? {}).length]],
  ServiceAccount: [['Secrets', (s) => (s.secrets ?? []).length]],
  Node: [
    ['Status', (n) => ((n.status?.conditions ?? []).some((c: Obj) => c.type === 'Ready' && c.status === 'True') ? 'Ready' : 'NotReady')],
    ['Version', (n) => n.status?.nodeInfo?.kubeletVersion ?? ''],
  ],
};

export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

export function toTable(t: ResourceType, items: Obj[], resourceVersion: string, includeObject: string | null): Obj {
  const cols: Column[] = [['Name', (o) => o.metadata.name], ...(COLUMNS[t.kind] ?? []), ['Age', age]];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: cols.map(([name], i) => ({ name, type: name === 'Restarts' || name === 'Data' ? 'integer' : 'string', format: i === 0 ? 'name' : '', description: '', priority: 0 })),
    rows: items.map((o) => ({
      cells: cols.map(([, cell]) => cell(o)),
      object:
        includeObject === 'None'
          ? undefined
          : includeObject === 'Object'
            ? o
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
