/**
 * The one redaction pipeline. Every path out of the process (logs, Slack payloads, DB rows, error
 * messages, helm stderr, files written for the user) passes text through `redact()`.
 *
 * Two layers:
 *  1. exact values registered at runtime (`registerSecret`) — the agent token, API tokens, Git
 *     credentials, anything resolved from a secret reference; also their encoded forms: base64 at each of
 *     the three byte alignments (a value inside a larger base64 blob, e.g. Secret data in helm errors),
 *     base64url, hex, JSON- and URL-escaped, and base64 of `prefix + value` for prefixes known at
 *     registration (the dockerconfigjson `auth` field is base64 of `user:password`). Base64 wrapped over
 *     several lines is joined before matching. Values registered with a `scope` (a job id) are forgotten by
 *     `forgetScope` when the job ends; values registered without one are kept for the life of the process.
 *  2. secret-shaped patterns (bearer tokens, basic-auth URLs, `password=`, dockerconfigjson auths,
 *     Slack, GitHub and AWS credentials, PEM private keys, JWTs) for values we never saw.
 *
 * The exact layer is an index kept up to date on register/forget (no rebuild, no sort per call): every form
 * is filed under its first KEY_LENGTH characters, longest first, and `redact` looks up each position of the
 * text once, so a call costs about the same with 20 000 registered secrets as with one.
 */

export const MASK = '[REDACTED]';

/** Values shorter than this are not registered: masking "a" everywhere would destroy the output. */
const MIN_SECRET_LENGTH = 6;
/** forms are indexed by this many leading characters (every form is at least this long) */
const KEY_LENGTH = MIN_SECRET_LENGTH;
/** a base64 fragment shorter than this is too likely to occur by chance to be masked */
const MIN_BASE64_CORE = 8;

export interface RegisterOptions {
  /** forget the value when `forgetScope(scope)` is called (a job id); default: keep it for the process's life */
  scope?: string;
  /** also mask base64 of each `prefix + value`, e.g. `['cli:']` for a registry password in a dockerconfigjson `auth` */
  variantsWith?: string[];
}

interface Entry {
  forms: string[];
  permanent: boolean;
  scopes: Set<string>;
}

/** registered value (plus its variantsWith prefixes) → its forms and who holds it */
const entries = new Map<string, Entry>();
const scopeIndex = new Map<string, Set<string>>();
/** form → how many entries produce it */
const formRefs = new Map<string, number>();
/** hash of the first KEY_LENGTH characters → forms starting with them (or colliding), longest first */
const index = new Map<number, string[]>();
const FILTER_BITS = 20;
/** how many forms have each low FILTER_BITS of that hash: most positions of a text are ruled out by one array read */
let filter: Uint16Array | undefined;
/** how many forms start with each pair of characters (low bytes): a cheaper first test while few are registered */
let pairs: Uint32Array | undefined;
const pair = (text: string, i: number) => ((text.charCodeAt(i) & 0xff) << 8) | (text.charCodeAt(i + 1) & 0xff);

/** hash of text[i, i + KEY_LENGTH) (FNV-1a over UTF-16 code units) */
function keyHash(text: string, i: number): number {
  let h = 0x811c9dc5;
  for (let k = i; k < i + KEY_LENGTH; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
  return h >>> 0;
}
const slot = (h: number) => h & ((1 << FILTER_BITS) - 1);

function addForm(form: string): void {
  const n = formRefs.get(form) ?? 0;
  formRefs.set(form, n + 1);
  if (n) return;
  sortedForms = undefined;
  const key = keyHash(form, 0);
  const bucket = index.get(key);
  if (!bucket) index.set(key, [form]);
  else {
    let i = 0;
    while (i < bucket.length && bucket[i]!.length >= form.length) i++;
    bucket.splice(i, 0, form);
  }
  filter ??= new Uint16Array(1 << FILTER_BITS);
  pairs ??= new Uint32Array(1 << 16);
  filter[slot(key)]!++;
  pairs[pair(form, 0)]!++;
}

function removeForm(form: string): void {
  const n = formRefs.get(form) ?? 0;
  if (n > 1) return void formRefs.set(form, n - 1);
  if (!n) return;
  formRefs.delete(form);
  sortedForms = undefined;
  const key = keyHash(form, 0);
  const bucket = index.get(key);
  if (bucket) {
    const i = bucket.indexOf(form);
    if (i >= 0) bucket.splice(i, 1);
    if (!bucket.length) index.delete(key);
  }
  filter![slot(key)]!--;
  pairs![pair(form, 0)]!--;
}

export function registerSecret(value: string | undefined | null, opts: RegisterOptions = {}): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  const id = opts.variantsWith?.length ? `${value}\u0000${[...opts.variantsWith].sort().join('\u0000')}` : value;
  let e = entries.get(id);
  if (!e) {
    e = { forms: variants(value, opts.variantsWith ?? []), permanent: false, scopes: new Set() };
    entries.set(id, e);
    for (const f of e.forms) addForm(f);
  }
  if (opts.scope === undefined) e.permanent = true;
  else {
    e.scopes.add(opts.scope);
    let ids = scopeIndex.get(opts.scope);
    if (!ids) scopeIndex.set(opts.scope, (ids = new Set()));
    ids.add(id);
  }
}

