import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNotNull } from 'drizzle-orm';
import { errorMessage, forgetScope, redact, redactDeep } from '../redact.ts';
import { logger as rootLogger, type Logger } from '../log.ts';
const logger = { warn: (o: object, m: string) => rootLogger().warn(o, m), error: (o: object, m: string) => rootLogger().error(o, m), info: (o: object, m: string) => rootLogger().info(o, m) };
import type { Infra } from '../infra/types.ts';
import type { SecretRef } from '../spec/schema.ts';
import { buildPlan, type Plan } from '../spec/plan.ts';
import { StepFailure, type ApprovalGrant, type ApprovalRequest, type StepContext, type StepHandler } from '../checklist/types.ts';
import type { Store } from '../store/db.ts';
import { approvals, approvalVotes, deployments, jobs, jobSteps } from '../store/schema.ts';
import { appendAudit } from '../store/audit.ts';
import { DeploymentLockedError, type Actor, type ApprovalPolicy, type DecisionResult, type JobEngine, type JobEvent, type JobState, type JobView, type SubmitInput } from './types.ts';
import { activeJobFor, approvalView, jobView, latestJobId, TERMINAL_STATES } from './views.ts';
import { newOwnerId, ownerIsDeadLocalProcess } from './lease.ts';

type JobRow = typeof jobs.$inferSelect;
type StepRow = typeof jobSteps.$inferSelect;

export interface StepEnvironment {
  infra: Infra;
  resolveSecret(ref: SecretRef): Promise<string>;
  log?: Logger;
}

export interface JobEngineOptions {
  store: Store;
  handlers: StepHandler[];
  /** infra + secret resolver for one step run (injectable so tests and the CLI choose adapters) */
  buildContext: (job: JobView, stepId: string) => StepEnvironment | Promise<StepEnvironment>;
  policy: ApprovalPolicy;
  concurrency?: number;
  leaseMs?: number;
  owner?: string;
  clock?: () => number;
  /** how often the worker loop looks for queued jobs, expired leases and expired approvals */
  pollMs?: number;
  /** defaults to buildPlan from src/spec/plan.ts */
  plan?: (spec: SubmitInput['spec']) => Plan;
}

/** Thrown inside a step by `requireApproval`; the engine parks the job in waiting_approval. */
export class SuspendForApproval extends Error {
  constructor(readonly approvalId: string) {
    super('waiting for approval');
    this.name = 'SuspendForApproval';
  }
}
class Aborted extends Error {}

/** `prepared`: the step's work is computed and waits for the step named in its `appliedWith` to reach the cluster. */
const DONE_STEP = ['succeeded', 'warned', 'skipped', 'prepared'];
/** checkpoint key where the engine keeps a prepared step's final status until its applying step completes */
const PREPARED_KEY = 'engine.prepared';

export type LocalJobEngine = JobEngine & {
  owner: string;
  tick(): Promise<void>;
  /** re-emit an event that happened in another process (the job worker) to this engine's listeners */
  relay(e: JobEvent): void;
  /** abort a job running in this process (its state was already written, e.g. cancelled by another process) */
  interrupt(jobId: string): void;
};

