/** The structured review of an approval request (ApprovalReview): values diff by key path, secret-safe. */
import { redact } from '../redact.ts';
import type { ApprovalReview, StepContext } from './types.ts';
import type { ReleasePlan } from './release.ts';
import type { PreparedSecret } from './secrets.ts';

/** a key whose value is a credential (not a reference to one: `agentTokenSecretName` names a Secret) */
const SECRET_KEY = /(password|passwd|token|apikey|api_key|secretkey|secret_key|privatekey|private_key|credentials?|auth)$/i;
const REFERENCE = /(secretname|secretref|secret|name|names|file|path|url|endpoint)$/i;

export function isSecretPath(path: string): boolean {
  const last = path.split('.').at(-1)!.replace(/\[\d+\]$/, '');
  return SECRET_KEY.test(last) && !REFERENCE.test(last);
}

/** leaf values by key path: `a.b[0].c` → JSON of the leaf (strings unquoted) */
export function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    if (!v.length) out.set(prefix, '[]');
    // env-style lists ({name, …}) by name: a reviewer reads `commonEnv[AWS_REGION].value`, not an index
    const named = v.every((x) => x && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string')
      && new Set(v.map((x) => (x as { name: string }).name)).size === v.length;
    v.forEach((x, i) => {
      if (!named) return flatten(x, `${prefix}[${i}]`, out);
      const { name, ...rest } = x as { name: string };
      if (!Object.keys(rest).length) out.set(`${prefix}[${name}]`, '{}');
      flatten(rest, `${prefix}[${name}]`, out);
    });
  } else if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (!entries.length && prefix) out.set(prefix, '{}');
    for (const [k, x] of entries) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out.set(prefix, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return out;
}

/**
 * Every key path whose value differs, old → new (old undefined: added; new undefined: removed). A
 * secret-bearing key, or a value the redactor knows, is marked `secret` and carries no value at all.
 */
export function valuesDiff(oldValues: unknown, newValues: unknown): ApprovalReview['values'] {
  const a = flatten(oldValues ?? {});
  const b = flatten(newValues ?? {});
  const out: ApprovalReview['values'] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const o = a.get(path);
    const n = b.get(path);
    if (o === n) continue;
    const secret = isSecretPath(path) || [o, n].some((x) => x !== undefined && redact(x) !== x);
    out.push(secret ? { path, secret: true, ...(o !== undefined ? { old: '' } : {}), ...(n !== undefined ? { new: '' } : {}) } : { path, ...(o !== undefined ? { old: o } : {}), ...(n !== undefined ? { new: n } : {}) });
  }
  return out;
}

/** What the approver reviews: chart, release and namespace (new or existing), values diff, Secrets, token URLs. */
export function reviewOf(spec: StepContext['spec'], release: ReleasePlan, createNamespace: boolean, secrets: PreparedSecret[], values: ApprovalReview['values'], urls: string[]): ApprovalReview {
  const fresh = release.firstInstall;
  const sameChart = release.currentChart === `${release.chart.name}-${release.chart.version}`;
  return {
    chart: { ...release.chart, state: fresh || !sameChart ? 'new' : 'existing', ...(!fresh && !sameChart && release.currentChart ? { from: release.currentChart } : {}) },
    release: { name: spec.cluster.release, namespace: spec.cluster.namespace, state: fresh ? 'new' : 'existing', ...(release.currentRevision !== undefined && !fresh ? { revision: release.currentRevision } : {}), ...(release.adopts ? { adopts: true } : {}) },
    namespace: { name: spec.cluster.namespace, state: createNamespace ? 'new' : 'existing' },
    values,
    secrets: secrets.map((s) => ({ name: s.name, keys: s.keys, action: s.action, hash: s.hash.slice(0, 12) })),
    tokenUrls: urls,
  };
}

