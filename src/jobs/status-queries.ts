/**
 * The reads behind `/re status` and every JobView (progress rendering, the engine's events), as SQLite
 * statements prepared once per DB handle: drizzle's query builder rebuilds and re-prepares its SQL on every
 * call, which was ≈ 35 % of a status answer's time (BENCHMARKS.md, issue 15). Same columns, order and
 * mapping as the drizzle queries they replace (test/jobs/status-queries.test.ts compares them).
 *
 * Every dialect-specific line of the status path is in this file: a second store (PostgreSQL) implements
 * `StatusQueries` with its own SQL.
 */
import type Database from 'better-sqlite3';
import type { Store } from '../store/db.ts';
import type { ApprovalReview } from '../checklist/types.ts';
import type { ApprovalView, JobOrigin, JobState, JobStepView, JobView, StepState } from './types.ts';

export interface LockHolder {
  id: string;
  requestedBy: string;
  state: string;
  createdAt: string;
  startedAt: string | null;
}

export interface StatusQueries {
  jobView(jobId: string): JobView | undefined;
  latestJobId(deployment: string): string | undefined;
  /** the deployment's active job (at most one: the lock), only what the status answer shows */
  lockHolder(deployment: string): LockHolder | undefined;
  /** the deployment's most recently finished succeeded setup job (other kinds, such as rotate-token, change no release) */
  lastSucceededJobId(deployment: string): string | undefined;
  deploymentExists(name: string): boolean;
}

const ACTIVE_SQL = `('queued', 'running', 'waiting_approval')`;

const opt = <T>(v: T | null | undefined): T | undefined => (v == null ? undefined : v);
const json = (v: string | null): unknown => (v == null ? null : JSON.parse(v));

type JobRow = {
  id: string; deployment: string; state: string; attempt: number; requested_by: string; origin: string; created_at: string;
  started_at: string | null; finished_at: string | null; values_hash: string; chart: string; error: string | null;
};
type StepRow = {
  step_id: string; number: number; title: string; state: string; summary: string | null; warnings: string | null; error: string | null;
  started_at: string | null; finished_at: string | null; duration_ms: number | null; attempt: number; output: string | null;
};
type ApprovalRow = {
  id: string; job_id: string; step_id: string; hash: string; title: string; facts: string; changed_keys: string; diff_text: string; state: string;
  required: number; policy: string; expires_at: string; rejected_by: string | null; reject_reason: string | null; review: string | null;
};
type VoteRow = { user: string; decision: string; at: string };

function prepare(db: Database.Database) {
  return {
    // not spec/plan: large JSON that no view shows
    job: db.prepare(`SELECT id, deployment, state, attempt, requested_by, origin, created_at, started_at, finished_at, values_hash, chart, error FROM jobs WHERE id = ?`),
    steps: db.prepare(`SELECT step_id, number, title, state, summary, warnings, error, started_at, finished_at, duration_ms, attempt, output FROM job_steps WHERE job_id = ? ORDER BY number ASC`),
    approvals: db.prepare(`SELECT id, job_id, step_id, hash, title, facts, changed_keys, diff_text, state, required, policy, expires_at, rejected_by, reject_reason, review FROM approvals WHERE job_id = ? ORDER BY requested_at ASC`),
    votes: db.prepare(`SELECT "user", decision, at FROM approval_votes WHERE approval_id = ? ORDER BY at ASC`),
    latest: db.prepare(`SELECT id FROM jobs WHERE deployment = ? ORDER BY created_at DESC, id DESC LIMIT 1`).pluck(),
    lock: db.prepare(`SELECT id, requested_by, state, created_at, started_at FROM jobs WHERE deployment = ? AND state IN ${ACTIVE_SQL} LIMIT 1`),
    lastGood: db.prepare(`SELECT id FROM jobs WHERE deployment = ? AND state = 'succeeded' AND json_extract(plan, '$.kind') IS NULL ORDER BY finished_at DESC, id DESC LIMIT 1`).pluck(),
    deployment: db.prepare(`SELECT 1 FROM deployments WHERE name = ?`).pluck(),
  };
}

function approvalView(q: ReturnType<typeof prepare>, a: ApprovalRow): ApprovalView {
  const votes = q.votes.all(a.id) as VoteRow[];
  const review = json(a.review) as ApprovalReview | null;
  return {
    id: a.id, jobId: a.job_id, stepId: a.step_id, hash: a.hash, title: a.title, state: a.state as ApprovalView['state'],
    required: a.required, approvals: votes.filter((v) => v.decision === 'approve').map((v) => ({ user: v.user, at: v.at })),
    rejectedBy: opt(a.rejected_by), rejectReason: opt(a.reject_reason), approvers: ((json(a.policy) as { approvers?: string[] } | null)?.approvers ?? []),
    expiresAt: a.expires_at, facts: json(a.facts) as Record<string, string>,
    changedKeys: json(a.changed_keys) as string[], diffText: a.diff_text, ...(review ? { review } : {}),
  };
}

function create(db: Database.Database): StatusQueries {
  const q = prepare(db);
  return {
    jobView(jobId) {
      const j = q.job.get(jobId) as JobRow | undefined;
      if (!j) return undefined;
      const steps: JobStepView[] = (q.steps.all(jobId) as StepRow[]).map((s) => ({
        stepId: s.step_id, number: s.number, title: s.title, state: s.state as StepState, summary: opt(s.summary),
        warnings: opt(json(s.warnings) as string[] | null), error: opt(s.error), startedAt: opt(s.started_at), finishedAt: opt(s.finished_at),
        durationMs: opt(s.duration_ms), attempt: s.attempt, output: opt(json(s.output) as Record<string, unknown> | null),
      }));
      const approvals = (q.approvals.all(jobId) as ApprovalRow[]).map((a) => approvalView(q, a));
      return {
        id: j.id, deployment: j.deployment, state: j.state as JobState, attempt: j.attempt, requestedBy: j.requested_by,
        origin: json(j.origin) as JobOrigin, createdAt: j.created_at, startedAt: opt(j.started_at), finishedAt: opt(j.finished_at),
        valuesHash: j.values_hash, chart: j.chart, error: opt(j.error), steps, approvals,
      };
    },
    latestJobId: (deployment) => q.latest.get(deployment) as string | undefined,
    lockHolder(deployment) {
      const r = q.lock.get(deployment) as { id: string; requested_by: string; state: string; created_at: string; started_at: string | null } | undefined;
      return r && { id: r.id, requestedBy: r.requested_by, state: r.state, createdAt: r.created_at, startedAt: r.started_at };
    },
    lastSucceededJobId: (deployment) => q.lastGood.get(deployment) as string | undefined,
    deploymentExists: (name) => q.deployment.get(name) !== undefined,
  };
}

const cache = new WeakMap<Database.Database, StatusQueries>();

/** The store's prepared status queries (prepared on first use, kept as long as the DB handle). */
export function statusQueries(store: Pick<Store, 'sqlite'>): StatusQueries {
  let q = cache.get(store.sqlite);
  if (!q) cache.set(store.sqlite, (q = create(store.sqlite)));
  return q;
}
