/**
 * The `/re status` answer on PostgreSQL in ONE statement: the reads of src/jobs/status-queries.ts (latest job,
 * its view with steps, approvals and votes, the lock holder, the last good setup, whether the deployment
 * exists) nested with json_agg/json_build_object, so an answer costs one round trip instead of 7–11
 * (BENCHMARKS.md). Mapped to the same JobView / LockHolder shapes, same columns, order and optional fields.
 */
import type { ApprovalReview } from '../../checklist/types.ts';
import type { ApprovalView, JobOrigin, JobState, JobStepView, JobView, StepState } from '../../jobs/types.ts';
import type { StatusAnswer } from '../repo.ts';
import type { PgStore } from './open.ts';

type Queryable = Pick<PgStore['pool'], 'query'>;


/** one job's view as json: a scalar subquery over `jobs j` */
const VIEW_JSON = `json_build_object(
  'id', j.id, 'deployment', j.deployment, 'state', j.state, 'attempt', j.attempt, 'requested_by', j.requested_by, 'origin', j.origin,
  'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at, 'values_hash', j.values_hash, 'chart', j.chart, 'error', j.error,
  'steps', coalesce((select json_agg(json_build_object(
      'step_id', s.step_id, 'number', s.number, 'title', s.title, 'state', s.state, 'summary', s.summary, 'warnings', s.warnings, 'error', s.error,
      'started_at', s.started_at, 'finished_at', s.finished_at, 'duration_ms', s.duration_ms, 'attempt', s.attempt, 'output', s.output
    ) order by s.number) from job_steps s where s.job_id = j.id), '[]'),
  'approvals', coalesce((select json_agg(json_build_object(
      'id', a.id, 'job_id', a.job_id, 'step_id', a.step_id, 'hash', a.hash, 'title', a.title, 'facts', a.facts, 'changed_keys', a.changed_keys,
      'diff_text', a.diff_text, 'state', a.state, 'required', a.required, 'policy', a.policy, 'expires_at', a.expires_at,
      'rejected_by', a.rejected_by, 'reject_reason', a.reject_reason, 'review', a.review,
      'votes', coalesce((select json_agg(json_build_object('user', v."user", 'decision', v.decision, 'at', v.at) order by v.at)
        from approval_votes v where v.approval_id = a.id), '[]')
    ) order by a.requested_at) from approvals a where a.job_id = j.id), '[]')
)`;

const STATUS_SQL = `
with latest as (select id from jobs where deployment = $1 order by created_at desc, id desc limit 1),
good as (select id from jobs where deployment = $1 and state = 'succeeded' and plan->>'kind' is null order by finished_at desc, id desc limit 1)
select
  exists (select 1 from deployments where name = $1) as deployment_exists,
  (select id from latest) as latest_id,
  (select id from good) as good_id,
  (select json_build_object('id', id, 'requested_by', requested_by, 'state', state, 'created_at', created_at, 'started_at', started_at)
     from jobs where deployment = $1 and state in ('queued', 'running', 'waiting_approval') limit 1) as lock,
  (select json_agg(${VIEW_JSON}) from jobs j where j.id in (select id from latest union select id from good)) as views`;

const JOB_VIEW_SQL = `select ${VIEW_JSON} as view from jobs j where j.id = $1`;

const opt = <T>(v: T | null | undefined): T | undefined => (v == null ? undefined : v);
type Json = Record<string, any>;

function approvalView(a: Json): ApprovalView {
  const votes = a.votes as Array<{ user: string; decision: string; at: string }>;
  const review = a.review as ApprovalReview | null;
  return {
    id: a.id, jobId: a.job_id, stepId: a.step_id, hash: a.hash, title: a.title, state: a.state,
    required: a.required, approvals: votes.filter((v) => v.decision === 'approve').map((v) => ({ user: v.user, at: v.at })),
    rejectedBy: opt(a.rejected_by), rejectReason: opt(a.reject_reason), approvers: (a.policy as { approvers?: string[] } | null)?.approvers ?? [],
    expiresAt: a.expires_at, facts: a.facts, changedKeys: a.changed_keys, diffText: a.diff_text, ...(review ? { review } : {}),
  };
}

function jobView(j: Json): JobView {
  const steps: JobStepView[] = (j.steps as Json[]).map((s) => ({
    stepId: s.step_id, number: s.number, title: s.title, state: s.state as StepState, summary: opt(s.summary),
    warnings: opt(s.warnings as string[] | null), error: opt(s.error), startedAt: opt(s.started_at), finishedAt: opt(s.finished_at),
    durationMs: s.duration_ms == null ? undefined : Number(s.duration_ms), attempt: s.attempt, output: opt(s.output as Record<string, unknown> | null),
  }));
  return {
    id: j.id, deployment: j.deployment, state: j.state as JobState, attempt: j.attempt, requestedBy: j.requested_by,
    origin: j.origin as JobOrigin, createdAt: j.created_at, startedAt: opt(j.started_at), finishedAt: opt(j.finished_at),
    valuesHash: j.values_hash, chart: j.chart, error: opt(j.error), steps, approvals: (j.approvals as Json[]).map(approvalView),
  };
}

/** StatusQueries.jobView, one statement */
export async function jobViewPg(db: Queryable, jobId: string): Promise<JobView | undefined> {
  const r = (await db.query({ name: 'status_job_view', text: JOB_VIEW_SQL, values: [jobId] })).rows[0] as { view: Json } | undefined;
  return r && jobView(r.view);
}

/** Everything the status answer reads about `deployment`, in one statement. */
export async function statusAnswerPg(db: Queryable, deployment: string): Promise<StatusAnswer> {
  const r = (await db.query({ name: 'status_answer', text: STATUS_SQL, values: [deployment] })).rows[0] as {
    deployment_exists: boolean; latest_id: string | null; good_id: string | null; lock: Json | null; views: Json[] | null;
  };
  const views = new Map((r.views ?? []).map((v) => [v.id as string, jobView(v)]));
  const view = r.latest_id ? views.get(r.latest_id) : undefined;
  return {
    deploymentExists: r.deployment_exists,
    ...(r.latest_id ? { latestJobId: r.latest_id, view } : {}),
    ...(r.lock ? { lock: { id: r.lock.id, requestedBy: r.lock.requested_by, state: r.lock.state, createdAt: r.lock.created_at, startedAt: r.lock.started_at } } : {}),
    ...(r.good_id ? { lastSucceededJobId: r.good_id, lastGood: r.good_id === r.latest_id ? view : views.get(r.good_id) } : {}),
  };
}
