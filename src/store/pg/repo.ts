/**
 * The Repository of src/store/repo.ts on PostgreSQL: the functions of this folder behind the same named
 * operations as the SQLite side. Lease deadlines and claim times come from the database clock (claim.ts, jobs.ts);
 * the repository clock stamps row times and audit rows, as on SQLite.
 */
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { RepoClock, Repository, RepositoryOptions } from '../repo.ts';
import { agentTokenRowsPg, liveAgentTokenPg, markAgentTokenDeletedPg, recordAgentTokenPg } from './agent-tokens.ts';
import { decideApprovalPg, expireApprovalsPg, requestApprovalPg } from './approvals.ts';
import { appendAuditPg, verifyAuditChainPg } from './audit.ts';
import { claimNextJob, releaseChannelLease, releaseJobLeases, renewChannelLease, renewJobLease, takeDueChannels } from './claim.ts';
import {
  activeJobForPg, cancelJobPg, completeJobPg, failJobPg, getJobPg, pgAudit, requeueJobPg, retryJobPg, stepsOfPg, submitJobPg, suspendJobPg,
  updateStepPg, writeStepLeased,
} from './jobs.ts';
import { openPgStore, parseDatabaseUrl, type PgStore, type PgStoreOptions } from './open.ts';
import { PgOutboxStore } from './outbox.ts';
import { approvals, auditEvents, deployments, jobs, jobSteps } from './schema.ts';
import { createPgSecretBox, pgSecretKey, sweepSealedSecretsPg } from './secrets.ts';
import { jobViewPg, statusAnswerPg } from './status.ts';
import { pgWizardSessions } from './wizard-sessions.ts';

/** `DONE_STEP` of src/jobs/runner.ts: a step in one of these states is finished */
const DONE_STEP = ['succeeded', 'warned', 'skipped', 'prepared'];

/**
 * Opens PostgreSQL at `url` as a Repository. The URL's shape and the sealed-secret key (RE_BOT_SECRET_KEY, required
 * here) are checked first, so either is refused by name before any connection is made.
 */
export async function openPgRepository(url: string, opts: RepositoryOptions & { pg?: PgStoreOptions } = {}): Promise<Repository> {
  parseDatabaseUrl(url);
  const key = opts.secretKey ?? pgSecretKey();
  const store = await openPgStore(url, opts.pg);
  return pgRepository(store, { ...opts, secretKey: key }, { closeStore: true });
}

