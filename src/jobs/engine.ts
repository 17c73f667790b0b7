/**
 * The job engine: the public API (submit, cancel, retry, decide, job views, events) and the worker loop
 * (reclaim expired leases, expire approvals, claim queued jobs, run their steps in execution order), on a
 * Repository (src/store/repo.ts), so the same engine runs on SQLite or PostgreSQL. Running one step is runner.ts;
 * approvals' events are approvals.ts.
 */
import { randomUUID } from 'node:crypto';
import { errorMessage, forgetScope, redact } from '../redact.ts';
import { logger as rootLogger } from '../log.ts';
const logger = { warn: (o: object, m: string) => rootLogger().warn(o, m), error: (o: object, m: string) => rootLogger().error(o, m), info: (o: object, m: string) => rootLogger().info(o, m) };
import { buildPlan, STEP_IDS, type Plan } from '../spec/plan.ts';
import type { StepHandler } from '../checklist/types.ts';
import type { Store } from '../store/db.ts';
import { sqliteRepository, type AuditExtra, type AuditSubject, type Repository } from '../store/repo.ts';
import type { ApprovalPolicy, JobEngine, JobEvent, JobState, JobView, SubmitInput } from './types.ts';
import { TERMINAL_STATES } from './views.ts';
import { newOwnerId, ownerIsDeadLocalProcess } from './lease.ts';
import { createApprovalFlow } from './approvals.ts';
import { Aborted, runStep, type StepEnvironment } from './runner.ts';

export { SuspendForApproval, type StepEnvironment } from './runner.ts';

export interface JobEngineOptions {
  /** where jobs live: the runtime's `Runtime.repo` (SQLite or PostgreSQL) */
  repo?: Repository;
  /** a SQLite store instead of `repo` (tests, the CLI): wrapped with sqliteRepository on the engine's clock */
  store?: Store;
  /**
   * One per step id the plans contain (checked when the engine is created). An engine without handlers
   * only submits, decides, cancels and reads jobs (a CLI command, the Slack process when a worker runs the
   * jobs): it cannot be started.
   */
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
  /**
   * Every step id `plan` can produce; each must have a handler, or createJobEngine throws. Default: STEP_IDS
   * with the default `plan`; none with a custom `plan` (then `submit` still refuses a plan whose applicable
   * steps have no handler, before anything runs).
   */
  stepIds?: readonly string[];
  /**
   * Job kinds besides the setup (`SubmitInput.kind`): each builds its own plan from the spec and runs its own
   * steps, whose handlers are among `handlers` (checked like the setup's when the engine runs jobs).
   */
  jobKinds?: Record<string, JobKind>;
}

export interface JobKind {
  plan: (spec: SubmitInput['spec']) => Plan;
  stepIds: readonly string[];
}

export type LocalJobEngine = JobEngine & {
  owner: string;
  tick(): Promise<void>;
  /** re-emit an event that happened in another process (the job worker) to this engine's listeners */
  relay(e: JobEvent): void;
  /** abort a job running in this process (its state was already written, e.g. cancelled by another process) */
  interrupt(jobId: string): void;
  /** the engine's database */
  repo: Repository;
  /** stops renewing leases (what a replica that hangs or dies looks like to the others): for tests */
  pauseHeartbeat(): void;
};

/** The handlers, by step id; throws (naming each) when a step id has none, or a handler is for no step or given twice. */
function handlerMap(handlers: StepHandler[], stepIds: readonly string[] | undefined): Map<string, StepHandler> {
  const byId = new Map<string, StepHandler>();
  const twice = new Set<string>();
  for (const h of handlers) {
    if (byId.has(h.id)) twice.add(h.id);
    byId.set(h.id, h);
  }
  if (handlers.length === 0 || !stepIds) {
    if (twice.size) throw new Error(`job engine: more than one handler for step(s) ${[...twice].join(', ')}`);
    return byId;
  }
  const problems: string[] = [];
  const missing = stepIds.filter((id) => !byId.has(id));
  if (missing.length) problems.push(`no handler for step(s) ${missing.join(', ')}`);
  const unknown = [...byId.keys()].filter((id) => !stepIds.includes(id));
  if (unknown.length) problems.push(`handler(s) for unknown step(s) ${unknown.join(', ')}`);
  if (twice.size) problems.push(`more than one handler for step(s) ${[...twice].join(', ')}`);
  if (problems.length) throw new Error(`job engine: ${problems.join('; ')} (the plan's steps are ${stepIds.join(', ')}); every step needs exactly one handler`);
  return byId;
}

