import type { JobEngine, JobEvent, JobView } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../redact.ts';
import type { OutboxWriter } from './outbox.ts';
import { esc, mentionIds } from './text.ts';
import { approvalMessage, checklistMessage, failureMessage, finalMessage, resolvedFailure, stepResultMessage } from './blocks.ts';

/**
 * Idempotency keys: one logical Slack message ↔ one key, stable across restarts, so a replayed event
 * never posts twice. Posts per job: parent + one result per step + approvals + failures + final.
 */
export const parentKey = (jobId: string) => `job:${jobId}:parent`;
export const approvalKey = (jobId: string, approvalId: string) => `job:${jobId}:approval:${approvalId}`;
export const stepKey = (jobId: string, attempt: number, stepId: string) => `job:${jobId}:a${attempt}:step:${stepId}`;
export const failureKey = (jobId: string, attempt: number) => `job:${jobId}:a${attempt}:failure`;
export const finalKey = (jobId: string, attempt: number) => `job:${jobId}:a${attempt}:final`;

const RETRIED = '🔁 Retried';
const LINE_RENDER_MS = 250;

/**
 * Replace the Retry/Cancel buttons of an attempt's failure reply by what happened to it. `generic`: the retry as
 * the job event tells it, which does not replace a retry outcome already written (the Slack click's, naming who
 * retried: the event's handling and the click's answer both read the outbox first, so either may write last).
 */
export async function settleFailure(outbox: OutboxWriter, job: JobView, attempt: number, outcome: string, generic = false): Promise<void> {
  if (job.origin.kind !== 'slack') return;
  const fk = failureKey(job.id, attempt);
  if (!(await outbox.has(fk))) return;
  const args = await outbox.argsOf(fk);
  const said = ((args?.blocks ?? []) as Array<{ block_id?: string; elements?: Array<{ text?: string }> }>).find((b) => b.block_id === 'failure_outcome')?.elements?.[0]?.text;
  if (generic && said?.startsWith(RETRIED)) return;
  outbox.update(fk, job.origin.channel, resolvedFailure(args, outcome));
}

/**
 * Events the job worker relayed to the Slack process (src/app/job-worker.ts): the worker that ran the job has
 * rendered them into the shared outbox already, and what it sends is a lean copy that could not be rendered.
 */
const renderedByWorker = new WeakSet<JobEvent>();
export function renderedElsewhere<E extends JobEvent>(e: E): E {
  renderedByWorker.add(e);
  return e;
}

/**
 * Turns job events into outbox writes: parent checklist updated in place, results in its thread. Runs where
 * the event happens: in the job worker for its jobs' events (enqueue-only outbox), in the Slack process for
 * the decisions taken there (submit, approve, retry, cancel) and for every event when jobs run in-process.
 */
