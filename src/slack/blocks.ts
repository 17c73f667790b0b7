import type { ApprovalView, JobStepView, JobView } from '../jobs/types.ts';
import { redact } from '../redact.ts';

type Block = Record<string, unknown>;

/** escape user text for mrkdwn: only &, <, > (slack-platform.md §4) */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

const ICON: Record<string, string> = {
  pending: '⚪', running: '🔄', waiting_approval: '✋', succeeded: '✅', warned: '⚠️', skipped: '⏭️', failed: '❌', cancelled: '🚫',
};

function dur(ms?: number): string {
  if (ms === undefined) return '';
  return ms < 1000 ? ` (${ms} ms)` : ` (${(ms / 1000).toFixed(1)} s)`;
}

export function stepLine(s: JobStepView): string {
  return `${ICON[s.state] ?? '•'} ${s.number}. ${esc(s.title)} — ${s.state.replace('_', ' ')}${dur(s.durationMs)}`;
}

export function checklistMessage(job: JobView): { text: string; blocks: Block[] } {
  const head = `Remote Execution setup for \`${esc(job.deployment)}\` — ${job.state.replace('_', ' ')}`;
  return {
    text: clip(`${head} (job ${job.id})`, 3000),
    blocks: [
      { type: 'section', block_id: 'head', text: { type: 'mrkdwn', text: clip(`*${head}*\nRequested by <@${job.requestedBy}> · job \`${job.id}\` · attempt ${job.attempt}`, 3000) } },
      { type: 'section', block_id: 'steps', text: { type: 'mrkdwn', text: clip(job.steps.map(stepLine).join('\n') || '_no steps_', 3000) } },
      { type: 'context', block_id: 'meta', elements: [{ type: 'mrkdwn', text: clip(`chart ${esc(job.chart)} · values hash \`${job.valuesHash.slice(0, 12)}\``, 3000) }] },
    ],
  };
}

export function approvalMessage(job: JobView, a: ApprovalView): { text: string; blocks: Block[] } {
  const facts = Object.entries(a.facts).map(([k, v]) => `• ${esc(k)}: ${esc(redact(v))}`).join('\n');
  const keys = a.changedKeys.length ? a.changedKeys.map((k) => `\`${esc(k)}\``).join(', ') : '_none_';
  const blocks: Block[] = [
    { type: 'section', block_id: 'approval_head', text: { type: 'mrkdwn', text: clip(`*${esc(a.title)}* for \`${esc(job.deployment)}\`\nValues hash \`${a.hash.slice(0, 16)}\`\nChanged keys: ${keys}\n${facts}`, 3000) } },
  ];
  if (a.diffText) blocks.push({ type: 'section', block_id: 'approval_diff', text: { type: 'mrkdwn', text: clip('```' + redact(a.diffText) + '```', 3000) } });
  const count = `${a.approvals.length} of ${a.required} approvals`;
  if (a.state === 'pending') {
    blocks.push({ type: 'context', block_id: 'approval_count', elements: [{ type: 'mrkdwn', text: `${count}${a.approvals.length ? ' — ' + a.approvals.map((x) => `<@${x.user}>`).join(', ') : ''}` }] });
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
    const who =
      a.state === 'approved'
        ? `✅ Approved by ${a.approvals.map((x) => `<@${x.user}> at ${x.at}`).join(', ')}`
        : a.state === 'rejected'
          ? `⛔ Rejected by <@${a.rejectedBy ?? '?'}>`
          : `Approval ${a.state}`;
    blocks.push({ type: 'context', block_id: 'approval_result', elements: [{ type: 'mrkdwn', text: clip(who, 3000) }] });
  }
  return { text: `${a.title} — ${a.state === 'pending' ? count : a.state}`, blocks };
}

export function failureMessage(job: JobView, stepId: string, error: string, logTail?: string): { text: string; blocks: Block[] } {
  const step = job.steps.find((s) => s.stepId === stepId);
  const title = step ? `${step.number}. ${step.title}` : stepId;
  const tail = logTail ? '\n```' + clip(redact(logTail).split('\n').slice(-15).join('\n'), 2500) + '```' : '';
  return {
    text: clip(`Step ${title} failed: ${redact(error)}`, 3000),
    blocks: [
      { type: 'section', block_id: 'failure', text: { type: 'mrkdwn', text: clip(`❌ <@${job.requestedBy}> step *${esc(title)}* failed: ${esc(redact(error))}${tail}`, 3000) } },
      {
        type: 'actions',
        block_id: 'failure_actions',
        elements: [
          { type: 'button', action_id: 're_retry', text: { type: 'plain_text', text: 'Retry' }, style: 'primary', value: job.id },
          { type: 'button', action_id: 're_cancel', text: { type: 'plain_text', text: 'Cancel' }, style: 'danger', value: job.id },
        ],
      },
    ],
  };
}

export const HELP = [
  '*re-bot* — set up Astronomer Remote Execution agents',
  '`/re setup [deployment]` — open the setup wizard',
  '`/re status <deployment>` — latest job, steps, approvals, lock',
  '`/re history <deployment>` — recent jobs',
  '`/re cancel <job>` — cancel a job',
  '`/re retry <job>` — retry a failed job from the failed step',
  '`/re help` — this help',
].join('\n');

export function statusText(job: JobView | undefined, deployment: string): string {
  if (!job) return `No setup job recorded for \`${esc(deployment)}\`.`;
  const approved = job.approvals.flatMap((a) => a.approvals.map((x) => `<@${x.user}>`));
  return clip(
    [
      `*${esc(job.deployment)}* — latest job \`${job.id}\` ${job.state.replace('_', ' ')} (attempt ${job.attempt})`,
      `Requested by <@${job.requestedBy}>${approved.length ? ' · approved by ' + approved.join(', ') : ''}`,
      `Chart ${esc(job.chart)} · values hash \`${job.valuesHash.slice(0, 12)}\``,
      ...job.steps.map(stepLine),
      job.error ? `Error: ${esc(redact(job.error))}` : '',
    ]
      .filter(Boolean)
      .join('\n'),
    3000,
  );
}