/** Forget the values registered with this scope (unless registered without a scope, or by another live scope). */
export function forgetScope(scope: string): void {
  const ids = scopeIndex.get(scope);
  if (!ids) return;
  scopeIndex.delete(scope);
  for (const id of ids) {
    const e = entries.get(id);
    if (!e) continue;
    e.scopes.delete(scope);
    if (e.permanent || e.scopes.size) continue;
    entries.delete(id);
    for (const f of e.forms) removeForm(f);
  }
}

export function forgetAllSecrets(): void {
  entries.clear();
  scopeIndex.clear();
  formRefs.clear();
  sortedForms = undefined;
  index.clear();
  filter?.fill(0);
  pairs?.fill(0);
}

/** How many values are registered (tests, benchmarks). */
export function registeredSecretCount(): number {
  return entries.size;
}

const toUrl = (b64: string) => b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/**
 * base64 of `bytes` wherever it sits in a larger stream: the characters that depend on `bytes` alone, at each
 * of the three alignments; also the complete padded encoding (the value encoded on its own).
 */
function base64Forms(bytes: Buffer, out: Set<string>): void {
  const full = bytes.toString('base64');
  out.add(full);
  out.add(toUrl(full));
  for (const offset of [0, 1, 2]) {
    const b = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // chars before `start` mix in the preceding bytes; chars from `end` on mix in the following ones
    const start = offset === 0 ? 0 : offset + 1;
    const end = Math.floor((offset + bytes.length) / 3) * 4;
    const core = b.slice(start, end);
    if (core.length >= MIN_BASE64_CORE) {
      out.add(core);
      out.add(toUrl(core));
    }
  }
}

function variants(value: string, prefixes: string[]): string[] {
  const out = new Set<string>([value]);
  const bytes = Buffer.from(value, 'utf8');
  base64Forms(bytes, out);
  out.add(bytes.toString('hex'));
  out.add(bytes.toString('hex').toUpperCase());
  out.add(JSON.stringify(value).slice(1, -1));
  out.add(encodeURIComponent(value));
  for (const p of prefixes) {
    // e.g. the dockerconfigjson auth field, and that field inside the Secret's base64 data
    const combined = Buffer.from(p + value, 'utf8').toString('base64');
    out.add(combined);
    base64Forms(Buffer.from(combined, 'utf8'), out);
  }
  return [...out].filter((v) => v.length >= MIN_SECRET_LENGTH);
}

/** Where registered forms occur in `text`: leftmost first, the longest at each position, not overlapping. */
function findExact(text: string): Array<[number, number]> {
  return formRefs.size <= FEW_FORMS ? findFew(text) : findMany(text);
}

/** up to this many forms, native `indexOf` per form (memchr-fast) beats one hashed look-up per position */
const FEW_FORMS = 64;
/** all forms, longest first; rebuilt on the first call after a change */
let sortedForms: string[] | undefined;

function findFew(text: string): Array<[number, number]> {
  sortedForms ??= [...formRefs.keys()].sort((a, b) => b.length - a.length);
  const found: Array<[number, number]> = [];
  for (const f of sortedForms) for (let at = text.indexOf(f); at >= 0; at = text.indexOf(f, at + 1)) found.push([at, at + f.length]);
  if (found.length < 2) return found;
  // leftmost first, the longest at a position, none overlapping an earlier one: as findMany does
  found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const hits: Array<[number, number]> = [];
  let end = 0;
  for (const h of found) if (h[0] >= end) (hits.push(h), (end = h[1]));
  return hits;
}