export function attachProgress(engine: JobEngine, outbox: OutboxWriter, logger?: Logger, opts: { approvers?: string[] } = {}): () => Promise<void> {
  const approvers = opts.approvers;
  // latest progress line per job; shown in the parent only (it would blow the post budget as replies)
  const activity = new Map<string, string>();
  // The parent's update is rendered once per job per event-loop turn, from the newest event's job view and
  // progress line: a batch of events (the worker's relayed ones come 20 at a time) costs one Block Kit
  // rendering and one outbox write per job instead of one per event. What the parent ends up showing is the
  // same: the last event's state. Its first post is not deferred (replies are threaded under it).
  const dirty = new Map<string, { job: JobView; channel: string; line?: string }>();
  let flushScheduled = false;
  let lineTimer: NodeJS.Timeout | undefined;
  const scheduleFlush = () => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  };
  const flush = () => {
    flushScheduled = false;
    for (const [id, d] of dirty) {
      dirty.delete(id);
      try {
        outbox.update(parentKey(id), d.channel, checklistMessage(d.job, d.line, approvers));
      } catch (err) {
        logger?.error({ err: errorMessage(err), jobId: id }, 'progress: could not enqueue the checklist update');
      }
    }
  };

  // parents known to be in the outbox (posted here, or found there): no read for them on every event
  const parents = new Set<string>();

  async function handle(e: JobEvent): Promise<void> {
    const job = e.job;
    if (job.origin.kind !== 'slack') return;
    const channel = job.origin.channel;
    const pk = parentKey(job.id);
    if (e.type === 'step.started' || e.type === 'step.finished' || e.type === 'step.failed' || e.type === 'step.skipped') activity.delete(job.id);
    if (e.type === 'step.progress') activity.set(job.id, e.message);
    const finished = e.type === 'job.succeeded' || e.type === 'job.failed' || e.type === 'job.cancelled';
    const known = parents.has(pk) || (await outbox.has(pk));
    parents.add(pk);
    if (finished) parents.delete(pk); // a retry asks again
    if (!known) {
      dirty.delete(job.id);
      outbox.post(pk, channel, checklistMessage(job, activity.get(job.id), approvers));
    } else if (finished) {
      // written now, before the final reply below: a finished job gets no later event, so a kill -9 between a
      // deferred update and the reply would leave its checklist showing a running step for good
      dirty.delete(job.id);
      outbox.update(pk, channel, checklistMessage(job, activity.get(job.id), approvers));
    } else {
      dirty.delete(job.id); // re-inserted: flushed in the order the jobs last changed
      dirty.set(job.id, { job, channel, line: activity.get(job.id) });
      if (e.type !== 'step.progress') scheduleFlush();
      else if (!lineTimer) {
        // a line alone changes only the parent's activity text, and Slack shows an update of it once per pacing
        // interval at most: render it at most every LINE_RENDER_MS, not once per helm output line
        lineTimer = setTimeout(() => {
          lineTimer = undefined;
          scheduleFlush();
        }, LINE_RENDER_MS);
        lineTimer.unref?.();
      }
    }
    const reply = (key: string, msg: Record<string, unknown>, priority = 0) => outbox.post(key, channel, msg, pk, priority);

    switch (e.type) {
      case 'job.queued':
        if (job.attempt > 1) await settleFailure(outbox, job, job.attempt - 1, `${RETRIED} — attempt ${job.attempt} is running.`, true);
        break;
      case 'step.finished':
      case 'step.skipped':
        // a prepared step gets its one reply when the step that applies it has reached the cluster
        if (job.steps.find((s) => s.stepId === e.stepId)?.state === 'prepared') break;
        reply(stepKey(job.id, job.attempt, e.stepId), stepResultMessage(job, e.stepId));
        break;
      case 'step.failed':
        reply(failureKey(job.id, job.attempt), { ...failureMessage(job, e.stepId, e.error, e.logTail, e.hint), reply_broadcast: true });
        break;
      case 'job.failed': {
        // a rejection or an expired approval fails the job without a step.failed event; same key, so no double post
        const step = job.steps.find((s) => s.state === 'failed');
        reply(failureKey(job.id, job.attempt), { ...failureMessage(job, step?.stepId, job.error ?? 'failed'), reply_broadcast: true });
        await refreshApprovals(job, channel);
        activity.delete(job.id);
        break;
      }
      case 'approval.requested':
        // broadcast, so the channel (and the mentioned approvers) see it; ahead of step replies still queued
        reply(approvalKey(job.id, e.approval.id), { ...approvalMessage(job, e.approval, undefined, approvers), reply_broadcast: true }, 1);
        break;
      case 'approval.updated':
        outbox.update(approvalKey(job.id, e.approval.id), channel, approvalMessage(job, e.approval, new Date().toISOString(), approvers));
        break;
      case 'job.succeeded':
        reply(finalKey(job.id, job.attempt), finalMessage(job));
        activity.delete(job.id);
        break;
      case 'job.cancelled':
        await settleFailure(outbox, job, job.attempt, `🚫 ${job.error ? mentionIds(esc(job.error.charAt(0).toUpperCase() + job.error.slice(1))) : 'Cancelled'}.`);
        reply(finalKey(job.id, job.attempt), finalMessage(job));
        await refreshApprovals(job, channel);
        activity.delete(job.id);
        break;
    }
  }

  /** a cancelled job supersedes its pending approval without an event: take the buttons away */
  async function refreshApprovals(job: JobView, channel: string): Promise<void> {
    for (const a of job.approvals) {
      if (a.state !== 'pending' && (await outbox.has(approvalKey(job.id, a.id)))) outbox.update(approvalKey(job.id, a.id), channel, approvalMessage(job, a, new Date().toISOString(), approvers));
    }
  }

  // events are handled one after the other, in the order they came (handling reads the outbox: async)
  let handled: Promise<void> = Promise.resolve();
  const off = engine.on((e) => {
    if (renderedByWorker.has(e)) return;
    handled = handled.then(() =>
      handle(e).catch((err) => {
        // never let Slack bookkeeping break the engine's event loop
        logger?.error({ err: errorMessage(err), event: e.type, jobId: e.job.id }, 'progress: could not enqueue Slack writes');
      }),
    );
  });
  /** resolves once the events already received are written */
  return async () => {
    off();
    await handled;
    if (lineTimer) clearTimeout(lineTimer);
    lineTimer = undefined;
    flush(); // nothing rendered-but-unwritten is lost at stop
    await outbox.flushed();
  };
}
