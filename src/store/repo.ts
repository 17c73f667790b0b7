/**
 * One async repository over both stores (issue 16, docs/ha.md step 1): the named operations that the engine
 * (src/jobs/{queue,approvals,runner,status,views}.ts), the audit log, sealed secrets, agent tokens and the Slack
 * outbox need, every one `async` and returning plain rows, so callers need not know which database they run on.
 *
 * - SQLite (`sqliteRepository`): today's synchronous functions wrapped, unchanged (better-sqlite3 stays
 *   synchronous underneath; each operation resolves at once). Leases and pacing use the repository's clock.
 * - PostgreSQL (`pgRepository`, src/store/pg/repo.ts): the functions of src/store/pg; lease times come from the
 *   database clock, so replicas with skewed clocks agree.
 *
 * `openRepository(url?)` picks one: a postgres:// URL opens PostgreSQL (and requires RE_BOT_SECRET_KEY), no URL
 * opens the SQLite file. Nothing calls it yet in the running bot (docs/ha.md lists the call sites to switch).
 *
 * What has no place here yet: a generic `tx(async …)`. better-sqlite3 transactions cannot span an `await`, so the
 * compound writes are named operations instead (`jobs.submit`, `jobs.cancel`, `approvals.decide`, …), each one
 * transaction on either side.
 */
import { and, asc, desc, eq, inArray, like, sql } from 'drizzle-orm';
import type { ApprovalRequest } from '../checklist/types.ts';
import { createApprovals, decideReads, type DecideInput } from './sqlite/approvals.ts';
import * as queue from '../jobs/queue.ts';
import { nextStep, SuspendForApproval, updateStep, type StepRow } from '../jobs/runner.ts';
import { statusQueries, type LockHolder } from '../jobs/status-queries.ts';
import type { Actor, ApprovalPolicy, ApprovalView, DecisionResult, JobEvent, JobView, SubmitInput } from '../jobs/types.ts';
import { approvalView, jobView } from '../jobs/views.ts';
import { SqliteOutboxStore, type OutboxEntry, type OutboxStore } from '../slack/outbox-store.ts';
import type { Plan } from '../spec/plan.ts';
import { agentTokenRows, liveAgentToken, markAgentTokenDeleted, recordAgentToken, type AgentTokenRow } from './agent-tokens.ts';
import { appendAudit, exportAudit, verifyAuditChain, type AuditInput } from './audit.ts';
import { createSecretBox, sweepSealedSecrets } from './crypto.ts';
import { openStore, type Store } from './db.ts';
import { sqliteWizardSessions } from './wizard-sessions.ts';
import type { WizardStore } from '../slack/wizard-store.ts';
import { approvals as approvalsT, auditEvents, deployments as deploymentsT, jobs as jobsT, jobSteps, slackOutbox } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';
export type JobRow = queue.JobRow;
export type { StepRow };
export type ApprovalRow = typeof approvalsT.$inferSelect;
export type AuditRow = typeof auditEvents.$inferSelect;
export type ChainCheck = { ok: true; count: number } | { ok: false; brokenAtSeq: number; reason: string };
export type AuditExtra = { decision?: string; result?: string; details?: Record<string, unknown> };
export type NewOutboxEntry = Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>;

/** The repository's time: ISO timestamps of rows, audit times, and (SQLite only) lease deadlines. */
export interface RepoClock {
  now(): number;
}

/** A step's `requireApproval` on the store: granted already, or recorded and the job parked (`created`: a new request). */
export type ApprovalAsk = { granted: { approvalId: string; hash: string; approvedBy: string[] } } | { pending: { approvalId: string; created: boolean } };

/** What a decision changed, for the caller's events and kick: `jobFailed` is the job's error when it was failed. */
export type Decision =
  | { ok: true; approvalId: string; jobId: string; outcome: 'pending' | 'approved' | 'rejected'; jobRequeued: boolean; jobFailed?: string }
  | { ok: false; reason: Extract<DecisionResult, { ok: false }>['reason']; message: string; jobId?: string; jobFailed?: string };

/** Everything `/re status` reads about one deployment (src/jobs/status.ts composes the answer from it). */
export interface StatusAnswer {
  deploymentExists: boolean;
  latestJobId?: string;
  view?: JobView;
  lock?: LockHolder;
  lastSucceededJobId?: string;
  lastGood?: JobView;
}