export function createJobEngine(opts: JobEngineOptions): LocalJobEngine {
  const { policy } = opts;
  const concurrency = opts.concurrency ?? Number(process.env.RE_BOT_CONCURRENCY ?? 2);
  const leaseMs = opts.leaseMs ?? 30_000;
  const pollMs = opts.pollMs ?? 500;
  const owner = opts.owner ?? newOwnerId();
  const now = () => (opts.clock ? opts.clock() : Date.now());
  const iso = () => new Date(now()).toISOString();
  if (!opts.repo && !opts.store) throw new Error('job engine: needs a repository (or a SQLite store)');
  const repo = opts.repo ?? sqliteRepository(opts.store!, { clock: { now } });
  const planFor = opts.plan ?? buildPlan;
  const kinds = opts.jobKinds ?? {};
  const baseIds = opts.stepIds ?? (opts.plan ? undefined : STEP_IDS);
  const handlers = handlerMap(opts.handlers, baseIds && [...baseIds, ...Object.values(kinds).flatMap((k) => k.stepIds)]);
  const listeners = new Set<(e: JobEvent) => void>();
  const running = new Map<string, AbortController>();
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let ticking: Promise<void> | undefined;
  const heartbeat = { paused: false };

  const emit = (e: JobEvent) => {
    for (const l of listeners) {
      try { l(e); } catch (err) { logger.warn({ err: errorMessage(err) }, 'job event listener failed'); }
    }
  };
  const view = async (id: string) => (await repo.status.jobView(id))!;
  const audit = (j: AuditSubject, actor: string, action: string, extra?: AuditExtra) => repo.audit.ofJob(j, actor, action, extra);

  async function finishJob(jobId: string) {
    await repo.jobs.complete(jobId);
    await audit((await repo.jobs.get(jobId))!, 'system', 'job.finished', { result: 'succeeded' });
    emit({ type: 'job.succeeded', job: await view(jobId) });
    forgetScope(jobId); // the job's secrets (registered with scope = job id) stop costing redact() time
  }

  /** the events of a failed job whose row and `job.finished` audit row are written */
  async function jobFailed(jobId: string) {
    emit({ type: 'job.failed', job: await view(jobId) });
    forgetScope(jobId);
  }

  async function failJob(jobId: string, error: string) {
    await repo.jobs.fail(jobId, error);
    await audit((await repo.jobs.get(jobId))!, 'system', 'job.finished', { result: 'failed', details: { error } });
    await jobFailed(jobId);
  }

  const approvals = createApprovalFlow({ repo, policy, emit, view, jobFailed, kick: () => kick() });
  const runner = { repo, owner, handlers, buildContext: opts.buildContext, now, iso, emit, view, audit, failJob, requireApproval: approvals.requireApproval };

  async function submit(input: SubmitInput): Promise<JobView> {
    const kind = input.kind && input.kind !== 'setup' ? kinds[input.kind] : undefined;
    if (input.kind && input.kind !== 'setup' && !kind) throw new Error(`job engine: unknown job kind ${input.kind}; known: setup${Object.keys(kinds).map((k) => `, ${k}`).join('')}`);
    const plan = kind ? { ...kind.plan(input.spec), kind: input.kind } : planFor(input.spec);
    if (handlers.size > 0) {
      const missing = plan.steps.filter((s) => s.applies && !handlers.has(s.id)).map((s) => s.id);
      if (missing.length) throw new Error(`job engine: no handler for step(s) ${missing.join(', ')} of this plan; nothing was started`);
    }
    const id = `job_${randomUUID()}`;
    await repo.jobs.submit({ ...input, id, plan });
    const v = await view(id);
    emit({ type: 'job.queued', job: v });
    kick();
    return v;
  }

  // ---------- worker loop ----------
  function kick() {
    if (started) setImmediate(() => { if (started) void tick(); });
  }

  async function tick(): Promise<void> {
    if (ticking) return ticking;
    ticking = (async () => {
      try {
        // PostgreSQL's claim takes running jobs whose lease expired itself (a replica died)
        if (repo.dialect === 'sqlite') await reclaim();
        await approvals.expireApprovals();
        while (started && running.size < concurrency) {
          const jobId = await repo.jobs.claimNext({ owner, leaseMs, exclude: [...running.keys()] });
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

  /**
   * SQLite: jobs whose lease expired, or whose owner is a dead process on this host, go back to the queue (one
   * host: a pid names a process; PostgreSQL's replicas are on several hosts and wait for the lease to expire).
   */
  async function reclaim() {
    const t = now();
    for (const j of await repo.jobs.leased()) {
      if (j.leaseOwner === owner && running.has(j.id)) continue;
      const expired = (j.leaseExpiresAt ?? 0) <= t;
      if (!expired && !ownerIsDeadLocalProcess(j.leaseOwner!)) continue;
      await repo.jobs.requeueExpired(j.id, j.leaseOwner!);
      logger.info({ jobId: j.id, previousOwner: j.leaseOwner }, 'reclaimed job lease');
    }
  }

  async function runJob(jobId: string, ac: AbortController) {
    const renew = setInterval(() => {
      if (heartbeat.paused) return;
      repo.jobs.renewLease({ jobId, owner, leaseMs }).then(
        (held) => { if (!held) ac.abort(new Aborted('job no longer held')); },
        (err) => logger.warn({ jobId, err: errorMessage(err) }, 'job lease renewal failed'),
      );
    }, Math.max(50, Math.floor(leaseMs / 3)));
    renew.unref();
    try {
      const j0 = (await repo.jobs.get(jobId))!;
      await audit(j0, 'system', 'job.started', { details: { attempt: j0.attempt, owner } });
      emit({ type: 'job.started', job: await view(jobId) });
      for (;;) {
        if (ac.signal.aborted) return;
        const step = await repo.steps.next(jobId);
        if (!step) break;
        const r = await runStep(runner, (await repo.jobs.get(jobId))!, step, ac);
        if (r !== 'done') return;
      }
      if (ac.signal.aborted) return;
      await finishJob(jobId);
    } catch (err) {
      if (ac.signal.aborted) return;
      logger.error({ jobId, err: errorMessage(err) }, 'job runner crashed');
      await failJob(jobId, redact(errorMessage(err))).catch((e) => logger.error({ jobId, err: errorMessage(e) }, 'job failure not recorded'));
    } finally {
      clearInterval(renew);
    }
  }

  async function cancel(jobId: string, by: { id: string }): Promise<JobView> {
    const j = await repo.jobs.get(jobId);
    if (!j) throw new Error(`job ${jobId} not found`);
    if (TERMINAL_STATES.includes(j.state as JobState)) return view(jobId);
    await repo.jobs.cancel(j, by);
    running.get(jobId)?.abort(new Aborted(`cancelled by ${by.id}`));
    const v = await view(jobId);
    emit({ type: 'job.cancelled', job: v });
    forgetScope(jobId);
    return v;
  }

  async function retry(jobId: string, by: { id: string }): Promise<JobView> {
    const j = await repo.jobs.get(jobId);
    if (!j) throw new Error(`job ${jobId} not found`);
    if (j.state !== 'failed' && j.state !== 'cancelled') throw new Error(`job ${jobId} is ${j.state}; only failed or cancelled jobs can be retried`);
    await repo.jobs.retry(j, by);
    const v = await view(jobId);
    emit({ type: 'job.queued', job: v });
    kick();
    return v;
  }

  async function settled(jobId: string): Promise<JobView> {
    const done = (v: JobView | undefined): v is JobView => !!v && (TERMINAL_STATES.includes(v.state) || v.state === 'waiting_approval');
    const now0 = await repo.status.jobView(jobId);
    if (!now0) throw new Error(`job ${jobId} not found`);
    if (done(now0)) return now0;
    return new Promise((resolve) => {
      let finished = false;
      const check = async () => {
        const v = await repo.status.jobView(jobId).catch(() => undefined);
        if (finished || !done(v)) return;
        finished = true;
        off();
        clearInterval(poll);
        resolve(v);
      };
      const off = on(() => void check());
      // another process may be running the job: poll the DB as well
      const poll = setInterval(() => void check(), 200);
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
    decide: approvals.decide,
    job: (id) => repo.status.jobView(id),
    latestJobFor: async (deployment) => { const id = await repo.jobs.latestId(deployment); return id ? repo.status.jobView(id) : undefined; },
    repo,
    pauseHeartbeat: () => { heartbeat.paused = true; },
    on,
    settled,
    start() {
      if (started) return;
      if (handlers.size === 0) throw new Error('job engine: this engine has no step handlers (it only submits, decides and cancels jobs); start one with the checklist handlers to run jobs');
      started = true;
      timer = setInterval(() => void tick(), pollMs);
      kick();
    },
    async stop() {
      started = false;
      if (timer) clearInterval(timer);
      for (const ac of running.values()) ac.abort(new Aborted('engine stopping'));
      // a tick in flight still reads and claims: let it end before the caller closes the database
      await ticking;
      for (const ac of running.values()) ac.abort(new Aborted('engine stopping'));
      const t0 = Date.now();
      while (running.size > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      // leave our jobs resumable by anyone at once
      await repo.jobs.releaseLeases(owner);
    },
  };
}
