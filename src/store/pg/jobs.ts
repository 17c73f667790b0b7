/**
 * The job queue's writes on PostgreSQL, mirroring src/jobs/queue.ts (submit, complete, fail, suspend, requeue,
 * cancel, retry) and the step writes of src/jobs/runner.ts, each async, for the repository step (docs/ha.md).
 * Same rows, same state rules, same errors: the deployment lock's violation becomes the DeploymentLockedError the
 * SQLite path throws, naming the deployment and the holding job.
 *
 * Transactions run at READ COMMITTED; the partial unique index `jobs_one_active_per_deployment` serialises
 * submissions, and audit appends inside a transaction hold `AUDIT_LOCK` to its end (src/store/pg/audit.ts).
 *
 * Step writes of a running step (`writeStepLeased`, `saveCheckpointLeased`) are guarded by the job lease: they
 * change nothing unless `owner` still holds an unexpired lease (by the database clock) on a running,
 * not-cancelled job, and return false then, so a replica that lost its lease cannot overwrite the new owner's
 * checkpoint.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { redactDeep } from '../../redact.ts';
import type { Plan } from '../../spec/plan.ts';
import { DeploymentLockedError, type Actor, type JobState, type SubmitInput } from '../../jobs/types.ts';
import { appendAuditPg } from './audit.ts';
import type { PgDb } from './open.ts';
import { approvals, deployments, jobs, jobSteps } from './schema.ts';
import { DEPLOYMENT_LOCK_CONSTRAINT, isUniqueViolation } from './votes.ts';

export type PgTx = Parameters<Parameters<PgDb['transaction']>[0]>[0];
/** the pool or an open transaction */
export type PgExec = PgDb | PgTx;
export type PgJobRow = typeof jobs.$inferSelect;
export type PgStepRow = typeof jobSteps.$inferSelect;
export type PgAuditSubject = Pick<PgJobRow, 'id' | 'deployment' | 'valuesHash'>;
type AuditExtra = { decision?: string; result?: string; details?: Record<string, unknown> };
/** As AuditFn of src/jobs/queue.ts, async, and given the transaction the audited write runs in. */
export type PgAuditFn = (db: PgExec, j: PgAuditSubject, actor: string, action: string, extra?: AuditExtra) => Promise<void>;

const ACTIVE_STATES: JobState[] = ['queued', 'running', 'waiting_approval'];

/** The engine's audit function (src/jobs/engine.ts) on PostgreSQL: the row is appended in `db`'s transaction. */
export const pgAudit = (now: () => number = Date.now): PgAuditFn => async (db, j, actor, action, extra = {}) => {
  // a transaction is a drizzle database too: appendAuditPg's own transaction becomes a savepoint of it
  await appendAuditPg(db as PgDb, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash, ...extra }, new Date(now()));
};

export async function getJobPg(db: PgExec, id: string): Promise<PgJobRow | undefined> {
  const [j] = await db.select().from(jobs).where(eq(jobs.id, id));
  return j;
}

export async function activeJobForPg(db: PgExec, deployment: string): Promise<PgJobRow | undefined> {
  const [j] = await db.select().from(jobs).where(and(eq(jobs.deployment, deployment), inArray(jobs.state, ACTIVE_STATES))).limit(1);
  return j;
}

const lockHolder = (j: PgJobRow) => ({ jobId: j.id, requestedBy: j.requestedBy, since: j.startedAt ?? j.createdAt, state: j.state as JobState });

/**
 * Runs `write` inside a savepoint of `tx`; the lock's violation becomes DeploymentLockedError with the holder (read
 * outside the failed savepoint, so the transaction stays usable for the read and is then rolled back by the throw).
 */
async function underDeploymentLock<T>(db: PgDb, tx: PgTx, deployment: string, write: (t: PgTx) => Promise<T>): Promise<T> {
  try {
    return await tx.transaction(write);
  } catch (err) {
    if (!isUniqueViolation(err, DEPLOYMENT_LOCK_CONSTRAINT)) throw err;
    // read committed: the holder's row is visible (it committed before our insert conflicted); read it on the pool
    const holder = await activeJobForPg(db, deployment);
    throw new DeploymentLockedError(deployment, holder ? lockHolder(holder) : { jobId: 'unknown', requestedBy: 'unknown', since: new Date().toISOString(), state: 'queued' });
  }
}

/** As submitJob: the deployment's last spec, the queued job and its steps, and the audit row, in one transaction. */
export async function submitJobPg(db: PgDb, input: SubmitInput & { id: string; plan: Plan; at: string }, audit: PgAuditFn): Promise<void> {
  const { id, plan, at, spec } = input;
  const deployment = spec.deployment.name;
  await db.transaction(async (tx) => {
    await tx.insert(deployments).values({ name: deployment, astroId: spec.deployment.id, lastSpec: spec, updatedAt: at })
      .onConflictDoUpdate({ target: deployments.name, set: { astroId: spec.deployment.id, lastSpec: spec, updatedAt: at } });
    await underDeploymentLock(db, tx, deployment, (t) => t.insert(jobs).values({
      id, deployment, state: 'queued', attempt: 1, requestedBy: input.requestedBy.id, origin: input.origin, spec,
      plan, valuesHash: plan.valuesHash, chart: plan.chart, createdAt: at, updatedAt: at,
    }));
    if (plan.steps.length) {
      await tx.insert(jobSteps).values(plan.steps.map((s) => ({
        jobId: id, stepId: s.id, number: s.number, title: s.title, execOrder: s.order,
        state: s.applies ? 'pending' : 'skipped', summary: s.applies ? null : (s.skipReason ?? 'not applicable'),
      })));
    }
    await audit(tx, { id, deployment, valuesHash: plan.valuesHash }, input.requestedBy.id, 'job.submitted', { details: { origin: input.origin.kind, chart: plan.chart } });
  });
}