export interface JobsRepo {
  get(id: string): Promise<JobRow | undefined>;
  /** the deployment's queued/running/waiting job (at most one: the lock) */
  activeFor(deployment: string): Promise<JobRow | undefined>;
  latestId(deployment: string): Promise<string | undefined>;
  /** the deployment's job ids, newest first (`re-bot history`) */
  idsOf(deployment: string): Promise<string[]>;
  /** jobs whose id starts with `prefix` (case-insensitive), newest first, at most `limit` (`re-bot cancel <ref>`) */
  withIdPrefix(prefix: string, limit: number): Promise<Array<{ id: string; deployment: string; state: string }>>;
  /** the deployment's last spec, the queued job, its steps and the audit row; DeploymentLockedError when the deployment has an active job */
  submit(input: SubmitInput & { id: string; plan: Plan }): Promise<void>;
  /** the oldest claimable job, leased to `owner` (PostgreSQL also takes running jobs whose lease expired) */
  claimNext(o: { owner: string; leaseMs: number; exclude?: string[] }): Promise<string | undefined>;
  /** the heartbeat: false when `owner` lost the job (cancelled, reclaimed, finished) */
  renewLease(o: { jobId: string; owner: string; leaseMs: number }): Promise<boolean>;
  /** leased queued/running jobs: candidates for `requeueExpired` */
  leased(): Promise<Array<Pick<JobRow, 'id' | 'leaseOwner' | 'leaseExpiresAt'>>>;
  requeueExpired(jobId: string, previousOwner: string): Promise<boolean>;
  /** on a clean stop: `owner`'s running jobs may be claimed at once */
  releaseLeases(owner: string): Promise<void>;
  complete(jobId: string): Promise<void>;
  fail(jobId: string, error: string): Promise<void>;
  suspend(jobId: string): Promise<void>;
  requeue(jobId: string): Promise<void>;
  cancel(job: JobRow, by: Actor): Promise<void>;
  /** DeploymentLockedError when another job holds the deployment */
  retry(job: JobRow, by: Actor): Promise<void>;
}

export interface StepsRepo {
  /** in execution order */
  list(jobId: string): Promise<StepRow[]>;
  get(jobId: string, stepId: string): Promise<StepRow | undefined>;
  /** the first step, in execution order, that has not finished */
  next(jobId: string): Promise<StepRow | undefined>;
  /** unguarded: for writes made outside a running step (approvals, cancel) */
  update(jobId: string, stepId: string, values: Partial<StepRow>): Promise<void>;
  /** a running step's write, applied only while `owner` holds an unexpired lease on the running, not-cancelled job */
  writeLeased(o: { jobId: string; stepId: string; owner: string }, values: Partial<StepRow>): Promise<boolean>;
  /**
   * The runner's finish of a step, in one transaction under the lease (as `writeLeased`): the step's row, its audit
   * row, then the promotions `promote` picks among the job's `prepared` steps (each its state and audit row).
   * Returns the promoted step ids, or false when `owner` lost the job and nothing was written.
   */
  finish(o: { job: AuditSubject; stepId: string; owner: string }, f: StepFinish): Promise<string[] | false>;
}

export type AuditSubject = Pick<JobRow, 'id' | 'deployment' | 'valuesHash'>;
export interface StepFinish {
  values: Partial<StepRow>;
  audit: { action: string; extra?: AuditExtra };
  /** given the job's `prepared` steps in execution order (after `values` was written), those to promote now, in order */
  promote?: (prepared: StepRow[]) => Array<{ stepId: string; state: string; audit: { action: string; extra?: AuditExtra } }>;
}

export interface ApprovalsRepo {
  get(id: string): Promise<ApprovalRow | undefined>;
  view(id: string): Promise<ApprovalView | undefined>;
  request(job: JobRow, stepId: string, req: ApprovalRequest, policy: ApprovalPolicy): Promise<ApprovalAsk>;
  decide(approvalId: string, input: DecideInput): Promise<Decision>;
  /** pending requests past their expiry: expired, their waiting jobs failed; returns the expired ids */
  expireDue(): Promise<string[]>;
}

export interface AuditRepo {
  append(e: AuditInput, at?: Date): Promise<AuditRow>;
  /** the engine's audit of a job: `at` is the repository clock's now */
  ofJob(j: Pick<JobRow, 'id' | 'deployment' | 'valuesHash'>, actor: string, action: string, extra?: AuditExtra): Promise<void>;
  verify(): Promise<ChainCheck>;
  export(filter?: { jobId?: string }): Promise<AuditRow[]>;
}

