/** Block Kit messages of the progress thread: parent checklist, step results, approval, failure. */
import type { ApprovalView, JobStepView, JobView } from '../jobs/types.ts';
import { redact } from '../redact.ts';
import { clip, codeBlock, duration, esc, mention, shortHash, tail, when } from './text.ts';

export type Block = Record<string, unknown>;
export interface Message extends Record<string, unknown> {
  text: string;
  blocks: Block[];
}

export { esc } from './text.ts';

const ICON: Record<string, string> = {
  pending: '⚪', running: '🔄', waiting_approval: '✋', prepared: '📝', succeeded: '✅', warned: '⚠️', skipped: '⏭️', failed: '❌', cancelled: '🚫',
  queued: '⏳',
};
const words = (state: string) => state.replace(/_/g, ' ');
const section = (block_id: string, text: string): Block => ({ type: 'section', block_id, text: { type: 'mrkdwn', text: clip(text, 3000) } });
const context = (block_id: string, text: string): Block => ({ type: 'context', block_id, elements: [{ type: 'mrkdwn', text: clip(text, 3000) }] });

export function stepLine(s: JobStepView, activity?: string): string {
  const took = s.durationMs !== undefined ? ` (${duration(s.durationMs)})` : '';
  const now = activity && s.state === 'running' ? ` · _${esc(clip(redact(activity), 150))}_` : '';
  return `${ICON[s.state] ?? '•'} ${s.number}. ${esc(s.title)} — ${words(s.state)}${took}${now}`;
}

/** The parent message: the eight-step checklist, updated in place. `activity` = latest progress line. */
export function checklistMessage(job: JobView, activity?: string): Message {
  const head = `Remote Execution setup for \`${esc(job.deployment)}\` — ${words(job.state)}`;
  const pending = job.approvals.find((a) => a.state === 'pending');
  const lines = [
    `*${head}*`,
    `Requested by ${mention(job.requestedBy)} · job \`${esc(job.id)}\` · attempt ${job.attempt}`,
    pending ? `✋ Waiting for approval: ${pending.approvals.length} of ${pending.required} (see thread)` : '',
    job.state === 'failed' && job.error ? `❌ ${esc(clip(redact(job.error), 500))}` : '',
  ].filter(Boolean);
  const took = job.startedAt && job.finishedAt ? ` · took ${duration(Date.parse(job.finishedAt) - Date.parse(job.startedAt))}` : '';
  return {
    text: clip(`${head} (job ${esc(job.id)})`, 3000),
    blocks: [
      section('head', lines.join('\n')),
      section('steps', job.steps.map((s) => stepLine(s, activity)).join('\n') || '_no steps_'),
      context('meta', `chart ${esc(job.chart)} · values hash \`${shortHash(job.valuesHash)}\`${took}`),
    ],
  };
}

/** One thread reply per step result (the start of a step shows in the parent only). */
export function stepResultMessage(job: JobView, stepId: string): Message {
  const s = job.steps.find((x) => x.stepId === stepId);
  const title = s ? `${s.number}. ${esc(s.title)}` : esc(stepId);
  const verb = s?.state === 'prepared' ? 'prepared (applied with step 2 after its approval)' : s?.state === 'warned' ? 'finished with warnings' : s?.state === 'skipped' ? 'skipped' : 'done';
  const took = s?.durationMs !== undefined ? ` in ${duration(s.durationMs)}` : '';
  const lines = [`${ICON[s?.state ?? 'succeeded']} *${title}* ${verb}${took}`];
  if (s?.summary) lines.push(esc(clip(redact(s.summary), 1500)));
  for (const w of (s?.warnings ?? []).slice(0, 5)) lines.push(`⚠️ ${esc(clip(redact(w), 300))}`);
  const text = lines.join('\n');
  return { text: clip(`${s?.number ?? ''}. ${esc(s?.title ?? stepId)} ${verb}`, 3000), blocks: [section('result', text)] };
}