function findMany(text: string): Array<[number, number]> {
  const hits: Array<[number, number]> = [];
  const n = text.length - KEY_LENGTH;
  for (let i = 0; i <= n; ) {
    if (pairs![pair(text, i)] === 0) {
      i++;
      continue;
    }
    const h = keyHash(text, i);
    if (filter![slot(h)] === 0) {
      i++;
      continue;
    }
    const bucket = index.get(h);
    const hit = bucket?.find((f) => text.startsWith(f, i));
    if (!hit) {
      i++;
      continue;
    }
    hits.push([i, i + hit.length]);
    i += hit.length;
  }
  return hits;
}

function maskExact(text: string): string {
  const hits = findExact(text);
  if (!hits.length) return text;
  let out = '';
  let last = 0;
  for (const [s, e] of hits) {
    out += text.slice(last, s) + MASK;
    last = e;
  }
  return out + text.slice(last);
}

const BASE64_LINE = /^[ \t]*([A-Za-z0-9+/_-]+={0,2})[ \t]*\r?$/;
/** wrapped base64 lines are at least this long (base64 -w 76, PEM 64, openssl 64); the last may be shorter */
const MIN_WRAPPED_LINE = 16;

/**
 * Base64 wrapped over lines (`base64`, PEM bodies, long values in YAML): join each run of base64-only lines
 * and mask every line a registered form spans. Linear in the text: each line is looked at once.
 */
function maskWrappedBase64(text: string): string {
  const lines = text.split('\n');
  let changed = false;
  for (let i = 0; i < lines.length; ) {
    const parts: string[] = [];
    let j = i;
    while (j < lines.length) {
      const m = BASE64_LINE.exec(lines[j]!);
      if (!m) break;
      parts.push(m[1]!);
      j++;
      if (m[1]!.length < MIN_WRAPPED_LINE) break; // a short line ends a wrapped block
    }
    if (parts.length >= 2) {
      const hits = findExact(parts.join(''));
      let start = 0;
      parts.forEach((p, x) => {
        const end = start + p.length;
        if (hits.some(([s, e]) => s < end && e > start)) {
          lines[i + x] = lines[i + x]!.replace(p, MASK);
          changed = true;
        }
        start = end;
      });
    }
    i = Math.max(j, i + 1);
  }
  return changed ? lines.join('\n') : text;
}

const PATTERNS: Array<[RegExp, string]> = [
  // PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, …): the whole block; a block cut off before its END line
  // (a log tail) up to the end of its base64 body
  [/-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----[\s\S]*?-----END ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----/g, MASK],
  [/-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----(?:\r?\n[A-Za-z0-9+/=:, -]*)*/g, MASK],
  // Authorization headers and bearer tokens
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${MASK}`],
  // Slack tokens
  [/\bxox[abposr]-[A-Za-z0-9-]{8,}/g, MASK],
  [/\bxapp-[A-Za-z0-9-]{8,}/g, MASK],
  // GitHub tokens: classic (ghp_, OAuth gho_, user-to-server ghu_, server ghs_, refresh ghr_) and fine-grained
  [/\bgh[pousr]_[A-Za-z0-9]{30,}/g, MASK],
  [/\bgithub_pat_[A-Za-z0-9_]{20,}/g, MASK],
  // AWS access key ids, and secret access keys next to their key name (credentials file, env, JSON)
  [/\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g, MASK],
  [/((?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/gi, `$1${MASK}`],
  // credentials inside URLs: scheme://user:pass@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+):[^\s@/]+@/gi, `$1:${MASK}@`],
  // JWTs
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, MASK],
  // key=value / "key": "value" for secret-looking keys
  [
    /((?:"|')?(?:password|passwd|secret|token|api[-_]?key|apikey|auth|\.dockerconfigjson|client[-_]secret|private[-_]key)(?:"|')?\s*[:=]\s*)(?!"?\[REDACTED\])("[^"]*"|'[^']*'|[^\s,}\]]+)/gi,
    `$1"${MASK}"`,
  ],
];

/** Redact a string. Safe to call on already-redacted text. */
export function redact(text: string): string {
  if (!text) return text;
  let out = text;
  if (formRefs.size) {
    out = maskExact(out);
    if (out.includes('\n')) out = maskWrappedBase64(out);
  }
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** Deep-redact any JSON-able value (strings are redacted, object keys kept). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

/** An Error whose message was redacted; keep the original cause out of reach of serializers. */
export class RedactedError extends Error {
  constructor(message: string, readonly code?: string) {
    super(redact(message));
    this.name = 'RedactedError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return redact(err.message);
  return redact(String(err));
}
