import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../redact.ts';

export interface ReadyResult {
  ok: boolean;
  checks: Record<string, boolean | string>;
  /** facts shown beside the checks that do not decide readiness */
  info?: Record<string, string>;
}
export type ReadyCheck = () => Promise<ReadyResult>;

export interface HealthOptions {
  metrics: Metrics;
  ready: ReadyCheck;
  /** readiness checks slower than this fail the probe rather than hang it */
  readyTimeoutMs?: number;
}

export const HEALTH_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

async function readiness(ready: ReadyCheck, timeoutMs: number): Promise<ReadyResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReadyResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, checks: { timeout: `readiness checks took over ${timeoutMs} ms` } }), timeoutMs);
  });
  try {
    return await Promise.race([ready(), timeout]);
  } catch (err) {
    return { ok: false, checks: { error: errorMessage(err) } };
  } finally {
    clearTimeout(timer);
  }
}

function handlers(opts: HealthOptions): Record<(typeof HEALTH_PATHS)[number], Handler> {
  const timeoutMs = opts.readyTimeoutMs ?? 5000;
  return {
    '/healthz': (_req, res) => send(res, 200, 'text/plain; charset=utf-8', 'ok\n'),
    '/readyz': (_req, res) => {
      void readiness(opts.ready, timeoutMs).then((r) => {
        const body = { ...(r.ok ? { ok: true, checks: r.checks } : { ok: false, checks: r.checks, failing: failing(r.checks) }), ...(r.info ? { info: r.info } : {}) };
        send(res, r.ok ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(body));
      });
    },
    '/metrics': (_req, res) => {
      opts.metrics.registry.metrics().then(
        (text) => send(res, 200, opts.metrics.registry.contentType, text),
        (err) => send(res, 500, 'text/plain; charset=utf-8', `metrics collection failed: ${errorMessage(err)}\n`),
      );
    },
  };
}

function failing(checks: Record<string, boolean | string>): string[] {
  return Object.entries(checks)
    .filter(([, v]) => v !== true)
    .map(([k]) => k);
}

/** Bolt 5 HTTPReceiver `customRoutes` entries so Slack HTTP mode serves health on the same port. */
export function healthRoutes(opts: HealthOptions): Array<{ path: string; method: string[]; handler: Handler }> {
  const h = handlers(opts);
  return HEALTH_PATHS.map((path) => ({ path, method: ['GET', 'HEAD'], handler: h[path] }));
}

/** One request handler for a plain node:http server: health paths, else 404. */
export function healthRequestHandler(opts: HealthOptions): Handler {
  const h = handlers(opts);
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as (typeof HEALTH_PATHS)[number];
    const handler = h[path];
    if (!handler) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    handler(req, res);
  };
}

export interface HealthServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Address the health/metrics server (and the Slack receiver in HTTP mode) binds, from RE_BOT_HTTP_HOST:
 * default 127.0.0.1, so `npx re-bot start` on a laptop is not reachable from the network. The container
 * image and the manifests set 0.0.0.0 so kubelet probes reach it. An IPv4/IPv6 address or a hostname.
 */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function httpHostFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.RE_BOT_HTTP_HOST;
  if (raw === undefined || raw === '') return DEFAULT_HTTP_HOST;
  const host = raw.trim();
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare)) return bare;
  if (HOSTNAME.test(host)) return host;
  throw new Error(`RE_BOT_HTTP_HOST: expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::) or a hostname, got "${raw}"`);
}

/** Port from RE_BOT_HTTP_PORT (default 8080). */
export function httpPortFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.RE_BOT_HTTP_PORT;
  if (raw === undefined || raw === '') return 8080;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`RE_BOT_HTTP_PORT: expected an integer port 0-65535, got "${raw}"`);
  return n;
}

export async function startHealthServer(opts: HealthOptions & { port?: number; host?: string }): Promise<HealthServer> {
  const server = createServer(healthRequestHandler(opts));
  const host = opts.host ?? httpHostFromEnv();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? httpPortFromEnv(), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: urlFor(host, port),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** A URL this machine can use to reach a server bound to `host` (a wildcard address is reached on loopback). */
export function urlFor(host: string, port: number): string {
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIP(reach) === 6 ? `[${reach}]` : reach}:${port}`;
}
