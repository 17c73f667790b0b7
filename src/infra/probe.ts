/**
 * Reaching HTTP endpoints: a fetch with a deadline combined with the caller's AbortSignal, plain-words
 * descriptions of network failures (DNS, refused, TLS, timeout), and `probeUrl` for the prerequisites.
 * The Airflow and Astro clients build on `fetchWithDeadline`, `errorDetail` and `describeIssues`.
 */
import type { z } from 'zod';
import { RedactedError, redact } from '../redact.ts';
import type { CallOptions } from './types.ts';

export const DEFAULT_TIMEOUT_MS = 15_000;

export type HttpFailureCode = 'timeout' | 'cancelled' | 'unreachable';

export interface FetchedResponse {
  status: number;
  headers: Headers;
  /** the whole body, read within the same deadline */
  text: string;
}

/** host[:port] of a URL for messages; never the path or query (they may carry ids or tokens). */
export function hostOf(url: string | URL): string {
  try {
    return new URL(url).host;
  } catch {
    return String(url);
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(2))}s`;
}

const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

function causeChain(err: unknown): Array<{ code?: string; message?: string }> {
  const out: Array<{ code?: string; message?: string }> = [];
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const e = cur as { code?: unknown; message?: unknown; cause?: unknown };
    out.push({ code: typeof e.code === 'string' ? e.code : undefined, message: typeof e.message === 'string' ? e.message : undefined });
    cur = e.cause;
  }
  return out;
}

/** Turns a fetch rejection (not an HTTP status) into one sentence a platform engineer can act on. */
export function describeNetworkError(err: unknown, url: string | URL): { code: HttpFailureCode; message: string } {
  const host = hostOf(url);
  const chain = causeChain(err);
  const code = chain.map((c) => c.code).find(Boolean);
  const detail = chain.map((c) => c.message).filter(Boolean).at(-1) ?? String(err);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return { code: 'unreachable', message: `cannot resolve host ${host} (DNS lookup failed: ${code}); check the URL and the cluster's DNS` };
  }
  if (code === 'ECONNREFUSED') return { code: 'unreachable', message: `connection refused by ${host}; nothing is listening there` };
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return { code: 'unreachable', message: `connection to ${host} was reset before an answer arrived` };
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return { code: 'unreachable', message: `no network route to ${host} (${code}); check egress from this network` };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return { code: 'timeout', message: `could not connect to ${host} (connect timed out); check firewalls and egress rules` };
  if ((code && TLS_CODES.has(code)) || /certificate|ssl|tls/i.test(detail)) {
    return { code: 'unreachable', message: `TLS handshake with ${host} failed (${code ?? 'TLS error'}: ${detail})` };
  }
  return { code: 'unreachable', message: `could not reach ${host}: ${code ? `${code}: ` : ''}${detail}` };
}

/**
 * fetch + read the whole body, bounded by `timeoutMs` and the caller's signal. Network failures become
 * RedactedErrors with code timeout / cancelled / unreachable and a message that starts with `service`.
 * HTTP error statuses are returned, not thrown: the caller knows what they mean.
 */
export async function fetchWithDeadline(
  url: URL,
  init: RequestInit,
  opts: { timeoutMs: number; signal?: AbortSignal; service: string },
): Promise<FetchedResponse> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const fail = (err: unknown): RedactedError => {
    if (timeout.aborted) {
      return new RedactedError(`${opts.service}: no answer from ${hostOf(url)} within ${seconds(opts.timeoutMs)}`, 'timeout');
    }
    if (opts.signal?.aborted) return new RedactedError(`${opts.service}: request to ${hostOf(url)} was cancelled`, 'cancelled');
    const d = describeNetworkError(err, url);
    return new RedactedError(`${opts.service}: ${d.message}`, d.code);
  };
  if (opts.signal?.aborted) throw fail(opts.signal.reason);
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal });
  } catch (err) {
    throw fail(err);
  }
  try {
    const text = await res.text();
    return { status: res.status, headers: res.headers, text };
  } catch (err) {
    throw fail(err);
  }
}

/** The message of an error body: FastAPI `detail` (a string or a list of `{loc, msg}` issues) or Astro `message`. */
export function errorDetail(text: string): string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return plain(text);
  }
  if (body && typeof body === 'object') {
    const detail = (body as { detail?: unknown; message?: unknown }).detail ?? (body as { message?: unknown }).message;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          if (!d || typeof d !== 'object') return String(d);
          const { loc, msg } = d as { loc?: unknown; msg?: unknown };
          const where = Array.isArray(loc) ? loc.join('.') : '';
          return where ? `${where}: ${String(msg)}` : String(msg);
        })
        .join('; ');
    }
    if (detail !== undefined) return JSON.stringify(detail).slice(0, 300);
  }
  return plain(text);
}

/** An HTML or text error page as one short line (proxies and load balancers answer with HTML). */
function plain(text: string): string {
  return text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
}

type Answer = { service: string; host: string; action: string };

/** `json` checked against `schema`; a `bad_response` error naming the service, host and action otherwise. */
export function checkBody<T>(json: unknown, schema: z.ZodType<T>, at: Answer): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new RedactedError(`${at.service} at ${at.host} answered ${at.action} with an unexpected body: ${describeIssues(parsed.error)}`, 'bad_response');
  return parsed.data;
}

/** A response body parsed as JSON and checked against `schema` (see `checkBody`). */
export function parseBody<T>(text: string, status: number, schema: z.ZodType<T>, at: Answer): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RedactedError(`${at.service} at ${at.host} answered ${at.action} with HTTP ${status} but the body is not JSON`, 'bad_response');
  }
  return checkBody(json, schema, at);
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`)
    .join('; ');
}

/**
 * Is anything answering at `url`? Any HTTP status (even 401/403/404/5xx) means reachable: the network path
 * works, which is what the prerequisites check. DNS, connect, TLS and timeout failures are not.
 */
export async function probeUrl(url: string, opts: CallOptions = {}): Promise<{ ok: boolean; status?: number; error?: string }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, error: `not a valid URL: ${redact(url)}` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, error: `not an http(s) URL: ${redact(url)}` };
  }
  try {
    const res = await fetchWithDeadline(parsed, { method: 'HEAD', redirect: 'manual' }, {
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: opts.signal,
      service: 'probe',
    });
    return { ok: true, status: res.status };
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^probe: /, '') : String(err);
    return { ok: false, error: redact(message) };
  }
}
