/**
 * The fetch the Web API client and Bolt's respond() use (clientOptions.fetch): undici's request() over one
 * keep-alive Agent instead of the global fetch. A burst of 200 `/re status` answers to response_url, and the
 * outbox's steady posts, reuse a bounded pool of connections (no TCP/TLS handshake per answer), and skip
 * fetch's web-stream machinery, which was a visible share of the Slack process's CPU under load
 * (BENCHMARKS.md, issue 15). Every call has a timeout: the Agent's, besides any signal the caller passes.
 */
import { Agent, request } from 'undici';

export interface KeepAliveFetchOptions {
  /** connections per origin (default 16) */
  connections?: number;
  /** idle time before a kept-alive connection is closed (default 30 s; a server's Keep-Alive hint wins when shorter) */
  keepAliveMs?: number;
  /** time for the response headers, and between body chunks (default 10 s) */
  timeoutMs?: number;
}

type FetchInit = NonNullable<Parameters<typeof fetch>[1]>;

function headersOf(h: FetchInit['headers']): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return h as Record<string, string>;
}

export function keepAliveFetch(o: KeepAliveFetchOptions = {}): typeof fetch & { close(): Promise<void> } {
  const timeout = o.timeoutMs ?? 10_000;
  const agent = new Agent({
    connections: o.connections ?? 16,
    keepAliveTimeout: o.keepAliveMs ?? 30_000,
    keepAliveMaxTimeout: o.keepAliveMs ?? 30_000,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    connectTimeout: timeout,
  });
  const f = async (input: Parameters<typeof fetch>[0], init: FetchInit = {}): Promise<Response> => {
    const body = init.body;
    // string/bytes bodies are all Slack's JSON and form posts send; anything else (multipart uploads) takes the global fetch
    if (input instanceof Request || (body != null && typeof body !== 'string' && !(body instanceof Uint8Array) && !(body instanceof URLSearchParams))) {
      return globalThis.fetch(input, init);
    }
    const res = await request(String(input), {
      method: (init.method ?? 'GET') as 'GET',
      headers: headersOf(init.headers),
      body: body instanceof URLSearchParams ? body.toString() : (body as string | Uint8Array | null | undefined),
      signal: init.signal ?? undefined,
      dispatcher: agent,
    });
    const bytes = await res.body.arrayBuffer();
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) headers.append(k, x);
      else if (v !== undefined) headers.set(k, v);
    }
    const empty = res.statusCode === 204 || res.statusCode === 304;
    return new Response(empty ? null : bytes, { status: res.statusCode, statusText: res.statusText ?? '', headers });
  };
  return Object.assign(f as typeof fetch, { close: () => agent.close() });
}
