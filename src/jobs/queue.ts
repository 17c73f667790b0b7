/**
 * The job queue: one named function per SQL operation on the `jobs` table (as graphile-worker's src/sql/*).
 * Each is one statement or one immediate transaction, so a kill -9 between any two leaves a consistent row.
 *
 * The per-deployment lock is the partial unique index `jobs_one_active_per_deployment` (src/store/schema.ts):
 * at most one queued/running/waiting_approval job per deployment. `submitJob` and `retryJob` turn its
 * violation into a DeploymentLockedError naming the job that holds the lock.
 */
import { and, asc, eq, inArray, isNotNull, isNull, lte, notInArray, or, sql } from 'drizzle-orm';
import type { Plan } from '../spec/plan.ts';
import type { Store } from '../store/db.ts';
import { approvals, deployments, jobs, jobSteps } from '../store/schema.ts';
import { DeploymentLockedError, type Actor, type JobState, type SubmitInput } from './types.ts';
import { activeJobFor } from './views.ts';

export type JobRow = typeof jobs.$inferSelect;
export type AuditSubject = Pick<JobRow, 'id' | 'deployment' | 'valuesHash'>;
export type AuditFn = (j: AuditSubject, actor: string, action: string, extra?: { decision?: string; result?: string; details?: Record<string, unknown> }) => void;

export const getJob = (store: Store, id: string): JobRow | undefined => store.db.select().from(jobs).where(eq(jobs.id, id)).get();

export const lockHolder = (j: JobRow) => ({ jobId: j.id, requestedBy: j.requestedBy, since: j.startedAt ?? j.createdAt, state: j.state as JobState });

/** True for the violation of `jobs_one_active_per_deployment` (SQLite names the index's column). */
function isDeploymentLockViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && /\bjobs\.deployment\b/.test(e.message ?? '');
}

/** Runs `write`; a violation of the one-active-job rule becomes DeploymentLockedError with the holder's details. */
function underDeploymentLock<T>(store: Store, deployment: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (!isDeploymentLockViolation(err)) throw err;
    const holder = activeJobFor(store, deployment);
    // the holder went away between the failed statement and this read: still locked as far as this write knows
    throw new DeploymentLockedError(deployment, holder ? lockHolder(holder) : { jobId: 'unknown', requestedBy: 'unknown', since: new Date().toISOString(), state: 'queued' });
  }
}

/** Inserts a queued job, its steps and the deployment's last spec; DeploymentLockedError when the deployment has an active job. */
export function submitJob(store: Store, input: SubmitInput & { id: string; plan: Plan; at: string }, audit: AuditFn): void {
  const { db } = store;
  const { id, plan, at, spec } = input;
  const deployment = spec.deployment.name;
  store.sqlite.transaction(() => {
    db.insert(deployments).values({ name: deployment, astroId: spec.deployment.id, lastSpec: spec, updatedAt: at })
      .onConflictDoUpdate({ target: deployments.name, set: { astroId: spec.deployment.id, lastSpec: spec, updatedAt: at } }).run();
    underDeploymentLock(store, deployment, () => db.insert(jobs).values({
      id, deployment, state: 'queued', attempt: 1, requestedBy: input.requestedBy.id, origin: input.origin, spec,
      plan, valuesHash: plan.valuesHash, chart: plan.chart, createdAt: at, updatedAt: at,
    }).run());
    for (const s of plan.steps) {
      db.insert(jobSteps).values({
        jobId: id, stepId: s.id, number: s.number, title: s.title, execOrder: s.order,
        state: s.applies ? 'pending' : 'skipped', summary: s.applies ? null : (s.skipReason ?? 'not applicable'),
      }).run();
    }
    audit({ id, deployment, valuesHash: plan.valuesHash }, input.requestedBy.id, 'job.submitted', { details: { origin: input.origin.kind, chart: plan.chart } });
  }).immediate();
}

/**
 * Takes the oldest queued job whose lease is free or expired: one UPDATE … WHERE id = (SELECT … ORDER BY
 * created_at LIMIT 1) RETURNING, so two workers never claim the same job. `exclude`: jobs this process is
 * still winding down (a cancelled step that has not returned yet).
 */
export function claimNext(store: Store, o: { owner: string; now: number; leaseMs: number; at: string; exclude?: string[] }): string | undefined {
  const { db } = store;
  const next = db.select({ id: jobs.id }).from(jobs)
    .where(and(
      eq(jobs.state, 'queued'),
      or(isNull(jobs.leaseOwner), isNull(jobs.leaseExpiresAt), lte(jobs.leaseExpiresAt, o.now)),
      o.exclude?.length ? notInArray(jobs.id, o.exclude) : undefined,
    ))
    .orderBy(asc(jobs.createdAt)).limit(1);
  return store.sqlite.transaction(() => db.update(jobs)
    .set({ state: 'running', leaseOwner: o.owner, leaseExpiresAt: o.now + o.leaseMs, startedAt: sql`coalesce(${jobs.startedAt}, ${o.at})` /* the first attempt's start */, updatedAt: o.at })
    .where(and(inArray(jobs.id, next), eq(jobs.state, 'queued')))
    .returning({ id: jobs.id }).get()?.id).immediate();
}


