/**
 * When the wizard may keep a secret reference of the previous spec (an env/file ref left empty in the form).
 *
 * A kept reference points at a credential of the bot's own environment (`{ env: ASTRO_API_TOKEN }`), so whoever
 * edits the URLs it is sent to decides where that credential goes. It is kept only while
 *  - the user of the wizard is the one who submitted the previous spec, and
 *  - every URL that receives it is unchanged;
 * otherwise it is dropped and the field asks for the value again, saying why.
 */
import type { SecretRef } from '../spec/schema.ts';

/** the spec fields each wizard secret is sent to (or that decide where it goes) */
export const SECRET_RECEIVERS: Record<string, readonly string[]> = {
  'deployment.apiToken': ['deployment.apiUrl', 'deployment.airflowApiUrl', 'deployment.astroApiUrl', 'openLineage.url', 'openLineage.enabled', 'agent.imagePullRegistry'],
  'agent.token': ['deployment.apiUrl', 'deployment.astroApiUrl'],
  'dagSource.credentials.username': ['dagSource.repoUrl'],
  'dagSource.credentials.token': ['dagSource.repoUrl'],
};

/** any other secret field: every URL field counts */
const ALL_RECEIVERS = [...new Set(Object.values(SECRET_RECEIVERS).flat())];
export const receiversOf = (path: string): readonly string[] => SECRET_RECEIVERS[path] ?? ALL_RECEIVERS;

const what = (path: string) => (path.endsWith('username') ? 'the user name' : 'the token');

export const storedByAnotherUser = (path: string) => `Re-enter ${what(path)}: it was stored by another user, and a kept reference is only reused by the person who set it up.`;
export const receiverChanged = (path: string, field: string) =>
  `Re-enter ${what(path)}: the ${field.endsWith('repoUrl') ? 'repository' : 'API'} URL changed since it was stored (${field}); a kept reference is only sent where it was sent before.`;

function get(o: unknown, path: string): unknown {
  return path.split('.').reduce<any>((x, k) => (x == null || typeof x !== 'object' ? undefined : x[k]), o);
}
const norm = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v).trim());

/** the values of every receiver field, at prefill time */
export function receiverSnapshot(spec: unknown): Record<string, string | undefined> {
  return Object.fromEntries(ALL_RECEIVERS.map((p) => [p, norm(get(spec, p))]));
}

export interface KeepState {
  keep: Record<string, SecretRef>;
  /** receiver values when the refs were kept (WizardSessions sets it; without it nothing is compared) */
  keptUrls?: Record<string, string | undefined>;
  /** refs dropped up front (another user), with the reason shown on the field */
  dropped?: Record<string, string>;
}

/** kept refs that may not be used for `raw` (the spec being built), with the reason for each */
export function invalidKeeps(raw: unknown, s: KeepState): Record<string, string> {
  const out: Record<string, string> = { ...s.dropped };
  if (!s.keptUrls) return out;
  for (const path of Object.keys(s.keep)) {
    const changed = receiversOf(path).find((r) => norm(get(raw, r)) !== s.keptUrls![r]);
    if (changed) out[path] = receiverChanged(path, changed.replace(/\.enabled$/, '.url'));
  }
  return out;
}

/** at session start: refs stored by someone else (or by nobody known) are not offered at all */
export function keepFor(user: string, storedBy: string | undefined, keep: Record<string, SecretRef>): Pick<KeepState, 'keep' | 'dropped'> {
  if (storedBy !== undefined && storedBy === user) return { keep };
  const dropped: Record<string, string> = {};
  for (const path of Object.keys(keep)) dropped[path] = storedByAnotherUser(path);
  return { keep: {}, dropped };
}