export function createJobEngine(opts: JobEngineOptions): LocalJobEngine {
  const { store, policy } = opts;
  const db = store.db;
  const concurrency = opts.concurrency ?? Number(process.env.RE_BOT_CONCURRENCY ?? 2);
  const leaseMs = opts.leaseMs ?? 30_000;
  const pollMs = opts.pollMs ?? 500;
  const owner = opts.owner ?? newOwnerId();
  const now = () => (opts.clock ? opts.clock() : Date.now());
  const iso = () => new Date(now()).toISOString();
  const planFor = opts.plan ?? buildPlan;
  const handlers = new Map(opts.handlers.map((h) => [h.id, h]));
  const listeners = new Set<(e: JobEvent) => void>();
  const running = new Map<string, AbortController>();
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let ticking: Promise<void> | undefined;

  const emit = (e: JobEvent) => {
    for (const l of listeners) {
      try { l(e); } catch (err) { logger.warn({ err: errorMessage(err) }, 'job event listener failed'); }
    }
  };
  const view = (id: string) => jobView(store, id)!;
  const getJob = (id: string) => db.select().from(jobs).where(eq(jobs.id, id)).get();
  const audit = (j: Pick<JobRow, 'id' | 'deployment' | 'valuesHash'>, actor: string, action: string, extra: { decision?: string; result?: string; details?: Record<string, unknown> } = {}) =>
    appendAudit(store, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash, ...extra }, new Date(now()));
  const lockHolder = (j: JobRow) => ({ jobId: j.id, requestedBy: j.requestedBy, since: j.startedAt ?? j.createdAt, state: j.state as JobState });

  async function submit(input: SubmitInput): Promise<JobView> {
    const plan = planFor(input.spec);
    const deployment = input.spec.deployment.name;
    const id = `job_${randomUUID()}`;
    const at = iso();
    store.sqlite.transaction(() => {
      const holder = activeJobFor(store, deployment);
      if (holder) throw new DeploymentLockedError(deployment, lockHolder(holder));
      db.insert(deployments).values({ name: deployment, astroId: input.spec.deployment.id, lastSpec: input.spec, updatedAt: at })
        .onConflictDoUpdate({ target: deployments.name, set: { astroId: input.spec.deployment.id, lastSpec: input.spec, updatedAt: at } }).run();
      db.insert(jobs).values({
        id, deployment, state: 'queued', attempt: 1, requestedBy: input.requestedBy.id, origin: input.origin, spec: input.spec,
        plan, valuesHash: plan.valuesHash, chart: plan.chart, createdAt: at, updatedAt: at,
      }).run();
      for (const s of plan.steps) {
        db.insert(jobSteps).values({
          jobId: id, stepId: s.id, number: s.number, title: s.title, execOrder: s.order,
          state: s.applies ? 'pending' : 'skipped', summary: s.applies ? null : (s.skipReason ?? 'not applicable'),
        }).run();
      }
      audit({ id, deployment, valuesHash: plan.valuesHash }, input.requestedBy.id, 'job.submitted', { details: { origin: input.origin.kind, chart: plan.chart } });
    }).immediate();
    const v = view(id);
    emit({ type: 'job.queued', job: v });
    kick();
    return v;
  }

  // ---------- worker loop ----------
  function kick() {
    if (started) setImmediate(() => void tick());
  }

  async function tick(): Promise<void> {
    if (ticking) return ticking;
    ticking = (async () => {
      try {
        reclaim();
        expireApprovals();
        while (started && running.size < concurrency) {
          const jobId = claim();
          if (!jobId) break;
          const ac = new AbortController();
          running.set(jobId, ac);
          void runJob(jobId, ac).finally(() => { running.delete(jobId); kick(); });
        }
      } catch (err) {
        logger.error({ err: errorMessage(err) }, 'job worker tick failed');
      }
    })().finally(() => { ticking = undefined; });
    return ticking;
  }

  /** Jobs whose lease expired, or whose owner is a dead process on this host, go back to the queue. */
  function reclaim() {
    const t = now();
    const leased = db.select().from(jobs).where(and(isNotNull(jobs.leaseOwner), inArray(jobs.state, ['running', 'queued']))).all();
    for (const j of leased) {
      if (j.leaseOwner === owner && running.has(j.id)) continue;
      const expired = (j.leaseExpiresAt ?? 0) <= t;
      if (!expired && !ownerIsDeadLocalProcess(j.leaseOwner!)) continue;
      db.update(jobs).set({ state: 'queued', leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() })
        .where(and(eq(jobs.id, j.id), eq(jobs.leaseOwner, j.leaseOwner!))).run();
      logger.info({ jobId: j.id, previousOwner: j.leaseOwner }, 'reclaimed job lease');
    }
  }

  function claim(): string | undefined {
    return store.sqlite.transaction(() => {
      const j = db.select().from(jobs).where(eq(jobs.state, 'queued')).orderBy(asc(jobs.createdAt)).all()
        .find((r) => !running.has(r.id) && (!r.leaseOwner || (r.leaseExpiresAt ?? 0) <= now()));
      if (!j) return undefined;
      db.update(jobs).set({ state: 'running', leaseOwner: owner, leaseExpiresAt: now() + leaseMs, startedAt: j.startedAt ?? iso(), updatedAt: iso() })
        .where(eq(jobs.id, j.id)).run();
      return j.id;
    }).immediate();
  }

  async function runJob(jobId: string, ac: AbortController) {
    const renew = setInterval(() => {
      const j = getJob(jobId);
      if (!j || j.cancelRequested || j.leaseOwner !== owner || j.state !== 'running') { ac.abort(new Aborted('job no longer held')); return; }
      db.update(jobs).set({ leaseExpiresAt: now() + leaseMs }).where(and(eq(jobs.id, jobId), eq(jobs.leaseOwner, owner))).run();
    }, Math.max(50, Math.floor(leaseMs / 3)));
    renew.unref();
    try {
      const j0 = getJob(jobId)!;
      audit(j0, 'system', 'job.started', { details: { attempt: j0.attempt, owner } });
      emit({ type: 'job.started', job: view(jobId) });
      for (;;) {
        if (ac.signal.aborted) return;
        const step = db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(asc(jobSteps.execOrder)).all()
          .find((s) => !DONE_STEP.includes(s.state));
        if (!step) break;
        const r = await runStep(getJob(jobId)!, step, ac);
        if (r !== 'done') return;
      }
      finishJob(jobId, 'succeeded');
    } catch (err) {
      logger.error({ jobId, err: errorMessage(err) }, 'job runner crashed');
      failJob(jobId, redact(errorMessage(err)));
    } finally {
      clearInterval(renew);
    }
  }

  function stepWhere(jobId: string, stepId: string) {
    return and(eq(jobSteps.jobId, jobId), eq(jobSteps.stepId, stepId));
  }

  async function runStep(job: JobRow, step: StepRow, ac: AbortController): Promise<'done' | 'stopped'> {
    const handler = handlers.get(step.stepId);
    const startedMs = now();
    db.update(jobSteps).set({ state: 'running', attempt: step.attempt + 1, startedAt: iso(), finishedAt: null, durationMs: null, error: null })
      .where(stepWhere(job.id, step.stepId)).run();
    emit({ type: 'step.started', job: view(job.id), stepId: step.stepId });
    try {
      if (!handler) throw new StepFailure(`no handler registered for step ${step.stepId}`);
      const env = await opts.buildContext(view(job.id), step.stepId);
      const checkpoint: Record<string, unknown> = { ...((step.checkpoint as Record<string, unknown> | null) ?? {}) };
      const saveCheckpoint = (key: string, value: unknown) => {
        checkpoint[key] = value;
        db.update(jobSteps).set({ checkpoint: redactDeep(checkpoint) }).where(stepWhere(job.id, step.stepId)).run();
      };
      const ctx: StepContext = {
        jobId: job.id,
        attempt: job.attempt,
        spec: job.spec as StepContext['spec'],
        plan: job.plan as Plan,
        infra: env.infra,
        resolveSecret: env.resolveSecret,
        checkpoint: {
          get: <T>(key: string) => checkpoint[key] as T | undefined,
          set: (key, value) => saveCheckpoint(key, value),
          once: async <T>(key: string, fn: () => T | Promise<T>): Promise<T> => {
            if (key in checkpoint && checkpoint[key] !== undefined) return checkpoint[key] as T;
            const value = await fn();
            saveCheckpoint(key, value);
            return value;
          },
        },
        audit: (action, details) => audit(job, 'system', action, { details: { stepId: step.stepId, ...(redactDeep(details) as Record<string, unknown>) } }),
        outputOf: (stepId) => {
          const s = db.select().from(jobSteps).where(stepWhere(job.id, stepId)).get();
          return s && DONE_STEP.includes(s.state) ? ((s.output as Record<string, unknown> | null) ?? undefined) : undefined;
        },
        progress: (message) => emit({ type: 'step.progress', job: view(job.id), stepId: step.stepId, message: redact(message) }),
        requireApproval: (req) => requireApproval(job, step.stepId, req),
        signal: ac.signal,
        log: (env.log ?? rootLogger()).child({ jobId: job.id, stepId: step.stepId }),
      };
      const outcome = await handler.run(ctx);
      if (ac.signal.aborted) return 'stopped';
      const applier = outcome.appliedWith && outcome.status !== 'skipped'
        ? db.select().from(jobSteps).where(stepWhere(job.id, outcome.appliedWith)).get() : undefined;
      // work another step applies is only `prepared` until that step has reached the cluster
      const waits = !!applier && !['succeeded', 'warned'].includes(applier.state);
      const state = waits ? 'prepared' : outcome.status;
      const promoted = store.sqlite.transaction(() => {
        db.update(jobSteps).set({
          state, summary: redact(outcome.summary), warnings: outcome.warnings?.map(redact) ?? null,
          output: outcome.output ? redactDeep(outcome.output) : null, finishedAt: iso(), durationMs: now() - startedMs,
          ...(waits ? { checkpoint: redactDeep({ ...checkpoint, [PREPARED_KEY]: { status: outcome.status, appliedWith: outcome.appliedWith } }) } : {}),
        }).where(stepWhere(job.id, step.stepId)).run();
        audit(job, 'system', 'step.finished', { result: state, details: { stepId: step.stepId, summary: redact(outcome.summary), ...(waits ? { appliedWith: outcome.appliedWith } : {}) } });
        return outcome.status === 'skipped' ? [] : promotePrepared(job, step.stepId);
      }).immediate();
      emit({ type: outcome.status === 'skipped' ? 'step.skipped' : 'step.finished', job: view(job.id), stepId: step.stepId });
      for (const id of promoted) emit({ type: 'step.finished', job: view(job.id), stepId: id });
      return 'done';
    } catch (err) {
      if (err instanceof SuspendForApproval) return 'stopped';
      if (ac.signal.aborted) {
        // cancel already wrote the job state; a stop() leaves the step `running` so the next owner re-runs it
        return 'stopped';
      }
      const message = redact(errorMessage(err));
      const logTail = err instanceof StepFailure && err.details.logTail ? redact(err.details.logTail) : undefined;
      const hint = err instanceof StepFailure && err.details.hint ? redact(err.details.hint) : undefined;
      db.update(jobSteps).set({ state: 'failed', error: message, finishedAt: iso(), durationMs: now() - startedMs })
        .where(stepWhere(job.id, step.stepId)).run();
      audit(job, 'system', 'step.failed', { result: 'failed', details: { stepId: step.stepId, error: message } });
      emit({ type: 'step.failed', job: view(job.id), stepId: step.stepId, error: message, ...(logTail ? { logTail } : {}), ...(hint ? { hint } : {}) });
      failJob(job.id, `${step.title}: ${message}`);
      return 'stopped';
    }
  }

  /** Steps `prepared` to be applied with `stepId` take their own final status now that it completed; returns their ids. */
  function promotePrepared(job: JobRow, stepId: string): string[] {
    const out: string[] = [];
    for (const s of db.select().from(jobSteps).where(and(eq(jobSteps.jobId, job.id), eq(jobSteps.state, 'prepared'))).all()) {
      const cp = (s.checkpoint as Record<string, unknown> | null) ?? {};
      const p = cp[PREPARED_KEY] as { status: string; appliedWith: string } | undefined;
      if (p?.appliedWith !== stepId) continue;
      db.update(jobSteps).set({ state: p.status }).where(stepWhere(job.id, s.stepId)).run();
      audit(job, 'system', 'step.applied', { result: p.status, details: { stepId: s.stepId, appliedWith: stepId } });
      out.push(s.stepId);
    }
    return out;
  }

  async function requireApproval(job: JobRow, stepId: string, req: ApprovalRequest): Promise<ApprovalGrant> {
    const existing = db.select().from(approvals)
      .where(and(eq(approvals.jobId, job.id), eq(approvals.stepId, stepId), inArray(approvals.state, ['pending', 'approved']))).all();
    const same = existing.find((a) => a.hash === req.hash);
    if (same?.state === 'approved') {
      const votes = db.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, same.id), eq(approvalVotes.decision, 'approve'))).all();
      return { approvalId: same.id, hash: same.hash, approvedBy: votes.map((v) => v.user) };
    }
    let approvalId = same?.id;
    store.sqlite.transaction(() => {
      for (const a of existing) {
        if (a.hash === req.hash) continue;
        db.update(approvals).set({ state: 'superseded', decidedAt: iso() }).where(eq(approvals.id, a.id)).run();
        audit(job, 'system', 'approval.superseded', { details: { approvalId: a.id, oldHash: a.hash, newHash: req.hash } });
      }
      if (!approvalId) {
        approvalId = `apr_${randomUUID()}`;
        db.insert(approvals).values({
          id: approvalId, jobId: job.id, stepId, hash: req.hash, title: redact(req.title), facts: redactDeep(req.facts),
          changedKeys: req.changedKeys, diffText: redact(req.diffText), review: req.review ? redactDeep(req.review) : null, state: 'pending', required: Math.max(1, policy.required),
          policy, requestedAt: iso(), expiresAt: new Date(now() + policy.expiresInMs).toISOString(),
        }).run();
        audit(job, 'system', 'approval.requested', { details: { approvalId, stepId, hash: req.hash, title: redact(req.title) } });
      }
      db.update(jobSteps).set({ state: 'waiting_approval' }).where(stepWhere(job.id, stepId)).run();
      db.update(jobs).set({ state: 'waiting_approval', leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() }).where(eq(jobs.id, job.id)).run();
    }).immediate();
    const a = db.select().from(approvals).where(eq(approvals.id, approvalId!)).get()!;
    emit({ type: 'approval.requested', job: view(job.id), approval: approvalView(store, a) });
    throw new SuspendForApproval(approvalId!);
  }

  function finishJob(jobId: string, state: 'succeeded') {
    db.update(jobs).set({ state, finishedAt: iso(), leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() }).where(eq(jobs.id, jobId)).run();
    const j = getJob(jobId)!;
    audit(j, 'system', 'job.finished', { result: state });
    emit({ type: 'job.succeeded', job: view(jobId) });
    forgetScope(jobId); // the job's secrets (registered with scope = job id) stop costing redact() time
  }

  function failJob(jobId: string, error: string) {
    db.update(jobs).set({ state: 'failed', error, finishedAt: iso(), leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() }).where(eq(jobs.id, jobId)).run();
    const j = getJob(jobId)!;
    audit(j, 'system', 'job.finished', { result: 'failed', details: { error } });
    emit({ type: 'job.failed', job: view(jobId) });
    forgetScope(jobId);
  }

  function expireApprovals() {
    const t = now();
    for (const a of db.select().from(approvals).where(eq(approvals.state, 'pending')).all()) {
      if (Date.parse(a.expiresAt) > t) continue;
      expireApproval(a.id);
    }
  }

  function expireApproval(approvalId: string) {
    const a = db.select().from(approvals).where(eq(approvals.id, approvalId)).get()!;
    db.update(approvals).set({ state: 'expired', decidedAt: iso() }).where(eq(approvals.id, a.id)).run();
    const j = getJob(a.jobId)!;
    audit(j, 'system', 'approval.expired', { result: 'expired', details: { approvalId: a.id, hash: a.hash } });
    emit({ type: 'approval.updated', job: view(j.id), approval: approvalView(store, getApproval(a.id)!) });
    if (j.state === 'waiting_approval') {
      const msg = `approval "${a.title}" expired at ${a.expiresAt} without ${a.required} approval(s)`;
      db.update(jobSteps).set({ state: 'failed', error: msg, finishedAt: iso() }).where(stepWhere(j.id, a.stepId)).run();
      failJob(j.id, msg);
    }
  }
  const getApproval = (id: string) => db.select().from(approvals).where(eq(approvals.id, id)).get();

  async function decide(approvalId: string, input: { by: Actor; decision: 'approve' | 'reject'; hash: string; userGroups?: string[]; reason?: string }): Promise<DecisionResult> {
    const reason = input.reason?.trim() ? redact(input.reason.trim()).slice(0, 500) : undefined;
    const a = getApproval(approvalId);
    const refuse = (reason: Extract<DecisionResult, { ok: false }>['reason'], message: string): DecisionResult => {
      appendAudit(store, { actor: input.by.id, action: 'approval.refused', jobId: a?.jobId, deployment: a ? getJob(a.jobId)?.deployment : undefined,
        valuesHash: a ? getJob(a.jobId)?.valuesHash : undefined, decision: input.decision, result: reason, details: { approvalId, hash: input.hash, message } }, new Date(now()));
      return { ok: false, reason, message };
    };
    if (!a) return refuse('not_found', `approval ${approvalId} not found`);
    const job = getJob(a.jobId)!;
    const p = a.policy as ApprovalPolicy;
    if (a.state === 'pending' && Date.parse(a.expiresAt) <= now()) {
      expireApproval(a.id);
      return refuse('expired', `this approval expired at ${a.expiresAt}; the job failed — retry it to ask again`);
    }
    if (a.state === 'expired') return refuse('expired', `this approval expired at ${a.expiresAt}`);
    if (a.state !== 'pending') return refuse(a.state === 'superseded' ? 'stale_hash' : 'already_decided', a.state === 'superseded'
      ? 'these values changed after this request; approve the newer request instead' : `this approval is already ${a.state}`);
    if (input.hash !== a.hash) return refuse('stale_hash', `you approved values hash ${input.hash.slice(0, 12)}, but the pending request is for ${a.hash.slice(0, 12)}`);
    if (input.by.id === job.requestedBy && !p.allowSelfApproval) return refuse('self_approval', 'the requester cannot approve their own job');
    if (p.approvers.length > 0) {
      const ids = [input.by.id, ...(input.userGroups ?? [])];
      if (!ids.some((id) => p.approvers.includes(id))) return refuse('not_approver', 'you are not on the approver list for this deployment');
    }
    const prior = db.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, a.id), eq(approvalVotes.user, input.by.id))).get();
    if (prior) return refuse('duplicate', 'you already voted on this request; another approver is needed');

    let outcome = 'pending' as 'pending' | 'approved' | 'rejected';
    store.sqlite.transaction(() => {
      db.insert(approvalVotes).values({ approvalId: a.id, user: input.by.id, decision: input.decision, at: iso() }).run();
      if (input.decision === 'reject') {
        outcome = 'rejected';
        db.update(approvals).set({ state: 'rejected', rejectedBy: input.by.id, rejectReason: reason ?? null, decidedAt: iso() }).where(eq(approvals.id, a.id)).run();
      } else {
        const n = db.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, a.id), eq(approvalVotes.decision, 'approve'))).all().length;
        if (n >= a.required) {
          outcome = 'approved';
          db.update(approvals).set({ state: 'approved', decidedAt: iso() }).where(eq(approvals.id, a.id)).run();
          if (job.state === 'waiting_approval') {
            db.update(jobSteps).set({ state: 'pending' }).where(stepWhere(job.id, a.stepId)).run();
            db.update(jobs).set({ state: 'queued', updatedAt: iso() }).where(eq(jobs.id, job.id)).run();
          }
        }
      }
      audit(job, input.by.id, 'approval.decided', { decision: input.decision, result: outcome, details: { approvalId: a.id, hash: a.hash, ...(input.by.display ? { as: input.by.display } : {}), ...(reason ? { reason } : {}) } });
    }).immediate();
    const av = approvalView(store, getApproval(a.id)!);
    emit({ type: 'approval.updated', job: view(job.id), approval: av });
    if (outcome === 'rejected' && job.state === 'waiting_approval') {
      const msg = `rejected by ${input.by.id}: ${a.title}${reason ? ` — reason: ${reason}` : ''}`;
      db.update(jobSteps).set({ state: 'failed', error: msg, finishedAt: iso() }).where(stepWhere(job.id, a.stepId)).run();
      failJob(job.id, msg);
    }
    if (outcome === 'approved') kick();
    return { ok: true, approval: av };
  }

  async function cancel(jobId: string, by: Actor): Promise<JobView> {
    const j = getJob(jobId);
    if (!j) throw new Error(`job ${jobId} not found`);
    if (TERMINAL_STATES.includes(j.state as JobState)) return view(jobId);
    store.sqlite.transaction(() => {
      db.update(jobs).set({ state: 'cancelled', cancelRequested: true, error: `cancelled by ${by.id}`, finishedAt: iso(), leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() })
        .where(eq(jobs.id, jobId)).run();
      db.update(jobSteps).set({ state: 'cancelled', finishedAt: iso() })
        .where(and(eq(jobSteps.jobId, jobId), inArray(jobSteps.state, ['running', 'waiting_approval']))).run();
      db.update(approvals).set({ state: 'superseded', decidedAt: iso() }).where(and(eq(approvals.jobId, jobId), eq(approvals.state, 'pending'))).run();
      audit(j, by.id, 'job.cancelled', { result: 'cancelled' });
    }).immediate();
    running.get(jobId)?.abort(new Aborted(`cancelled by ${by.id}`));
    const v = view(jobId);
    emit({ type: 'job.cancelled', job: v });
    forgetScope(jobId);
    return v;
  }

  async function retry(jobId: string, by: Actor): Promise<JobView> {
    const j = getJob(jobId);
    if (!j) throw new Error(`job ${jobId} not found`);
    if (j.state !== 'failed' && j.state !== 'cancelled') throw new Error(`job ${jobId} is ${j.state}; only failed or cancelled jobs can be retried`);
    store.sqlite.transaction(() => {
      const holder = activeJobFor(store, j.deployment);
      if (holder && holder.id !== jobId) throw new DeploymentLockedError(j.deployment, lockHolder(holder));
      db.update(jobSteps).set({ state: 'pending', error: null })
        .where(and(eq(jobSteps.jobId, jobId), inArray(jobSteps.state, ['failed', 'cancelled', 'running', 'waiting_approval']))).run();
      db.update(jobs).set({ state: 'queued', attempt: j.attempt + 1, error: null, cancelRequested: false, finishedAt: null, leaseOwner: null, leaseExpiresAt: null, updatedAt: iso() })
        .where(eq(jobs.id, jobId)).run();
      audit(j, by.id, 'job.retried', { details: { attempt: j.attempt + 1 } });
    }).immediate();
    const v = view(jobId);
    emit({ type: 'job.queued', job: v });
    kick();
    return v;
  }

  function settled(jobId: string): Promise<JobView> {
    return new Promise((resolve, reject) => {
      const done = (v: JobView | undefined) => v && (TERMINAL_STATES.includes(v.state) || v.state === 'waiting_approval');
      const now0 = jobView(store, jobId);
      if (!now0) return reject(new Error(`job ${jobId} not found`));
      if (done(now0)) return resolve(now0);
      const off = on(() => {
        const v = jobView(store, jobId);
        if (done(v)) { off(); clearInterval(poll); resolve(v!); }
      });
      // another process may be running the job: poll the DB as well
      const poll = setInterval(() => {
        const v = jobView(store, jobId);
        if (done(v)) { off(); clearInterval(poll); resolve(v!); }
      }, 200);
    });
  }

  function on(listener: (e: JobEvent) => void) {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }

  return {
    owner,
    tick,
    relay: emit,
    interrupt: (jobId) => running.get(jobId)?.abort(new Aborted('cancelled in another process')),
    submit,
    cancel,
    retry,
    decide,
    job: (id) => jobView(store, id),
    latestJobFor: (deployment) => { const id = latestJobId(store, deployment); return id ? jobView(store, id) : undefined; },
    on,
    settled,
    start() {
      if (started) return;
      started = true;
      timer = setInterval(() => void tick(), pollMs);
      kick();
    },
    async stop() {
      started = false;
      if (timer) clearInterval(timer);
      for (const ac of running.values()) ac.abort(new Aborted('engine stopping'));
      const t0 = Date.now();
      while (running.size > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      // leave our jobs resumable by anyone at once
      db.update(jobs).set({ leaseExpiresAt: 0 }).where(and(eq(jobs.leaseOwner, owner), eq(jobs.state, 'running'))).run();
    },
  };
}