/** An open PgStore as a Repository; `close()` ends its pool only with `closeStore`. */
export function pgRepository(store: PgStore, opts: RepositoryOptions = {}, o: { closeStore?: boolean } = {}): Repository {
  const { db, pool } = store;
  const clock: RepoClock = opts.clock ?? { now: Date.now };
  const iso = () => new Date(clock.now()).toISOString();
  const audit = pgAudit(() => clock.now());
  const approvalClock = { now: () => clock.now(), iso, audit };
  let box: ReturnType<typeof createPgSecretBox> | undefined;
  const secretBox = () => (box ??= createPgSecretBox(db, opts.secretKey ?? pgSecretKey()));
  const outbox = new PgOutboxStore(pool);
  const getApproval = async (id: string) => (await db.select().from(approvals).where(eq(approvals.id, id)))[0];

  return {
    dialect: 'postgres',
    location: store.url,
    jobs: {
      get: (id) => getJobPg(db, id),
      activeFor: (deployment) => activeJobForPg(db, deployment),
      latestId: async (deployment) => (await db.select({ id: jobs.id }).from(jobs).where(eq(jobs.deployment, deployment)).orderBy(desc(jobs.createdAt), desc(jobs.id)).limit(1))[0]?.id,
      idsOf: async (deployment) => (await db.select({ id: jobs.id }).from(jobs).where(eq(jobs.deployment, deployment)).orderBy(desc(jobs.createdAt), desc(jobs.id))).map((r) => r.id),
      withIdPrefix: async (prefix, limit) => db.select({ id: jobs.id, deployment: jobs.deployment, state: jobs.state }).from(jobs)
        .where(sql`starts_with(lower(${jobs.id}), ${prefix.toLowerCase()})`).orderBy(desc(jobs.createdAt)).limit(limit),
      submit: (input) => submitJobPg(db, { ...input, at: iso() }, audit),
      claimNext: async (c) => (await claimNextJob(db, c))?.id,
      renewLease: (r) => renewJobLease(db, r),
      leased: () => db.select({ id: jobs.id, leaseOwner: jobs.leaseOwner, leaseExpiresAt: jobs.leaseExpiresAt }).from(jobs)
        .where(and(sql`${jobs.leaseOwner} is not null`, inArray(jobs.state, ['running', 'queued']))),
      requeueExpired: async (jobId, previousOwner) => (await db.update(jobs).set({ state: 'queued', leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() })
        .where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, previousOwner))).returning({ id: jobs.id })).length > 0,
      releaseLeases: async (owner) => void (await releaseJobLeases(db, owner)),
      complete: (jobId) => completeJobPg(db, jobId, iso()),
      fail: (jobId, error) => failJobPg(db, jobId, error, iso()),
      suspend: (jobId) => suspendJobPg(db, jobId, iso()),
      requeue: (jobId) => requeueJobPg(db, jobId, iso()),
      cancel: (job, by) => cancelJobPg(db, job, by, iso(), audit),
      retry: (job, by) => retryJobPg(db, job, by, iso(), audit),
    },
    steps: {
      list: (jobId) => stepsOfPg(db, jobId),
      get: async (jobId, stepId) => (await stepsOfPg(db, jobId)).find((s) => s.stepId === stepId),
      next: async (jobId) => (await stepsOfPg(db, jobId)).find((s) => !DONE_STEP.includes(s.state)),
      update: (jobId, stepId, values) => updateStepPg(db, jobId, stepId, values),
      writeLeased: (w, values) => writeStepLeased(db, w, values),
      finish: (w, f) => db.transaction(async (tx): Promise<string[] | false> => {
        if (!(await writeStepLeased(tx, { jobId: w.job.id, stepId: w.stepId, owner: w.owner }, f.values))) return false;
        await audit(tx, w.job, 'system', f.audit.action, f.audit.extra);
        const prepared = await tx.select().from(jobSteps).where(and(eq(jobSteps.jobId, w.job.id), eq(jobSteps.state, 'prepared'))).orderBy(asc(jobSteps.execOrder));
        const promoted = f.promote?.(prepared) ?? [];
        for (const p of promoted) {
          await updateStepPg(tx, w.job.id, p.stepId, { state: p.state });
          await audit(tx, w.job, 'system', p.audit.action, p.audit.extra);
        }
        return promoted.map((p) => p.stepId);
      }),
    },
    approvals: {
      get: getApproval,
      view: async (id) => {
        const a = await getApproval(id);
        return a && (await jobViewPg(pool, a.jobId))?.approvals.find((v) => v.id === id);
      },
      request: (job, stepId, req, policy) => requestApprovalPg(db, job, stepId, req, { ...approvalClock, policy }),
      decide: (approvalId, input) => decideApprovalPg(db, approvalId, input, approvalClock),
      expireDue: () => expireApprovalsPg(db, approvalClock),
    },
    audit: {
      append: (e, at) => appendAuditPg(db, e, at ?? new Date(clock.now())),
      ofJob: (j, actor, action, extra) => audit(db, j, actor, action, extra),
      verify: () => verifyAuditChainPg(db),
      export: async (filter = {}) => db.select().from(auditEvents)
        .where(filter.jobId ? eq(auditEvents.jobId, filter.jobId) : undefined).orderBy(asc(auditEvents.seq)),
    },
    secrets: {
      seal: (value, purpose) => secretBox().sealSecret(value, purpose),
      open: (id) => secretBox().openSecret(id),
      erase: (id) => secretBox().eraseSecret(id),
      sweep: (ttlMs) => sweepSealedSecretsPg(db, ttlMs, clock.now()),
    },
    outbox: {
      upsert: (e) => outbox.upsert(e, clock.now()),
      get: (key) => outbox.get(key),
      head: (key) => outbox.head(key),
      due: (now, owner) => outbox.due(now, owner),
      markSending: (id, owner) => outbox.markSending(id, owner),
      markSent: (id, ts, owner) => outbox.markSent(id, ts, owner),
      markRetry: (id, notBefore, error, owner, refund, verify) => outbox.markRetry(id, notBefore, error, owner, refund, verify),
      markFailed: (id, error, owner) => outbox.markFailed(id, error, owner),
      markUnknown: (id, error, owner) => outbox.markUnknown(id, error, owner),
      dropPending: (id, error) => outbox.dropPending(id, error),
      recoverInFlight: (owner, channels) => outbox.recoverInFlight(owner, channels),
      recoverOrphaned: () => outbox.recoverOrphaned(),
      pendingCount: () => outbox.pendingCount(),
      oldestPendingAt: () => outbox.oldestPendingAt(),
      takeChannels: (t) => takeDueChannels(db, t),
      renewChannel: (r) => renewChannelLease(db, r),
      releaseChannel: async (r) => void (await releaseChannelLease(db, r)),
    },
    agentTokens: {
      record: (t, at) => recordAgentTokenPg(db, t, at),
      markDeleted: (id, at) => markAgentTokenDeletedPg(db, id, at),
      live: (deployment) => liveAgentTokenPg(db, deployment),
      rows: (deployment) => agentTokenRowsPg(db, deployment),
    },
    wizards: pgWizardSessions(db, () => clock.now()),
    deployments: {
      names: async () => (await db.select({ name: deployments.name }).from(deployments).orderBy(asc(deployments.name))).map((r) => r.name),
      exists: async (name) => (await db.select({ name: deployments.name }).from(deployments).where(eq(deployments.name, name))).length > 0,
      lastSpec: async (name) => (await db.select({ spec: deployments.lastSpec }).from(deployments).where(eq(deployments.name, name)))[0]?.spec ?? undefined,
    },
    status: {
      answer: (deployment) => statusAnswerPg(pool, deployment),
      jobView: (jobId) => jobViewPg(pool, jobId),
    },
    metrics: {
      jobCounts: async () => Object.fromEntries((await pool.query('select state, count(*)::int as n from jobs group by state')).rows.map((r) => [r.state as string, r.n as number])),
      approvalsPending: async () => (await pool.query(`select count(*)::int as n from approvals where state = 'pending'`)).rows[0].n as number,
      hasActiveJobs: async () => (await pool.query(`select exists (select 1 from jobs where state in ('queued', 'running', 'waiting_approval')) as active`)).rows[0].active as boolean,
      recentJobs: async (deployment, limit) => (await pool.query('select id, state, created_at as "createdAt", requested_by as "requestedBy" from jobs where deployment = $1 order by created_at desc limit $2', [deployment, limit])).rows,
      lastMigrationAt: async () => Number((await pool.query('select max(created_at) as m from drizzle.__drizzle_migrations')).rows[0].m ?? 0),
    },
    ping: (timeoutMs) => store.ping(timeoutMs),
    close: async () => {
      if (o.closeStore) await store.close();
    },
  };
}
