import { expiryText, liveAgentToken, type AgentTokenRow } from '../store/agent-tokens.ts';
import type { Store } from '../store/db.ts';
import type { Repository, StatusAnswer } from '../store/repo.ts';
import type { JobState, JobView } from './types.ts';
import { liveFromJob, reportFromJob, type StatusReport } from './report.ts';

export { reportFromJob, type StatusReport } from './report.ts';
import { ACTIVE_STATES } from './views.ts';
import { statusQueries } from './status-queries.ts';


/** The report from what the store read (`repo.status.answer` and the live agent token); undefined for an unknown deployment. */
export function composeReport(deploymentName: string, a: StatusAnswer, t: AgentTokenRow | undefined): StatusReport | undefined {
  if (!a.latestJobId && !a.deploymentExists) return undefined;
  const v = a.view;
  const holder = a.lock;
  const lock = holder && { jobId: holder.id, requestedBy: holder.requestedBy, since: holder.startedAt ?? holder.createdAt, state: holder.state as JobState };
  // a rotate-token job changes no release: the live release is the last setup's (lastSucceededJobId skips other kinds)
  const live = a.lastGood && liveFromJob(a.lastGood);
  const agentToken = t && { id: t.id, name: t.name, ...(t.endAt ? { endAt: t.endAt } : {}), ...(() => { const e = expiryText(t.endAt); return { expiry: e.text, ...(e.warning ? { warning: e.warning } : {}) }; })() };
  const extra = { lock, ...(live ? { live } : {}), ...(agentToken ? { agentToken } : {}) };
  return v ? { ...reportFromJob(v), ...extra } : { deployment: deploymentName, steps: [], approvals: [], ...extra };
}

/**
 * Everything `/re status` and `re-bot status` show, read from the SQLite store only (prepared statements,
 * synchronous: the Slack process's status cache calls it). `statusReportOf` is the same answer through a Repository.
 */
export function statusReport(store: Store, deploymentName: string): StatusReport | undefined {
  const q = statusQueries(store);
  const id = q.latestJobId(deploymentName);
  if (!id && !q.deploymentExists(deploymentName)) return undefined;
  const view = id ? q.jobView(id) : undefined;
  const lock = q.lockHolder(deploymentName);
  const good = q.lastSucceededJobId(deploymentName);
  const lastGood = good ? (good === view?.id ? view : q.jobView(good)) : undefined;
  const answer: StatusAnswer = { deploymentExists: true, ...(id ? { latestJobId: id, view } : {}), ...(lock ? { lock } : {}), ...(lastGood ? { lastGood } : {}) };
  return composeReport(deploymentName, answer, liveAgentToken(store, deploymentName));
}

/** `statusReport` through the repository (either dialect). */
export async function statusReportOf(repo: Repository, deploymentName: string): Promise<StatusReport | undefined> {
  const a = await repo.status.answer(deploymentName);
  if (!a.latestJobId && !a.deploymentExists) return undefined;
  return composeReport(deploymentName, a, await repo.agentTokens.live(deploymentName));
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
export async function closestDeployments(repo: Repository, name: string, limit = 3): Promise<string[]> {
  const names = await repo.deployments.names();
  return names.map((n) => ({ n, d: editDistance(name, n) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((x, y) => x.d - y.d || x.n.localeCompare(y.n)).slice(0, limit).map((x) => x.n);
}

/** Every known deployment name, nearest to `name` first (edit distance, then alphabetical; '' = alphabetical), at most `limit`. */
export async function knownDeployments(repo: Repository, name: string, limit = 5): Promise<{ names: string[]; total: number }> {
  const all = await repo.deployments.names();
  const names = all.map((n) => ({ n, d: name ? editDistance(name, n) : 0 })).sort((x, y) => x.d - y.d || x.n.localeCompare(y.n)).slice(0, limit).map((x) => x.n);
  return { names, total: all.length };
}

/** "unknown deployment …" with the known names nearest first, or the fact that there are none. */
export async function unknownDeploymentMessage(repo: Repository, name: string, dbPath: string): Promise<string> {
  const { names, total } = await knownDeployments(repo, name);
  if (total === 0) return `unknown deployment "${name}": no deployments are recorded in ${dbPath} yet. Run \`re-bot run <spec.yaml>\` or \`re-bot demo\` first, or point RE_BOT_DB at another DB`;
  const more = total > names.length ? ` (and ${total - names.length} more)` : '';
  return `unknown deployment "${name}" in ${dbPath}. Known deployments: ${names.join(', ')}${more}`;
}

/** The jobs of a deployment, newest first (for `re-bot history`). */
export async function jobHistory(repo: Repository, deployment: string, limit = 20): Promise<{ jobs: JobView[]; total: number }> {
  const ids = await repo.jobs.idsOf(deployment);
  const views = await Promise.all(ids.slice(0, limit).map(async (id) => (await repo.status.jobView(id))!));
  return { jobs: views, total: ids.length };
}

export function deploymentExists(repo: Repository, name: string): Promise<boolean> {
  return repo.deployments.exists(name);
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
export async function resolveJobRef(repo: Repository, ref: string, dbPath: string): Promise<JobRef> {
  const exact = await repo.status.jobView(ref);
  if (exact) return { ok: true, job: exact, via: 'id' };
  if (await repo.deployments.exists(ref)) {
    const active = await repo.jobs.activeFor(ref);
    const id = active?.id ?? await repo.jobs.latestId(ref);
    if (!id) return { ok: false, reason: 'no_jobs', message: `deployment "${ref}" has no jobs in ${dbPath}` };
    return { ok: true, job: (await repo.status.jobView(id))!, via: 'deployment' };
  }
  const prefix = ref.startsWith('job_') ? ref : `job_${ref}`;
  if (prefix.length - 4 >= MIN_PREFIX && /^job_[0-9a-f-]+$/i.test(prefix)) {
    const hits = (await repo.jobs.withIdPrefix(prefix.toLowerCase(), 6))
      .filter((h) => h.id.toLowerCase().startsWith(prefix.toLowerCase()));
    if (hits.length === 1) return { ok: true, job: (await repo.status.jobView(hits[0].id))!, via: 'prefix' };
    if (hits.length > 1) {
      return { ok: false, reason: 'ambiguous', message: `"${ref}" matches ${hits.length > 5 ? 'more than 5' : hits.length} jobs: ${hits.slice(0, 5).map((h) => `${h.id} (${h.deployment}, ${h.state})`).join('; ')}. Give more of the job id, or the deployment name` };
    }
  }
  // nearest names help with a mistyped deployment; to a job id every name is equally far: alphabetical
  const { names, total } = await knownDeployments(repo, ref.startsWith('job_') ? '' : ref);
  const known = total ? ` Known deployments: ${names.join(', ')}${total > names.length ? ` (and ${total - names.length} more)` : ''}` : ' No deployments are recorded there yet.';
  return { ok: false, reason: 'unknown', message: `unknown job or deployment "${ref}" in ${dbPath}.${known}` };
}

export const isActive = (state: JobState) => ACTIVE_STATES.includes(state);
