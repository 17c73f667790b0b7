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
    const bytes = Buffer.from(await res.body.arrayBuffer());
    const empty = res.statusCode === 204 || res.statusCode === 304;
    return new LeanResponse(empty ? EMPTY : bytes, res.statusCode, res.statusText ?? '', new LeanHeaders(res.headers), String(input)) as unknown as Response;
  };
  return Object.assign(f as typeof fetch, { close: () => agent.close() });
}

const EMPTY = Buffer.alloc(0);

/**
 * The part of the Fetch API's Headers its callers here use (the Web API client, Bolt's respond(), the metrics):
 * built from undici's already lower-cased header object without the Headers class's per-header validation.
 */
class LeanHeaders {
  private m = new Map<string, string>();
  constructor(raw: Record<string, string | string[] | undefined>) {
    for (const [k, v] of Object.entries(raw)) if (v !== undefined) this.m.set(k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v);
  }
  get(name: string): string | null {
    return this.m.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.m.has(name.toLowerCase());
  }
  entries(): IterableIterator<[string, string]> {
    return this.m.entries();
  }
  keys(): IterableIterator<string> {
    return this.m.keys();
  }
  values(): IterableIterator<string> {
    return this.m.values();
  }
  forEach(fn: (value: string, key: string, parent: LeanHeaders) => void): void {
    for (const [k, v] of this.m) fn(v, k, this);
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.m.entries();
  }
}

/**
 * A read-once-buffered response with the Response members the callers use (status, ok, headers, text, json,
 * arrayBuffer, clone). Constructing a real Response (web streams around the body) was about a third of the
 * cost of each Slack call and response_url answer on the Slack process (bench/click.ts profile).
 */
class LeanResponse {
  readonly type = 'default';
  readonly redirected = false;
  bodyUsed = false;
  constructor(private readonly bytes: Buffer, readonly status: number, readonly statusText: string, readonly headers: LeanHeaders, readonly url: string) {}
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
  async text(): Promise<string> {
    this.bodyUsed = true;
    return this.bytes.toString('utf8');
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    this.bodyUsed = true;
    return this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer;
  }
  clone(): LeanResponse {
    return new LeanResponse(this.bytes, this.status, this.statusText, this.headers, this.url);
  }
}