export interface SecretsRepo {
  seal(value: string, purpose?: string): Promise<string>;
  open(id: string): Promise<string>;
  erase(id: string): Promise<void>;
  /** erases secrets older than `ttlMs` that no active or recently failed job refers to (sweepSealedSecrets); the erased ids */
  sweep(ttlMs: number): Promise<string[]>;
}

/**
 * The Slack outbox: the OutboxStore of src/slack/outbox-store.ts, for a sender `owner`. On PostgreSQL only the
 * holder of a channel's lease moves its rows, and `mark*` return false when `owner` lost the channel; on SQLite
 * the one process holds every channel and they return true.
 */
export type OutboxRepo = OutboxStore;

export interface AgentTokensRepo {
  record(t: { id: string; deployment: string; name: string; endAt?: string; jobId?: string }, at?: string): Promise<void>;
  markDeleted(id: string, at?: string): Promise<void>;
  live(deployment: string): Promise<AgentTokenRow | undefined>;
  rows(deployment: string): Promise<AgentTokenRow[]>;
}

/** Setup-wizard sessions between pages (src/slack/wizard-store.ts): expiry by the repository clock. */
export type WizardSessionsRepo = WizardStore;

export interface DeploymentsRepo {
  /** alphabetical */
  names(): Promise<string[]>;
  exists(name: string): Promise<boolean>;
  /** the spec of the deployment's last submitted job */
  lastSpec(name: string): Promise<unknown>;
}

/** The bot's gauges, `/readyz` and the Slack history list (src/app/bot.ts). */
export interface MetricsRepo {
  /** number of jobs per state */
  jobCounts(): Promise<Record<string, number>>;
  approvalsPending(): Promise<number>;
  /** some job is queued, running or waiting for approval (the worker has work) */
  hasActiveJobs(): Promise<boolean>;
  /** the deployment's newest jobs, newest first */
  recentJobs(deployment: string, limit: number): Promise<Array<{ id: string; state: string; createdAt: string; requestedBy: string }>>;
  /** `created_at` of the newest applied migration (the migration folder's timestamp), 0 when none */
  lastMigrationAt(): Promise<number>;
}

export interface StatusRepo {
  answer(deployment: string): Promise<StatusAnswer>;
  jobView(jobId: string): Promise<JobView | undefined>;
}

export interface Repository {
  dialect: Dialect;
  /** the SQLite path, or the PostgreSQL URL with its password masked */
  location: string;
  jobs: JobsRepo;
  steps: StepsRepo;
  approvals: ApprovalsRepo;
  audit: AuditRepo;
  secrets: SecretsRepo;
  outbox: OutboxRepo;
  agentTokens: AgentTokensRepo;
  wizards: WizardSessionsRepo;
  deployments: DeploymentsRepo;
  status: StatusRepo;
  metrics: MetricsRepo;
  /** true when the database answers within `timeoutMs`; never throws */
  ping(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface RepositoryOptions {
  clock?: RepoClock;
  /** the sealed-secret key; default RE_BOT_SECRET_KEY (SQLite: else the key file beside the DB; PostgreSQL: required) */
  secretKey?: Buffer;
}

/** The store's postgres:// URL opens PostgreSQL; without one, the SQLite file `sqlitePath` (default RE_BOT_DB, else ./data/re-bot.db). */
export async function openRepository(url?: string, opts: RepositoryOptions & { sqlitePath?: string } = {}): Promise<Repository> {
  if (url) {
    // loaded only when asked for: the SQLite-only CLI does not load pg
    const { openPgRepository } = await import('./pg/repo.ts');
    return openPgRepository(url, opts);
  }
  const store = openStore({ path: opts.sqlitePath });
  return sqliteRepository(store, opts, { closeStore: true });
}

const PLACEHOLDER_POLICY: ApprovalPolicy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 0 };

/** The SQLite store as a Repository: src/jobs/*, src/store/* and SqliteOutboxStore, unchanged underneath. */
export function sqliteRepository(store: Store, opts: RepositoryOptions = {}, o: { closeStore?: boolean } = {}): Repository {
  const clock = opts.clock ?? { now: Date.now };
  const iso = () => new Date(clock.now()).toISOString();
  const { db } = store;
  const audit: queue.AuditFn = (j, actor, action, extra = {}) =>
    void appendAudit(store, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash, ...extra }, new Date(clock.now()));
  let box: ReturnType<typeof createSecretBox> | undefined;
  // created on first use: the key file beside the DB is only made when a secret is sealed or opened
  const secretBox = () => (box ??= createSecretBox(store, ...(opts.secretKey ? [opts.secretKey] : [])));
  let outboxStore: SqliteOutboxStore | undefined;
  let dueChannelsStmt: ReturnType<Store['sqlite']['prepare']> | undefined;
  const outbox = () => (outboxStore ??= new SqliteOutboxStore(store.sqlite));

