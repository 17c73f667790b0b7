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
import type { AuditFn, JobRow } from './queue.ts';
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
  store: Store;
  handlers: ReadonlyMap<string, StepHandler>;
  buildContext: (job: JobView, stepId: string) => StepEnvironment | Promise<StepEnvironment>;
  now(): number;
  iso(): string;
  emit(e: JobEvent): void;
  view(jobId: string): JobView;
  audit: AuditFn;
  requireApproval(job: JobRow, stepId: string, req: ApprovalRequest): Promise<ApprovalGrant>;
  failJob(jobId: string, error: string): void;
}

/** Runs one step of a job this process holds. 'done': go on with the next step; 'stopped': the job left this runner. */
export async function runStep(d: RunnerDeps, job: JobRow, step: StepRow, ac: AbortController): Promise<'done' | 'stopped'> {
  const { store } = d;
  const { db } = store;
  const handler = d.handlers.get(step.stepId);
  const startedMs = d.now();
  updateStep(store, job.id, step.stepId, { state: 'running', attempt: step.attempt + 1, startedAt: d.iso(), finishedAt: null, durationMs: null, error: null });
  d.emit({ type: 'step.started', job: d.view(job.id), stepId: step.stepId });
  try {
    if (!handler) throw new StepFailure(`no handler registered for step ${step.stepId}`);
    const env = await d.buildContext(d.view(job.id), step.stepId);
    const checkpoint: Record<string, unknown> = { ...((step.checkpoint as Record<string, unknown> | null) ?? {}) };
    const saveCheckpoint = (key: string, value: unknown) => {
      checkpoint[key] = value;
      updateStep(store, job.id, step.stepId, { checkpoint: redactDeep(checkpoint) });
    };
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
        set: (key, value) => saveCheckpoint(key, value),
        once: async <T>(key: string, fn: () => T | Promise<T>): Promise<T> => {
          if (key in checkpoint && checkpoint[key] !== undefined) return checkpoint[key] as T;
          const value = await fn();
          saveCheckpoint(key, value);
          return value;
        },
      },
      audit: (action, details) => d.audit(job, 'system', action, { details: { stepId: step.stepId, ...(redactDeep(details) as Record<string, unknown>) } }),
      outputOf: (stepId) => {
        const s = db.select().from(jobSteps).where(stepWhere(job.id, stepId)).get();
        return s && DONE_STEP.includes(s.state) ? ((s.output as Record<string, unknown> | null) ?? undefined) : undefined;
      },
      progress: (message) => d.emit({ type: 'step.progress', job: d.view(job.id), stepId: step.stepId, message: redact(message) }),
      requireApproval: (req) => d.requireApproval(job, step.stepId, req),
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
      updateStep(store, job.id, step.stepId, {
        state, summary: redact(outcome.summary), warnings: outcome.warnings?.map(redact) ?? null,
        output: outcome.output ? redactDeep(outcome.output) : null, finishedAt: d.iso(), durationMs: d.now() - startedMs,
        ...(waits ? { checkpoint: redactDeep({ ...checkpoint, [PREPARED_KEY]: { status: outcome.status, appliedWith: outcome.appliedWith } }) } : {}),
      });
      d.audit(job, 'system', 'step.finished', { result: state, details: { stepId: step.stepId, summary: redact(outcome.summary), ...(waits ? { appliedWith: outcome.appliedWith } : {}) } });
      // a step that is itself only prepared has not reached the cluster: what it applies waits with it
      return outcome.status === 'skipped' || waits ? [] : promotePrepared(d, job, step.stepId);
    }).immediate();
    d.emit({ type: outcome.status === 'skipped' ? 'step.skipped' : 'step.finished', job: d.view(job.id), stepId: step.stepId });
    for (const id of promoted) d.emit({ type: 'step.finished', job: d.view(job.id), stepId: id });
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
    updateStep(store, job.id, step.stepId, { state: 'failed', error: message, finishedAt: d.iso(), durationMs: d.now() - startedMs });
    d.audit(job, 'system', 'step.failed', { result: 'failed', details: { stepId: step.stepId, error: message } });
    d.emit({ type: 'step.failed', job: d.view(job.id), stepId: step.stepId, error: message, ...(logTail ? { logTail } : {}), ...(hint ? { hint } : {}) });
    d.failJob(job.id, `${step.title}: ${message}`);
    return 'stopped';
  }
}

/**
 * Steps `prepared` to be applied with `stepId` take their own final status now that it completed, and so do the
 * steps prepared to be applied with those; returns their ids.
 */
function promotePrepared(d: RunnerDeps, job: JobRow, stepId: string): string[] {
  const out: string[] = [];
  for (const s of d.store.db.select().from(jobSteps).where(and(eq(jobSteps.jobId, job.id), eq(jobSteps.state, 'prepared'))).all()) {
    const cp = (s.checkpoint as Record<string, unknown> | null) ?? {};
    const p = cp[PREPARED_KEY] as { status: string; appliedWith: string } | undefined;
    if (p?.appliedWith !== stepId) continue;
    updateStep(d.store, job.id, s.stepId, { state: p.status });
    d.audit(job, 'system', 'step.applied', { result: p.status, details: { stepId: s.stepId, appliedWith: stepId } });
    out.push(s.stepId, ...promotePrepared(d, job, s.stepId));
  }
  return out;
}