export async function completeJobPg(db: PgExec, jobId: string, at: string): Promise<void> {
  await db.update(jobs).set({ state: 'succeeded', finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId));
}

export async function failJobPg(db: PgExec, jobId: string, error: string, at: string): Promise<void> {
  await db.update(jobs).set({ state: 'failed', error, finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId));
}

/** The job waits for a decision: no lease, nobody runs it until `requeueJobPg`. */
export async function suspendJobPg(db: PgExec, jobId: string, at: string): Promise<void> {
  await db.update(jobs).set({ state: 'waiting_approval', leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId));
}

/** An approval was granted: the job goes back to the queue. */
export async function requeueJobPg(db: PgExec, jobId: string, at: string): Promise<void> {
  await db.update(jobs).set({ state: 'queued', updatedAt: at }).where(eq(jobs.id, jobId));
}

/** As cancelJob: the job, its running/waiting steps and its pending approvals, and the audit row, in one transaction. */
export async function cancelJobPg(db: PgDb, j: PgJobRow, by: Actor, at: string, audit: PgAuditFn): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.update(jobs).set({ state: 'cancelled', cancelRequested: true, error: `cancelled by ${by.id}`, finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at })
      .where(eq(jobs.id, j.id));
    await tx.update(jobSteps).set({ state: 'cancelled', finishedAt: at })
      .where(and(eq(jobSteps.jobId, j.id), inArray(jobSteps.state, ['running', 'waiting_approval'])));
    await tx.update(approvals).set({ state: 'superseded', decidedAt: at }).where(and(eq(approvals.jobId, j.id), eq(approvals.state, 'pending')));
    await audit(tx, j, by.id, 'job.cancelled', { result: 'cancelled' });
  });
}

/** As retryJob: a new attempt from the unfinished steps; DeploymentLockedError when another job holds the deployment. */
export async function retryJobPg(db: PgDb, j: PgJobRow, by: Actor, at: string, audit: PgAuditFn): Promise<void> {
  await db.transaction(async (tx) => {
    await underDeploymentLock(db, tx, j.deployment, (t) => t.update(jobs)
      .set({ state: 'queued', attempt: j.attempt + 1, error: null, cancelRequested: false, finishedAt: null, leaseOwner: null, leaseExpiresAt: null, updatedAt: at })
      .where(eq(jobs.id, j.id)));
    await tx.update(jobSteps).set({ state: 'pending', error: null })
      .where(and(eq(jobSteps.jobId, j.id), inArray(jobSteps.state, ['failed', 'cancelled', 'running', 'waiting_approval'])));
    await audit(tx, j, by.id, 'job.retried', { details: { attempt: j.attempt + 1 } });
  });
}

export async function stepsOfPg(db: PgExec, jobId: string): Promise<PgStepRow[]> {
  return db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(jobSteps.execOrder);
}

/** As updateStep of src/jobs/runner.ts, unguarded: for writes made outside a running step (approvals, cancel). */
export async function updateStepPg(db: PgExec, jobId: string, stepId: string, values: Partial<PgStepRow>): Promise<void> {
  await db.update(jobSteps).set(values).where(and(eq(jobSteps.jobId, jobId), eq(jobSteps.stepId, stepId)));
}

const NOW_MS = sql`(extract(epoch from statement_timestamp()) * 1000)::bigint`;

/**
 * `owner` holds an unexpired lease on the running, not-cancelled job, checked in the writing statement itself.
 * `for share` makes a write and a takeover of the job (claimNextJob's UPDATE, a cancel) wait for each other:
 * a write that started before another replica claimed the job commits before the claim, so the new owner reads
 * it; one that started after re-checks the claimed row, sees another owner and writes nothing.
 */
const leaseHeld = (jobId: string, owner: string) => sql`exists (select 1 from jobs
  where jobs.id = ${jobId} and jobs.lease_owner = ${owner} and jobs.state = 'running'
    and jobs.cancel_requested = false and jobs.lease_expires_at > ${NOW_MS} for share)`;

/**
 * A running step's write (started, finished, failed, checkpoint), applied only while `owner` holds the job's
 * lease: false, and nothing written, when the lease expired, was taken by another replica, or the job was
 * cancelled or finished. The caller stops the step then, as when its heartbeat fails.
 */
export async function writeStepLeased(db: PgExec, o: { jobId: string; stepId: string; owner: string }, values: Partial<PgStepRow>): Promise<boolean> {
  const r = await db.update(jobSteps).set(values)
    .where(and(eq(jobSteps.jobId, o.jobId), eq(jobSteps.stepId, o.stepId), leaseHeld(o.jobId, o.owner)))
    .returning({ stepId: jobSteps.stepId });
  return r.length === 1;
}

/** The step's whole checkpoint object (redacted, as the runner writes it), under the lease; false when it was lost. */
export async function saveCheckpointLeased(db: PgExec, o: { jobId: string; stepId: string; owner: string }, checkpoint: Record<string, unknown>): Promise<boolean> {
  return writeStepLeased(db, o, { checkpoint: redactDeep(checkpoint) });
}
