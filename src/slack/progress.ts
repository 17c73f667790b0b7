import type { JobEngine, JobEvent } from '../jobs/types.ts';
import type { Outbox } from './outbox.ts';
import { approvalMessage, checklistMessage, failureMessage, esc } from './blocks.ts';
import { redact } from '../redact.ts';

/** Idempotency keys: one logical Slack message ↔ one key, stable across restarts. */
export const parentKey = (jobId: string) => `job:${jobId}:parent`;
export const approvalKey = (jobId: string, approvalId: string) => `job:${jobId}:approval:${approvalId}`;

/** Turns job events into outbox writes: parent checklist updated in place, step replies in its thread. */
export function attachProgress(engine: JobEngine, outbox: Outbox): () => void {
  return engine.on((e: JobEvent) => {
    const job = e.job;
    if (job.origin.kind !== 'slack') return;
    const channel = job.origin.channel;
    const pk = parentKey(job.id);
    const msg = checklistMessage(job);
    if (e.type === 'job.queued' && !outbox.tsOf(pk)) outbox.post(pk, channel, msg);
    else outbox.update(pk, channel, msg);
    const step = 'stepId' in e ? job.steps.find((s) => s.stepId === e.stepId) : undefined;
    const reply = (suffix: string, args: Record<string, unknown>) => outbox.post(`job:${job.id}:a${job.attempt}:${suffix}`, channel, args, pk);
    switch (e.type) {
      case 'step.started':
        reply(`${e.stepId}:started`, { text: `🔄 ${step?.number}. ${esc(step?.title ?? e.stepId)} started` });
        break;
      case 'step.finished':
        reply(`${e.stepId}:finished`, { text: `✅ ${step?.number}. ${esc(step?.title ?? e.stepId)} ${step?.state === 'warned' ? 'finished with warnings' : 'done'}${step?.summary ? ': ' + esc(redact(step.summary)) : ''}` });
        break;
      case 'step.failed':
        reply(`${e.stepId}:failed`, { ...failureMessage(job, e.stepId, e.error, e.logTail), reply_broadcast: true });
        break;
      case 'approval.requested':
        outbox.post(approvalKey(job.id, e.approval.id), channel, approvalMessage(job, e.approval), pk);
        break;
      case 'approval.updated':
        outbox.update(approvalKey(job.id, e.approval.id), channel, approvalMessage(job, e.approval));
        break;
      case 'job.succeeded':
        reply('succeeded', { text: `🎉 Setup of \`${esc(job.deployment)}\` succeeded.` });
        break;
      case 'job.cancelled':
        reply('cancelled', { text: `🚫 Job ${job.id} cancelled.` });
        break;
    }
  });
}
