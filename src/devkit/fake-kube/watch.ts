/** `?watch=true`: current objects as ADDED (unless resuming from a resourceVersion), then live changes until timeoutSeconds. */
import type { ServerResponse } from 'node:http';
import { Cluster } from './cluster.ts';
import { storageKey, apiVersionOf, type ResourceType } from './resources.ts';
import type { Obj, WatchEvent } from './store.ts';
import { listFilter, present } from './handlers.ts';

export function serveWatch(c: Cluster, t: ResourceType, ns: string | undefined, name: string | undefined, q: URLSearchParams, res: ServerResponse, onEnd: (fn: () => void) => void): void {
  const filter = listFilter(q);
  const keep = (o: Obj) => (!ns || o.metadata.namespace === ns) && (!name || o.metadata.name === name) && filter(o);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache' });
  res.flushHeaders(); // clients wait for the headers before they consider the watch established
  const send = (type: string, object: Obj) => res.write(`${JSON.stringify({ type, object })}\n`);
  const fromRv = q.get('resourceVersion');
  const initial = q.get('sendInitialEvents') === 'true' || !fromRv || fromRv === '0';
  if (initial) for (const o of c.store.list(t, ns)) if (keep(o)) send('ADDED', present(t, o));
  if (q.get('sendInitialEvents') === 'true') {
    send('BOOKMARK', { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: c.store.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } } });
  }
  const key = storageKey(t);
  const onChange = (e: WatchEvent) => {
    if (e.key === key && keep(e.object)) send(e.type, present(t, e.object));
  };
  c.store.events.on('change', onChange);
  const seconds = Number(q.get('timeoutSeconds')) || 1800;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    c.store.events.off('change', onChange);
    clearTimeout(timer);
    if (!res.writableEnded) res.end();
  };
  timer = setTimeout(stop, seconds * 1000);
  res.on('close', stop);
  onEnd(stop);
}
