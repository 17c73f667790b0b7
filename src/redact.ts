/**
 * The one redaction pipeline. Every path out of the process (logs, Slack payloads, DB rows, error
 * messages, helm stderr, files written for the user) passes text through `redact()`.
 *
 * Two layers:
 *  1. exact values registered at runtime (`registerSecret`) — the agent token, API tokens, Git
 *     credentials, anything resolved from a secret reference; also their base64 and JSON-escaped forms,
 *     because helm and Kubernetes print Secret data base64-encoded;
 *  2. secret-shaped patterns (bearer tokens, basic-auth URLs, `password=`, dockerconfigjson auths,
 *     Slack tokens, JWTs) for values we never saw.
 */

export const MASK = '[REDACTED]';

const exact = new Set<string>();

/** Values shorter than this are not registered: masking "a" everywhere would destroy the output. */
const MIN_SECRET_LENGTH = 6;

export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  for (const form of variants(value)) exact.add(form);
}

export function forgetAllSecrets(): void {
  exact.clear();
}

function variants(value: string): string[] {
  const out = new Set<string>([value]);
  out.add(Buffer.from(value, 'utf8').toString('base64'));
  // base64 of the value inside a larger blob shifts alignment; cover the two other alignments' stable cores
  for (const pad of ['x', 'xx']) {
    const b = Buffer.from(pad + value, 'utf8').toString('base64');
    const skip = Math.ceil((pad.length * 4) / 3) + 1;
    const core = b.slice(skip, b.length - 4);
    if (core.length >= 8) out.add(core);
  }
  const core0 = Buffer.from(value, 'utf8').toString('base64');
  if (core0.length > 8) out.add(core0.slice(0, core0.length - 4));
  out.add(JSON.stringify(value).slice(1, -1));
  out.add(encodeURIComponent(value));
  return [...out].filter((v) => v.length >= MIN_SECRET_LENGTH);
}

const PATTERNS: Array<[RegExp, string]> = [
  // Authorization headers and bearer tokens
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${MASK}`],
  // Slack tokens
  [/\bxox[abposr]-[A-Za-z0-9-]{8,}/g, MASK],
  [/\bxapp-[A-Za-z0-9-]{8,}/g, MASK],
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
  if (exact.size) {
    // longest first so that a value's substring forms do not leave fragments behind
    for (const v of [...exact].sort((a, b) => b.length - a.length)) {
      if (out.includes(v)) out = out.split(v).join(MASK);
    }
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
