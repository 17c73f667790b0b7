/**
 * The step runner (as Backstage's NunjucksWorkflowRunner.executeStep): builds one step's StepContext with its
 * persisted checkpoint, runs the handler, and maps what happened to step/job rows and events — an outcome
 * (succeeded/warned/skipped, or `prepared` until the step that applies it completes), a failure, a
 * suspension for approval, or an abort (cancel/stop).
 */
import { and, asc, eq } from 'drizzle-orm';
import { errorMessage, redact, redactDeep } from '../redact.ts';
import { logger as rootLogger, type Logger } from '../log.ts';
import type { Infra } from '../infra/types.ts';
import type { SecretRef } from '../spec/schema.ts';
import type { Plan } from '../spec/plan.ts';
import { StepFailure, type ApprovalGrant, type ApprovalRequest, type StepContext, type StepHandler } from '../checklist/types.ts';
import type { Store } from '../store/db.ts';
import { jobSteps } from '../store/schema.ts';
import type { AuditExtra, AuditSubject, Repository } from '../store/repo.ts';
import type { JobRow } from './queue.ts';
import type { JobEvent, JobView } from './types.ts';

export type StepRow = typeof jobSteps.$inferSelect;

export interface StepEnvironment {
  infra: Infra;
  resolveSecret(ref: SecretRef): Promise<string>;
  sealSecret?(value: string, purpose: string): Promise<string>;
  eraseSecret?(id: string): Promise<void>;
  log?: Logger;
}

/** Thrown inside a step by `requireApproval`; the engine parks the job in waiting_approval. */
export class SuspendForApproval extends Error {
  constructor(readonly approvalId: string) {
    super('waiting for approval');
    this.name = 'SuspendForApproval';
  }
}

/** The reason a job's AbortController fires: cancelled, lease lost, engine stopping. */
export class Aborted extends Error {}

/** `prepared`: the step's work is computed and waits for the step named in its `appliedWith` to reach the cluster. */
export const DONE_STEP = ['succeeded', 'warned', 'skipped', 'prepared'];
/** checkpoint key where the engine keeps a prepared step's final status until its applying step completes */
const PREPARED_KEY = 'engine.prepared';

export const stepWhere = (jobId: string, stepId: string) => and(eq(jobSteps.jobId, jobId), eq(jobSteps.stepId, stepId));

/** Writes columns of one step row. */
export function updateStep(store: Store, jobId: string, stepId: string, values: Partial<StepRow>): void {
  store.db.update(jobSteps).set(values).where(stepWhere(jobId, stepId)).run();
}

/** The first step, in execution order, that has not finished (undefined: the job is done). */
export function nextStep(store: Store, jobId: string): StepRow | undefined {
  return store.db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(asc(jobSteps.execOrder)).all()
    .find((s) => !DONE_STEP.includes(s.state));
}

export interface RunnerDeps {
  repo: Repository;
  /** this engine's lease owner id: every write of a running step is applied only while it holds the job */
  owner: string;
  handlers: ReadonlyMap<string, StepHandler>;
  buildContext: (job: JobView, stepId: string) => StepEnvironment | Promise<StepEnvironment>;
  now(): number;
  iso(): string;
  emit(e: JobEvent): void;
  view(jobId: string): Promise<JobView>;
  audit(j: AuditSubject, actor: string, action: string, extra?: AuditExtra): Promise<void>;
  requireApproval(job: JobRow, stepId: string, req: ApprovalRequest): Promise<ApprovalGrant>;
  failJob(jobId: string, error: string): Promise<void>;
}