  /** src/store/sqlite/approvals.ts with the engine's failJob (src/jobs/engine.ts); what it did is recorded in `seen` */
  function approvalsWith(policy: ApprovalPolicy) {
    const seen = { failed: undefined as string | undefined, expired: [] as string[] };
    const a = createApprovals({
      store, policy, now: clock.now, iso, view: (id) => jobView(store, id)!, audit, kick: () => {},
      emit: (e: JobEvent) => {
        if (e.type === 'approval.updated' && e.approval.state === 'expired') seen.expired.push(e.approval.id);
      },
      failJob: (jobId, error) => {
        queue.failJob(store, jobId, error, iso());
        audit(queue.getJob(store, jobId)!, 'system', 'job.finished', { result: 'failed', details: { error } });
        seen.failed = error;
      },
    });
    return { a, seen };
  }
  const getApproval = (id: string) => db.select().from(approvalsT).where(eq(approvalsT.id, id)).get();
  /**
   * The lease check of src/store/pg/jobs.ts's writeStepLeased without its expiry test: SQLite runs one write at a
   * time, and taking a job over (requeueExpired, claimNext) changes its state or owner, so a write by the old
   * owner either lands before the takeover (the new owner reads it) or is refused. An owner whose lease merely
   * ran out (a late heartbeat) keeps writing, as the engine never takes back its own running job on SQLite.
   */
  const writeLeased = (w: { jobId: string; stepId: string; owner: string }, values: Partial<StepRow>) => db.update(jobSteps).set(values).where(and(
    eq(jobSteps.jobId, w.jobId), eq(jobSteps.stepId, w.stepId),
    sql`exists (select 1 from jobs where jobs.id = ${w.jobId} and jobs.lease_owner = ${w.owner} and jobs.state = 'running'
      and jobs.cancel_requested = 0)`,
  )).run().changes === 1;