/** Extends the lease while `owner` still runs the job; false when it lost it (cancelled, reclaimed, finished). */
export function renewLease(store: Store, jobId: string, owner: string, expiresAt: number): boolean {
  return store.db.update(jobs).set({ leaseExpiresAt: expiresAt })
    .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, owner), eq(jobs.state, 'running'), eq(jobs.cancelRequested, false)))
    .returning({ id: jobs.id }).get() !== undefined;
}

/** Leased queued/running jobs: candidates for `requeueExpired`. */
export function leasedJobs(store: Store): Array<Pick<JobRow, 'id' | 'leaseOwner' | 'leaseExpiresAt'>> {
  return store.db.select({ id: jobs.id, leaseOwner: jobs.leaseOwner, leaseExpiresAt: jobs.leaseExpiresAt }).from(jobs)
    .where(and(isNotNull(jobs.leaseOwner), inArray(jobs.state, ['running', 'queued']))).all();
}

/** Puts a job whose lease expired (or whose owner died) back in the queue, unless another owner took it meanwhile. */
export function requeueExpired(store: Store, jobId: string, previousOwner: string, at: string): boolean {
  return store.db.update(jobs).set({ state: 'queued', leaseOwner: null, leaseExpiresAt: null, updatedAt: at })
    .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, previousOwner))).run().changes > 0;
}

export function completeJob(store: Store, jobId: string, at: string): void {
  store.db.update(jobs).set({ state: 'succeeded', finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId)).run();
}

export function failJob(store: Store, jobId: string, error: string, at: string): void {
  store.db.update(jobs).set({ state: 'failed', error, finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId)).run();
}

/** The job waits for a decision: no lease, nobody runs it until `requeueJob`. */
export function suspendJob(store: Store, jobId: string, at: string): void {
  store.db.update(jobs).set({ state: 'waiting_approval', leaseOwner: null, leaseExpiresAt: null, updatedAt: at }).where(eq(jobs.id, jobId)).run();
}

/** An approval was granted: the job goes back to the queue. */
export function requeueJob(store: Store, jobId: string, at: string): void {
  store.db.update(jobs).set({ state: 'queued', updatedAt: at }).where(eq(jobs.id, jobId)).run();
}

/** Cancels the job, its running/waiting steps and its pending approvals; releases the deployment lock. */
export function cancelJob(store: Store, j: JobRow, by: Actor, at: string, audit: AuditFn): void {
  const { db } = store;
  store.sqlite.transaction(() => {
    db.update(jobs).set({ state: 'cancelled', cancelRequested: true, error: `cancelled by ${by.id}`, finishedAt: at, leaseOwner: null, leaseExpiresAt: null, updatedAt: at })
      .where(eq(jobs.id, j.id)).run();
    db.update(jobSteps).set({ state: 'cancelled', finishedAt: at })
      .where(and(eq(jobSteps.jobId, j.id), inArray(jobSteps.state, ['running', 'waiting_approval']))).run();
    db.update(approvals).set({ state: 'superseded', decidedAt: at }).where(and(eq(approvals.jobId, j.id), eq(approvals.state, 'pending'))).run();
    audit(j, by.id, 'job.cancelled', { result: 'cancelled' });
  }).immediate();
}

/** A new attempt of a failed or cancelled job, from its unfinished steps; DeploymentLockedError when another job holds the deployment. */
export function retryJob(store: Store, j: JobRow, by: Actor, at: string, audit: AuditFn): void {
  const { db } = store;
  store.sqlite.transaction(() => {
    underDeploymentLock(store, j.deployment, () => db.update(jobs)
      .set({ state: 'queued', attempt: j.attempt + 1, error: null, cancelRequested: false, finishedAt: null, leaseOwner: null, leaseExpiresAt: null, updatedAt: at })
      .where(eq(jobs.id, j.id)).run());
    db.update(jobSteps).set({ state: 'pending', error: null })
      .where(and(eq(jobSteps.jobId, j.id), inArray(jobSteps.state, ['failed', 'cancelled', 'running', 'waiting_approval']))).run();
    audit(j, by.id, 'job.retried', { details: { attempt: j.attempt + 1 } });
  }).immediate();
}

/** On a clean stop: this owner's running jobs may be resumed by anyone at once. */
export function releaseLeases(store: Store, owner: string): void {
  store.db.update(jobs).set({ leaseExpiresAt: 0 }).where(and(eq(jobs.leaseOwner, owner), eq(jobs.state, 'running'))).run();
}