/** Runs one step of a job this process holds. 'done': go on with the next step; 'stopped': the job left this runner. */
export async function runStep(d: RunnerDeps, job: JobRow, step: StepRow, ac: AbortController): Promise<'done' | 'stopped'> {
  const { repo } = d;
  const handler = d.handlers.get(step.stepId);
  const startedMs = d.now();
  const lease = { jobId: job.id, stepId: step.stepId, owner: d.owner };
  /** a write of this step under the lease; false (and the step aborted) when this engine no longer holds the job */
  const write = async (values: Partial<StepRow>) => {
    const ok = await repo.steps.writeLeased(lease, values);
    if (!ok && !ac.signal.aborted) ac.abort(new Aborted('job no longer held'));
    return ok;
  };
  if (!(await write({ state: 'running', attempt: step.attempt + 1, startedAt: d.iso(), finishedAt: null, durationMs: null, error: null }))) return 'stopped';
  d.emit({ type: 'step.started', job: await d.view(job.id), stepId: step.stepId });
  // checkpoint writes land in the order they were made: SQLite writes at once (set() persists before the step
  // goes on), PostgreSQL's pool could reorder concurrent statements, so each waits for the one before
  let lastWrite: Promise<unknown> = Promise.resolve();
  // a burst of progress lines (helm output) shares one job read while it is in flight: one view, not one per line
  let progressView: Promise<JobView> | undefined;
  const viewForProgress = () => (progressView ??= d.view(job.id).finally(() => (progressView = undefined)));
  const ordered = repo.dialect !== 'sqlite';
  try {
    if (!handler) throw new StepFailure(`no handler registered for step ${step.stepId}`);
    const env = await d.buildContext(await d.view(job.id), step.stepId);
    const checkpoint: Record<string, unknown> = { ...((step.checkpoint as Record<string, unknown> | null) ?? {}) };
    const saveCheckpoint = (key: string, value: unknown): Promise<unknown> => {
      checkpoint[key] = value;
      const values = { checkpoint: redactDeep(checkpoint) };
      const w = ordered ? lastWrite.then(() => write(values)) : write(values);
      lastWrite = w.catch((err) => rootLogger().warn({ jobId: job.id, stepId: step.stepId, err: errorMessage(err) }, 'checkpoint write failed'));
      return w;
    };
    // earlier steps finished before this one started: their outputs are read once, here
    const finished = new Map((await repo.steps.list(job.id)).filter((s) => DONE_STEP.includes(s.state)).map((s) => [s.stepId, s]));
    const ctx: StepContext = {
      jobId: job.id,
      attempt: job.attempt,
      spec: job.spec as StepContext['spec'],
      plan: job.plan as Plan,
      infra: env.infra,
      resolveSecret: env.resolveSecret,
      ...(env.sealSecret ? { sealSecret: env.sealSecret, eraseSecret: env.eraseSecret } : {}),
      checkpoint: {
        get: <T>(key: string) => checkpoint[key] as T | undefined,
        set: (key, value) => void saveCheckpoint(key, value),
        once: async <T>(key: string, fn: () => T | Promise<T>): Promise<T> => {
          if (key in checkpoint && checkpoint[key] !== undefined) return checkpoint[key] as T;
          const value = await fn();
          await saveCheckpoint(key, value);
          return value;
        },
      },
      audit: (action, details) => void d.audit(job, 'system', action, { details: { stepId: step.stepId, ...(redactDeep(details) as Record<string, unknown>) } })
        .catch((err) => rootLogger().warn({ jobId: job.id, action, err: errorMessage(err) }, 'audit write failed')),
      outputOf: (stepId) => {
        const s = finished.get(stepId);
        return s ? ((s.output as Record<string, unknown> | null) ?? undefined) : undefined;
      },
      progress: (message) => {
        const line = redact(message);
        void viewForProgress().then((v) => d.emit({ type: 'step.progress', job: v, stepId: step.stepId, message: line }), () => {});
      },
      requireApproval: (req) => d.requireApproval(job, step.stepId, req),
      signal: ac.signal,
      log: (env.log ?? rootLogger()).child({ jobId: job.id, stepId: step.stepId }),
    };
    const outcome = await handler.run(ctx);
    await lastWrite;
    if (ac.signal.aborted) return 'stopped';
    const applier = outcome.appliedWith && outcome.status !== 'skipped' ? await repo.steps.get(job.id, outcome.appliedWith) : undefined;
    // work another step applies is only `prepared` until that step has reached the cluster
    const waits = !!applier && !['succeeded', 'warned'].includes(applier.state);
    const state = waits ? 'prepared' : outcome.status;
    const promoted = await repo.steps.finish({ job, stepId: step.stepId, owner: d.owner }, {
      values: {
        state, summary: redact(outcome.summary), warnings: outcome.warnings?.map(redact) ?? null,
        output: outcome.output ? redactDeep(outcome.output) : null, finishedAt: d.iso(), durationMs: d.now() - startedMs,
        ...(waits ? { checkpoint: redactDeep({ ...checkpoint, [PREPARED_KEY]: { status: outcome.status, appliedWith: outcome.appliedWith } }) } : {}),
      },
      audit: { action: 'step.finished', extra: { result: state, details: { stepId: step.stepId, summary: redact(outcome.summary), ...(waits ? { appliedWith: outcome.appliedWith } : {}) } } },
      // a step that is itself only prepared has not reached the cluster: what it applies waits with it
      ...(outcome.status === 'skipped' || waits ? {} : { promote: (prepared: StepRow[]) => promotePrepared(prepared, step.stepId) }),
    });
    if (promoted === false) {
      if (!ac.signal.aborted) ac.abort(new Aborted('job no longer held'));
      return 'stopped';
    }
    d.emit({ type: outcome.status === 'skipped' ? 'step.skipped' : 'step.finished', job: await d.view(job.id), stepId: step.stepId });
    for (const id of promoted) d.emit({ type: 'step.finished', job: await d.view(job.id), stepId: id });
    return 'done';
  } catch (err) {
    if (err instanceof SuspendForApproval) return 'stopped';
    if (ac.signal.aborted) {
      // cancel already wrote the job state; a stop() leaves the step `running` so the next owner re-runs it
      return 'stopped';
    }
    await lastWrite;
    const message = redact(errorMessage(err));
    const logTail = err instanceof StepFailure && err.details.logTail ? redact(err.details.logTail) : undefined;
    const hint = err instanceof StepFailure && err.details.hint ? redact(err.details.hint) : undefined;
    if (!(await write({ state: 'failed', error: message, finishedAt: d.iso(), durationMs: d.now() - startedMs }))) return 'stopped';
    await d.audit(job, 'system', 'step.failed', { result: 'failed', details: { stepId: step.stepId, error: message } });
    d.emit({ type: 'step.failed', job: await d.view(job.id), stepId: step.stepId, error: message, ...(logTail ? { logTail } : {}), ...(hint ? { hint } : {}) });
    await d.failJob(job.id, `${step.title}: ${message}`);
    return 'stopped';
  }
}

/**
 * Among the job's `prepared` steps (execution order), those prepared to be applied with `stepId` take their own
 * final status now that it completed, and so do the steps prepared to be applied with those, in that order.
 */
function promotePrepared(prepared: StepRow[], stepId: string): Array<{ stepId: string; state: string; audit: { action: string; extra: AuditExtra } }> {
  const out: Array<{ stepId: string; state: string; audit: { action: string; extra: AuditExtra } }> = [];
  const taken = new Set<string>();
  const walk = (applied: string) => {
    for (const s of prepared) {
      if (taken.has(s.stepId)) continue;
      const p = ((s.checkpoint as Record<string, unknown> | null) ?? {})[PREPARED_KEY] as { status: string; appliedWith: string } | undefined;
      if (p?.appliedWith !== applied) continue;
      taken.add(s.stepId);
      out.push({ stepId: s.stepId, state: p.status, audit: { action: 'step.applied', extra: { result: p.status, details: { stepId: s.stepId, appliedWith: applied } } } });
      walk(s.stepId);
    }
  };
  walk(stepId);
  return out;
}