  return {
    dialect: 'sqlite',
    location: store.path,
    jobs: {
      get: async (id) => queue.getJob(store, id),
      activeFor: async (deployment) => db.select().from(jobsT).where(and(eq(jobsT.deployment, deployment), inArray(jobsT.state, ['queued', 'running', 'waiting_approval']))).limit(1).get(),
      latestId: async (deployment) => statusQueries(store).latestJobId(deployment),
      idsOf: async (deployment) => db.select({ id: jobsT.id }).from(jobsT).where(eq(jobsT.deployment, deployment)).orderBy(desc(jobsT.createdAt), desc(jobsT.id)).all().map((r) => r.id),
      withIdPrefix: async (prefix, limit) => db.select({ id: jobsT.id, deployment: jobsT.deployment, state: jobsT.state }).from(jobsT)
        .where(like(jobsT.id, `${prefix.toLowerCase()}%`)).orderBy(desc(jobsT.createdAt)).limit(limit).all()
        .filter((h) => h.id.toLowerCase().startsWith(prefix.toLowerCase())),
      submit: async (input) => queue.submitJob(store, { ...input, at: iso() }, audit),
      claimNext: async (c) => {
        const now = clock.now();
        return queue.claimNext(store, { owner: c.owner, now, leaseMs: c.leaseMs, at: new Date(now).toISOString(), exclude: c.exclude });
      },
      renewLease: async (r) => queue.renewLease(store, r.jobId, r.owner, clock.now() + r.leaseMs),
      leased: async () => queue.leasedJobs(store),
      requeueExpired: async (jobId, previousOwner) => queue.requeueExpired(store, jobId, previousOwner, iso()),
      releaseLeases: async (owner) => queue.releaseLeases(store, owner),
      complete: async (jobId) => queue.completeJob(store, jobId, iso()),
      fail: async (jobId, error) => queue.failJob(store, jobId, error, iso()),
      suspend: async (jobId) => queue.suspendJob(store, jobId, iso()),
      requeue: async (jobId) => queue.requeueJob(store, jobId, iso()),
      cancel: async (job, by) => queue.cancelJob(store, job, by, iso(), audit),
      retry: async (job, by) => queue.retryJob(store, job, by, iso(), audit),
    },
    steps: {
      list: async (jobId) => db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(asc(jobSteps.execOrder)).all(),
      get: async (jobId, stepId) => db.select().from(jobSteps).where(and(eq(jobSteps.jobId, jobId), eq(jobSteps.stepId, stepId))).get(),
      next: async (jobId) => nextStep(store, jobId),
      update: async (jobId, stepId, values) => updateStep(store, jobId, stepId, values),
      writeLeased: async (w, values) => writeLeased(w, values),
      finish: async (w, f) => store.sqlite.transaction((): string[] | false => {
        if (!writeLeased({ jobId: w.job.id, stepId: w.stepId, owner: w.owner }, f.values)) return false;
        audit(w.job, 'system', f.audit.action, f.audit.extra);
        const prepared = db.select().from(jobSteps).where(and(eq(jobSteps.jobId, w.job.id), eq(jobSteps.state, 'prepared'))).orderBy(asc(jobSteps.execOrder)).all();
        const promoted = f.promote?.(prepared) ?? [];
        for (const p of promoted) {
          updateStep(store, w.job.id, p.stepId, { state: p.state });
          audit(w.job, 'system', p.audit.action, p.audit.extra);
        }
        return promoted.map((p) => p.stepId);
      }).immediate(),
    },
    approvals: {
      get: async (id) => getApproval(id),
      view: async (id) => {
        const a = getApproval(id);
        return a && approvalView(store, a);
      },
      async request(job, stepId, req, policy) {
        const before = db.select({ id: approvalsT.id }).from(approvalsT)
          .where(and(eq(approvalsT.jobId, job.id), eq(approvalsT.stepId, stepId), eq(approvalsT.hash, req.hash), eq(approvalsT.state, 'pending'))).get();
        try {
          const grant = await approvalsWith(policy).a.requireApproval(job, stepId, req);
          return { granted: { approvalId: grant.approvalId, hash: grant.hash, approvedBy: grant.approvedBy } };
        } catch (err) {
          if (!(err instanceof SuspendForApproval)) throw err;
          return { pending: { approvalId: err.approvalId, created: !before } };
        }
      },
      async decide(approvalId, input) {
        // the prepared reads decide() itself uses: most clicks are refused, and a drizzle read of the whole
        // approval and job rows (diff, spec and plan JSON) was a third of a refused click's cost
        const reads = decideReads(store);
        const a0 = reads.approval(approvalId);
        const waiting = a0 ? reads.job(a0.jobId)?.state === 'waiting_approval' : false;
        const { a, seen } = approvalsWith(PLACEHOLDER_POLICY);
        const r = await a.decide(approvalId, input);
        const failed = seen.failed ? { jobFailed: seen.failed } : {};
        if (!r.ok) return { ok: false, reason: r.reason, message: r.message, ...(a0 ? { jobId: a0.jobId } : {}), ...failed };
        const outcome = r.approval.state === 'approved' ? 'approved' : r.approval.state === 'rejected' ? 'rejected' : 'pending';
        return { ok: true, approvalId, jobId: r.approval.jobId, outcome, jobRequeued: outcome === 'approved' && waiting, ...failed };
      },
      async expireDue() {
        const { a, seen } = approvalsWith(PLACEHOLDER_POLICY);
        a.expireApprovals();
        return seen.expired;
      },
    },
    audit: {
      append: async (e, at) => appendAudit(store, e, at ?? new Date(clock.now())),
      ofJob: async (j, actor, action, extra) => audit(j, actor, action, extra),
      verify: async () => verifyAuditChain(store),
      export: async (filter) => exportAudit(store, filter),
    },
    secrets: {
      seal: async (value, purpose) => secretBox().sealSecret(value, purpose),
      open: async (id) => secretBox().openSecret(id),
      erase: async (id) => secretBox().eraseSecret(id),
      sweep: async (ttlMs) => sweepSealedSecrets(store, ttlMs, clock.now()),
    },
    outbox: {
      upsert: (e) => outbox().upsert(e),
      get: (key) => outbox().get(key),
      head: (key) => outbox().head(key),
      due: (now, owner) => outbox().due(now, owner),
      markSending: (id, owner) => outbox().markSending(id, owner),
      markSent: (id, ts, owner) => outbox().markSent(id, ts, owner),
      markRetry: (id, notBefore, error, owner, refund, verify) => outbox().markRetry(id, notBefore, error, owner, refund, verify),
      markFailed: (id, error, owner) => outbox().markFailed(id, error, owner),
      markUnknown: (id, error, owner) => outbox().markUnknown(id, error, owner),
      dropPending: (id, error) => outbox().dropPending(id, error),
      recoverInFlight: (owner, channels) => outbox().recoverInFlight(owner, channels),
      recoverOrphaned: async () => 0,
      pendingCount: () => outbox().pendingCount(),
      oldestPendingAt: () => outbox().oldestPendingAt(),
      // by the repository clock (SqliteOutboxStore's own is Date.now)
      // prepared once: the sender asks on every poll (each enqueue and each finished send)
      takeChannels: async (t) => (dueChannelsStmt ??= store.sqlite.prepare(`SELECT DISTINCT channel FROM slack_outbox WHERE state = 'pending' AND not_before <= ? ORDER BY channel LIMIT ?`).pluck())
        .all(clock.now(), Math.max(0, Math.floor(t.max))) as string[],
      renewChannel: async () => true,
      releaseChannel: async () => {},
    },
    agentTokens: {
      record: async (t, at) => recordAgentToken(store, t, at),
      markDeleted: async (id, at) => markAgentTokenDeleted(store, id, at),
      live: async (deployment) => liveAgentToken(store, deployment),
      rows: async (deployment) => agentTokenRows(store, deployment),
    },
    wizards: sqliteWizardSessions(store, () => clock.now()),
    deployments: {
      names: async () => db.select({ name: deploymentsT.name }).from(deploymentsT).orderBy(asc(deploymentsT.name)).all().map((r) => r.name),
      exists: async (name) => statusQueries(store).deploymentExists(name),
      lastSpec: async (name) => db.select({ spec: deploymentsT.lastSpec }).from(deploymentsT).where(eq(deploymentsT.name, name)).get()?.spec ?? undefined,
    },
    status: {
      async answer(deployment) {
        const q = statusQueries(store);
        const latestJobId = q.latestJobId(deployment);
        const view = latestJobId ? q.jobView(latestJobId) : undefined;
        const lock = q.lockHolder(deployment);
        const good = q.lastSucceededJobId(deployment);
        return {
          // a job's deployment row always exists (submit upserts it): the read is only needed without one
          deploymentExists: latestJobId ? true : q.deploymentExists(deployment),
          ...(latestJobId ? { latestJobId, view } : {}),
          ...(lock ? { lock } : {}),
          ...(good ? { lastSucceededJobId: good, lastGood: good === latestJobId ? view : q.jobView(good) } : {}),
        };
      },
      jobView: async (jobId) => jobView(store, jobId),
    },
    metrics: {
      jobCounts: async () => Object.fromEntries((store.sqlite.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: string; n: number }>).map((r) => [r.state, r.n])),
      approvalsPending: async () => (store.sqlite.prepare(`SELECT COUNT(*) AS n FROM approvals WHERE state = 'pending'`).get() as { n: number }).n,
      hasActiveJobs: async () => Boolean(store.sqlite.prepare(`SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('queued', 'running', 'waiting_approval')) AS active`).pluck().get()),
      recentJobs: async (deployment, limit) => store.sqlite.prepare('SELECT id, state, created_at AS createdAt, requested_by AS requestedBy FROM jobs WHERE deployment = ? ORDER BY created_at DESC LIMIT ?')
        .all(deployment, limit) as Array<{ id: string; state: string; createdAt: string; requestedBy: string }>,
      lastMigrationAt: async () => Number(store.sqlite.prepare('SELECT MAX(created_at) FROM __drizzle_migrations').pluck().get() ?? 0),
    },
    async ping() {
      try {
        store.sqlite.prepare('SELECT 1').get();
        return true;
      } catch {
        return false;
      }
    },
    close: async () => {
      if (o.closeStore) store.close();
    },
  };
}