export function approvalMessage(job: JobView, a: ApprovalView, decidedAt?: string): Message {
  const fields = Object.entries(a.facts)
    .slice(0, 10)
    .map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${esc(k)}*\n${esc(redact(String(v)))}`, 2000) }));
  const keys = a.changedKeys.length ? a.changedKeys.map((k) => `\`${esc(k)}\``).join(', ') : '_none_';
  const blocks: Block[] = [
    section('approval_head', `✋ *${esc(a.title)}* for \`${esc(job.deployment)}\` needs ${a.required} approval${a.required > 1 ? 's' : ''}\nRequested by ${mention(job.requestedBy)} · expires ${when(a.expiresAt)}`),
  ];
  if (fields.length) blocks.push({ type: 'section', block_id: 'approval_facts', fields });
  blocks.push(section('approval_keys', `*Changed keys (${a.changedKeys.length}):* ${keys}`));
  if (a.diffText.trim()) blocks.push(section('approval_diff', codeBlock(redact(a.diffText), 2900)));
  blocks.push(context('approval_hash', `approval hash \`${esc(a.hash)}\` · values hash \`${shortHash(job.valuesHash)}\``));
  const count = `${a.approvals.length} of ${a.required} approvals`;
  const voters = a.approvals.map((x) => `${mention(x.user)} ${when(x.at)}`).join(', ');
  if (a.state === 'pending') {
    blocks.push(context('approval_count', `${count}${voters ? ' — ' + voters : ''}`));
    const value = `${a.id}|${a.hash}`;
    blocks.push({
      type: 'actions',
      block_id: 'approval_actions',
      elements: [
        { type: 'button', action_id: 're_approve', text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value },
        { type: 'button', action_id: 're_reject', text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value },
      ],
    });
  } else {
    const result =
      a.state === 'approved'
        ? `✅ Approved by ${voters}`
        : a.state === 'rejected'
          ? `⛔ Rejected by ${mention(a.rejectedBy ?? '?')}${decidedAt ? ' ' + when(decidedAt) : ''}${voters ? ` (approved before: ${voters})` : ''}`
          : a.state === 'expired'
            ? `⌛ Expired ${when(a.expiresAt)} with ${count}`
            : `↪️ Superseded${decidedAt ? ' ' + when(decidedAt) : ''}: the job was cancelled or its values changed`;
    blocks.push(context('approval_result', result));
  }
  return { text: clip(`${esc(a.title)} for ${esc(job.deployment)} — ${a.state === 'pending' ? count : a.state}`, 3000), blocks };
}

export function failureMessage(job: JobView, stepId: string | undefined, error: string, logTail?: string): Message {
  const step = job.steps.find((s) => s.stepId === stepId);
  const title = step ? `${step.number}. ${step.title}` : 'the job';
  const blocks: Block[] = [section('failure', `❌ ${mention(job.requestedBy)} step *${esc(title)}* of \`${esc(job.deployment)}\` failed (attempt ${job.attempt}):\n${esc(clip(redact(error), 1500))}`)];
  if (logTail?.trim()) blocks.push(section('failure_tail', codeBlock(tail(redact(logTail), 15, 2500), 2900)));
  blocks.push({
    type: 'actions',
    block_id: 'failure_actions',
    elements: [
      { type: 'button', action_id: 're_retry', text: { type: 'plain_text', text: 'Retry' }, style: 'primary', value: job.id },
      {
        type: 'button', action_id: 're_cancel', text: { type: 'plain_text', text: 'Cancel' }, style: 'danger', value: job.id,
        confirm: {
          title: { type: 'plain_text', text: 'Cancel this job?' },
          text: { type: 'plain_text', text: clip(`The setup of ${job.deployment} stops and its lock is released. Steps already done are not undone.`, 300) },
          confirm: { type: 'plain_text', text: 'Cancel job' },
          deny: { type: 'plain_text', text: 'Keep it' },
        },
      },
    ],
  });
  return { text: clip(`Step ${esc(title)} of ${esc(job.deployment)} failed: ${esc(redact(error))}`, 3000), blocks };
}

/** The failure reply once someone acted on it: same text, buttons replaced by what happened. */
export function resolvedFailure(original: Record<string, unknown> | undefined, outcome: string): Message {
  const blocks = ((original?.blocks as Block[] | undefined) ?? []).filter((b) => b.block_id !== 'failure_actions');
  blocks.push(context('failure_outcome', outcome));
  return { text: String(original?.text ?? 'Step failed'), blocks };
}

export function finalMessage(job: JobView): Message {
  const text =
    job.state === 'succeeded'
      ? `🎉 ${mention(job.requestedBy)} setup of \`${esc(job.deployment)}\` succeeded.`
      : `🚫 Setup of \`${esc(job.deployment)}\` cancelled${job.error ? `: ${esc(clip(redact(job.error), 500))}` : ''}.`;
  return { text: clip(text, 3000), blocks: [section('final', text)] };
}

export const HELP = [
  '*re-bot* — set up Astronomer Remote Execution agents',
  '`/re setup [deployment]` — open the setup wizard',
  '`/re status <deployment>` — latest job, steps, approvals, Helm revision, lock',
  '`/re history <deployment>` — recent jobs',
  '`/re cancel <job>` — cancel a job',
  '`/re retry <job>` — retry a failed job from the failed step',
  '`/re help` — this help',
].join('\n');
