/**
 * The `/re status` reads of src/jobs/status-queries.ts (latest job, its view with steps, approvals and votes,
 * the lock holder, the last good setup) in PostgreSQL, as named prepared statements, for bench/pg-store.ts.
 * Bench-only: the bot has no PostgreSQL StatusQueries yet (docs/ha.md, step 1). Same columns, order and
 * mapping; JSON columns arrive parsed from node-postgres.
 */
import type pg from 'pg';

const q = (name: string, text: string) => (values: unknown[]) => ({ name, text, values });

const ACTIVE = `('queued', 'running', 'waiting_approval')`;
const Q = {
  job: q('status_job', 'select id, deployment, state, attempt, requested_by, origin, created_at, started_at, finished_at, values_hash, chart, error from jobs where id = $1'),
  steps: q('status_steps', 'select step_id, number, title, state, summary, warnings, error, started_at, finished_at, duration_ms, attempt, output from job_steps where job_id = $1 order by number asc'),
  approvals: q('status_approvals', 'select id, job_id, step_id, hash, title, facts, changed_keys, diff_text, state, required, policy, expires_at, rejected_by, reject_reason, review from approvals where job_id = $1 order by requested_at asc'),
  votes: q('status_votes', 'select "user", decision, at from approval_votes where approval_id = $1 order by at asc'),
  latest: q('status_latest', 'select id from jobs where deployment = $1 order by created_at desc, id desc limit 1'),
  lock: q('status_lock', `select id, requested_by, state, created_at, started_at from jobs where deployment = $1 and state in ${ACTIVE} limit 1`),
  lastGood: q('status_last_good', `select id from jobs where deployment = $1 and state = 'succeeded' and plan->>'kind' is null order by finished_at desc, id desc limit 1`),
  deployment: q('status_deployment', 'select 1 from deployments where name = $1'),
};

type Row = Record<string, unknown>;

async function jobView(c: pg.ClientBase | pg.Pool, id: string) {
  const [j] = (await c.query(Q.job([id]))).rows as Row[];
  if (!j) return undefined;
  const steps = (await c.query(Q.steps([id]))).rows as Row[];
  const approvals = [];
  for (const a of (await c.query(Q.approvals([id]))).rows as Row[]) {
    const votes = (await c.query(Q.votes([a.id]))).rows as Array<{ user: string; decision: string; at: string }>;
    approvals.push({ ...a, approvals: votes.filter((v) => v.decision === 'approve').map((v) => ({ user: v.user, at: v.at })) });
  }
  return { ...j, steps, approvals };
}

/** What statusReport reads for one deployment, on PostgreSQL. */
export async function pgStatusReads(c: pg.ClientBase | pg.Pool, deployment: string) {
  const [latest] = (await c.query(Q.latest([deployment]))).rows as Array<{ id: string }>;
  if (!latest && !(await c.query(Q.deployment([deployment]))).rowCount) return undefined;
  const view = latest ? await jobView(c, latest.id) : undefined;
  const [lock] = (await c.query(Q.lock([deployment]))).rows;
  const [good] = (await c.query(Q.lastGood([deployment]))).rows as Array<{ id: string }>;
  const lastGood = good ? (good.id === latest?.id ? view : await jobView(c, good.id)) : undefined;
  return { view, lock, lastGood };
}
