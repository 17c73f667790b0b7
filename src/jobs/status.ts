import { and, asc, desc, eq, like, sql } from 'drizzle-orm';
import { expiryText, liveAgentToken } from '../store/agent-tokens.ts';
import type { Store } from '../store/db.ts';
import { deployments, jobs } from '../store/schema.ts';
import type { JobState, JobView } from './types.ts';
import { liveFromJob, reportFromJob, type StatusReport } from './report.ts';

export { reportFromJob, type StatusReport } from './report.ts';
import { ACTIVE_STATES, activeJobFor, jobView, latestJobId } from './views.ts';
import { statusQueries } from './status-queries.ts';


/** Everything `/re status` and `re-bot status` show, read from the DB only (prepared statements). */
export function statusReport(store: Store, deploymentName: string): StatusReport | undefined {
  const q = statusQueries(store);
  const id = q.latestJobId(deploymentName);
  if (!id && !q.deploymentExists(deploymentName)) return undefined;
  const v = id ? q.jobView(id) : undefined;
  const holder = q.lockHolder(deploymentName);
  const lock = holder && { jobId: holder.id, requestedBy: holder.requestedBy, since: holder.startedAt ?? holder.createdAt, state: holder.state as JobState };
  // a rotate-token job changes no release: the live release is the last setup's (lastSucceededJobId skips other kinds)
  const lastGood = q.lastSucceededJobId(deploymentName);
  const lg = lastGood ? (lastGood === v?.id ? v : q.jobView(lastGood)) : undefined;
  const live = lg && liveFromJob(lg);
  const t = liveAgentToken(store, deploymentName);
  const agentToken = t && { id: t.id, name: t.name, ...(t.endAt ? { endAt: t.endAt } : {}), ...(() => { const e = expiryText(t.endAt); return { expiry: e.text, ...(e.warning ? { warning: e.warning } : {}) }; })() };
  const extra = { lock, ...(live ? { live } : {}), ...(agentToken ? { agentToken } : {}) };
  return v ? { ...reportFromJob(v), ...extra } : { deployment: deploymentName, steps: [], approvals: [], ...extra };
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Up to `limit` known deployment names closest to `name` (for "did you mean"). */
export function closestDeployments(store: Store, name: string, limit = 3): string[] {
  const names = store.db.select({ name: deployments.name }).from(deployments).orderBy(asc(deployments.name)).all().map((r) => r.name);
  return names.map((n) => ({ n, d: editDistance(name, n) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((x, y) => x.d - y.d || x.n.localeCompare(y.n)).slice(0, limit).map((x) => x.n);
}

function deploymentNames(store: Store): string[] {
  return store.db.select({ name: deployments.name }).from(deployments).orderBy(asc(deployments.name)).all().map((r) => r.name);
}

/** Every known deployment name, nearest to `name` first (edit distance, then alphabetical; '' = alphabetical), at most `limit`. */
export function knownDeployments(store: Store, name: string, limit = 5): { names: string[]; total: number } {
  const all = deploymentNames(store);
  const names = all.map((n) => ({ n, d: name ? editDistance(name, n) : 0 })).sort((x, y) => x.d - y.d || x.n.localeCompare(y.n)).slice(0, limit).map((x) => x.n);
  return { names, total: all.length };
}

/** "unknown deployment …" with the known names nearest first, or the fact that there are none. */
export function unknownDeploymentMessage(store: Store, name: string, dbPath: string): string {
  const { names, total } = knownDeployments(store, name);
  if (total === 0) return `unknown deployment "${name}": no deployments are recorded in ${dbPath} yet. Run \`re-bot run <spec.yaml>\` or \`re-bot demo\` first, or point RE_BOT_DB at another DB`;
  const more = total > names.length ? ` (and ${total - names.length} more)` : '';
  return `unknown deployment "${name}" in ${dbPath}. Known deployments: ${names.join(', ')}${more}`;
}

/** The jobs of a deployment, newest first (for `re-bot history`). */
export function jobHistory(store: Store, deployment: string, limit = 20): { jobs: JobView[]; total: number } {
  const ids = store.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.deployment, deployment)).orderBy(desc(jobs.createdAt), desc(jobs.id)).all();
  return { jobs: ids.slice(0, limit).map((r) => jobView(store, r.id)!), total: ids.length };
}

export function deploymentExists(store: Store, name: string): boolean {
  return !!store.db.select({ name: deployments.name }).from(deployments).where(eq(deployments.name, name)).get();
}

export type JobRef =
  | { ok: true; job: JobView; via: 'id' | 'prefix' | 'deployment' }
  | { ok: false; reason: 'unknown' | 'ambiguous' | 'no_jobs'; message: string };

/** Shortest prefix after `job_` accepted as a job reference (so "j" never picks "the only job"). */
const MIN_PREFIX = 4;

/**
 * What `re-bot cancel|retry <ref>` acts on: a full job id; a deployment name (its active job, else its
 * latest); or a unique job id prefix ("job_3f2a…" or just "3f2a…", at least 4 characters after `job_`).
 */
export function resolveJobRef(store: Store, ref: string, dbPath: string): JobRef {
  const exact = jobView(store, ref);
  if (exact) return { ok: true, job: exact, via: 'id' };
  if (deploymentExists(store, ref)) {
    const active = activeJobFor(store, ref);
    const id = active?.id ?? latestJobId(store, ref);
    if (!id) return { ok: false, reason: 'no_jobs', message: `deployment "${ref}" has no jobs in ${dbPath}` };
    return { ok: true, job: jobView(store, id)!, via: 'deployment' };
  }
  const prefix = ref.startsWith('job_') ? ref : `job_${ref}`;
  if (prefix.length - 4 >= MIN_PREFIX && /^job_[0-9a-f-]+$/i.test(prefix)) {
    const hits = store.db.select({ id: jobs.id, deployment: jobs.deployment, state: jobs.state }).from(jobs)
      .where(like(jobs.id, `${prefix.toLowerCase()}%`)).orderBy(desc(jobs.createdAt)).limit(6).all()
      .filter((h) => h.id.toLowerCase().startsWith(prefix.toLowerCase()));
    if (hits.length === 1) return { ok: true, job: jobView(store, hits[0].id)!, via: 'prefix' };
    if (hits.length > 1) {
      return { ok: false, reason: 'ambiguous', message: `"${ref}" matches ${hits.length > 5 ? 'more than 5' : hits.length} jobs: ${hits.slice(0, 5).map((h) => `${h.id} (${h.deployment}, ${h.state})`).join('; ')}. Give more of the job id, or the deployment name` };
    }
  }
  // nearest names help with a mistyped deployment; to a job id every name is equally far: alphabetical
  const { names, total } = knownDeployments(store, ref.startsWith('job_') ? '' : ref);
  const known = total ? ` Known deployments: ${names.join(', ')}${total > names.length ? ` (and ${total - names.length} more)` : ''}` : ' No deployments are recorded there yet.';
  return { ok: false, reason: 'unknown', message: `unknown job or deployment "${ref}" in ${dbPath}.${known}` };
}

export const isActive = (state: JobState) => ACTIVE_STATES.includes(state);
