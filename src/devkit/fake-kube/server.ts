/** HTTPS front of the fake API: routing of discovery, non-resource endpoints and resource paths to the handlers. */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Cluster } from './cluster.ts';
import { findResource, type ResourceType } from './resources.ts';
import { toTable, wantsTable } from './table.ts';
import type { Obj } from './store.ts';
import { coreVersions, group, groupList, resourceList } from './discovery.ts';
import { ApiError, badRequest, notFound, statusBody } from './status.ts';
import { handle, listFilter, parseJsonBody } from './handlers.ts';
import { accessReview, configz, node, nodes, podLog, rulesReview } from './special.ts';
import { serveWatch } from './watch.ts';
import { protobufToJson } from './proto.ts';
import { openapiGroupVersion, openapiRoot } from './openapi.ts';
import type { ServingCert } from './tls.ts';

const MAX_BODY = 8 * 1024 * 1024;

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
}

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(c: Cluster, tls: ServingCert, port: number, log: RequestRecord[] | undefined): Promise<HttpServer> {
  const sockets = new Set<Socket>();
  const stoppers = new Set<() => void>();
  let address = '127.0.0.1:0';
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    void serve(req, res).catch((e) => fail(res, e));
  });
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_e, s) => s.destroy());

  function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
    if (res.headersSent) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  function fail(res: ServerResponse, e: unknown): void {
    const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', `fake-kube internal error: ${(e as Error)?.message ?? e}`);
    if (!(e instanceof ApiError)) console.error('fake-kube:', e);
    send(res, err.code, statusBody(err));
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) throw new ApiError(413, 'RequestEntityTooLarge', 'request body too large');
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    if (log) res.on('finish', () => log.push({ method, path: url.pathname + url.search, status: res.statusCode }));
    const raw = await readBody(req);
    let contentType = String(req.headers['content-type'] ?? 'application/json');
    let body = raw.toString('utf8');
    if (contentType.includes('protobuf') || contentType.includes('cbor')) {
      const json = contentType.includes('protobuf') && raw.length ? safe(() => protobufToJson(raw)) : undefined;
      if (json === undefined && raw.length && method !== 'DELETE') {
        throw new ApiError(415, 'UnsupportedMediaType', `fake-kube cannot read this protobuf/CBOR body; send application/json`);
      }
      body = json ?? '';
      contentType = 'application/json';
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const q = url.searchParams;

    const fixed = nonResource(path);
    if (fixed !== undefined) return send(res, 200, fixed);
    if (path === '/healthz' || path === '/livez' || path === '/readyz' || /^\/(healthz|livez|readyz)\//.test(path)) return send(res, 200, 'ok', 'text/plain');

    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/(.*))?$/.exec(path);
    if (!m || !m[4]) throwNotFound(path);
    const groupName = m[1] ? '' : m[2]!;
    const version = m[1] ?? m[3]!;
    let segs: string[];
    try {
      segs = m[4]!.split('/').map(decodeURIComponent);
    } catch {
      throw badRequest(`malformed path ${path}`);
    }

    let ns: string | undefined;
    let rest = segs;
    if (segs[0] === 'namespaces' && segs.length >= 3 && findResource(groupName, version, segs[2]!)?.namespaced) {
      ns = segs[1];
      rest = segs.slice(2);
    }
    const [resource, name, sub, ...more] = rest;
    const t = findResource(groupName, version, resource!);
    if (!t) throw notFound(resource ?? '', groupName, name ?? '');

    // special endpoints
    if (t.kind === 'SelfSubjectAccessReview' && method === 'POST') return send(res, 201, accessReview(c, parseJsonBody(body)));
    if (t.kind === 'SelfSubjectRulesReview' && method === 'POST') return send(res, 201, rulesReview(parseJsonBody(body)));
    if (t.kind === 'Node') {
      if (method !== 'GET') throw new ApiError(405, 'MethodNotAllowed', 'nodes are read-only in the fake cluster');
      const list = { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: c.store.resourceVersion }, items: nodes(c).filter(listFilter(q)) };
      if (!name && wantsTable(req.headers.accept)) return send(res, 200, asTable(t, list, q));
      if (!name) return send(res, 200, list);
      if (sub === 'proxy' && more.join('/') === 'configz') return send(res, 200, configz(c, name));
      if (sub) throw notFound(`nodes/${sub}`, '', name);
      return send(res, 200, node(c, name));
    }
    if (t.kind === 'Pod' && sub === 'log' && method === 'GET') {
      const pod = c.store.get(t, ns, name!);
      if (!pod) throw notFound('pods', '', name!);
      const container = q.get('container');
      if (container && !(pod.spec?.containers ?? []).some((x: { name: string }) => x.name === container)) {
        throw badRequest(`container ${container} is not valid for pod ${name}`);
      }
      return send(res, 200, podLog(c, pod, q), 'text/plain');
    }
    if (more.length) throw notFound(`${t.name}/${sub}/${more.join('/')}`, t.group, name ?? '');

    if (method === 'GET' && (q.get('watch') === 'true' || q.get('watch') === '1')) {
      return serveWatch(c, t, ns, name, q, res, (stop) => {
        stoppers.add(stop);
        res.on('close', () => stoppers.delete(stop));
      });
    }
    const reply = handle(c, { method, type: t, ns, name, sub, query: q, body, contentType });
    if (method === 'GET' && !sub && wantsTable(req.headers.accept)) return send(res, 200, asTable(t, reply.body as Obj, q));
    send(res, reply.status, reply.body);
  }

  function asTable(t: ResourceType, body: Obj, q: URLSearchParams): Obj {
    const items = Array.isArray(body.items) ? body.items : [body];
    return toTable(t, items, body.metadata?.resourceVersion ?? c.store.resourceVersion, q.get('includeObject'));
  }

  function nonResource(path: string): unknown {
    switch (path) {
      case '/version':
        return { major: c.version.major, minor: c.version.minor, gitVersion: c.gitVersion, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.24.0', compiler: 'gc', platform: 'linux/amd64' };
      case '/api':
        return coreVersions(address);
      case '/apis':
        return groupList();
      case '/openapi/v3':
        return openapiRoot();
    }
    if (path.startsWith('/openapi/v3/')) return openapiGroupVersion(path.slice('/openapi/v3/'.length)) ?? throwNotFound(path);
    let m = /^\/api\/(v1)$/.exec(path);
    if (m) return resourceList('', m[1]!);
    m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) return resourceList(m[1]!, m[2]!) ?? throwNotFound(path);
    m = /^\/apis\/([^/]+)$/.exec(path);
    if (m) return group(m[1]!) ?? throwNotFound(path);
    return undefined;
  }

  function safe<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch {
      return undefined;
    }
  }

  function throwNotFound(path: string): never {
    throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  address = `127.0.0.1:${actual}`;

  return {
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        for (const stop of stoppers) stop();
        server.close(() => resolve());
        server.closeIdleConnections?.();
        for (const s of sockets) s.destroy();
      }),
  };
}
