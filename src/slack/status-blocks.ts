/** `/re status` and `/re history` answers. Built from stored state only (StatusReport from src/jobs/status.ts). */
import { reportFromJob, type StatusReport } from '../jobs/report.ts';
import { redact } from '../redact.ts';
import type { Block, Message } from './blocks.ts';
import { clip, duration, esc, mention, mentionIds, when } from './text.ts';

export { reportFromJob, type StatusReport } from '../jobs/report.ts';

const ICON: Record<string, string> = { pending: '⚪', running: '🔄', waiting_approval: '✋', prepared: '📝', succeeded: '✅', warned: '⚠️', skipped: '⏭️', failed: '❌', cancelled: '🚫' };

/** `threadUrl`: the latest job's Slack thread, when the bot posted one */
export function statusMessage(r: StatusReport, threadUrl?: string): Message {
  if (!r.job) {
    const text = `\`${esc(r.deployment)}\` is known but has no setup job yet. Start one with \`/re setup ${esc(r.deployment)}\`.`;
    return { text, blocks: [{ type: 'section', block_id: 'status_head', text: { type: 'mrkdwn', text } }] };
  }
  const j = r.job;
  const approvedBy = [...new Set(r.approvals.flatMap((a) => a.approvedBy))];
  const head = [
    `*${esc(r.deployment)}* — latest job \`${esc(j.id)}\` *${j.state.replace(/_/g, ' ')}* (attempt ${j.attempt})`,
    `Requested by ${mention(j.requestedBy)} ${when(j.createdAt)}${approvedBy.length ? ` · approved by ${approvedBy.map(mention).join(', ')}` : ''}`,
    ...r.approvals.filter((a) => a.state === 'rejected').map((a) => `Rejected by ${mention(a.rejectedBy ?? '?')}: ${esc(a.title)}`),
    j.error ? `Error: ${mentionIds(esc(clip(redact(j.error), 600)))}` : '',
    r.agentToken?.warning ? `:warning: ${esc(r.agentToken.warning)}` : '',
    threadUrl ? `<${threadUrl}|Open the job's thread>` : '',
  ].filter(Boolean).join('\n');
  const live = r.live
    ? `revision ${r.live.helmRevision ?? '?'} (${esc(r.live.chart)}) from job \`${esc(r.live.jobId)}\`${r.live.finishedAt ? ` ${when(r.live.finishedAt)}` : ''}${r.live.approvedBy.length ? `, approved by ${r.live.approvedBy.map(mention).join(', ')}` : ''}`
    : 'none: no setup of this deployment has succeeded yet';
  const steps = r.steps.map((s) => `${ICON[s.state] ?? '•'} ${s.number}. ${esc(s.title)} — ${s.state.replace(/_/g, ' ')}${s.durationMs !== undefined ? ` (${duration(s.durationMs)})` : ''}`).join('\n');
  const facts = [
    ['Live release', live],
    ['Chart', r.chart ?? '—'],
    ['Client image', r.clientImage ?? '— (agent image)'],
    ['Values hash', r.valuesHash ? `\`${r.valuesHash}\`` : '—'],
    ['Helm revision', r.helmRevision !== undefined ? String(r.helmRevision) : '—'],
    ...(r.agentToken ? [['Agent token', `${r.agentToken.name}: ${r.agentToken.expiry}`]] : []),
    ['Lock', r.lock ? `held by job \`${r.lock.jobId}\` (${mention(r.lock.requestedBy)}, ${r.lock.state.replace(/_/g, ' ')} since ${when(r.lock.since)})` : 'free'],
  ];
  const blocks: Block[] = [
    { type: 'section', block_id: 'status_head', text: { type: 'mrkdwn', text: clip(head, 3000) } },
    { type: 'section', block_id: 'status_steps', text: { type: 'mrkdwn', text: clip(steps || '_no steps_', 3000) } },
    { type: 'section', block_id: 'status_facts', fields: facts.map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${k}*\n${k === 'Values hash' || k === 'Lock' || k === 'Live release' ? v : esc(v)}`, 2000) })) },
  ];
  // the fallback text carries the same facts (notifications, screen readers, clients without blocks)
  const text = clip([head, steps, ...facts.map(([k, v]) => `${k}: ${v}`)].join('\n'), 3900);
  return { text, blocks };
}

export interface HistoryRow {
  id: string;
  state: string;
  createdAt: string;
  requestedBy: string;
}

export function historyMessage(deployment: string, rows: HistoryRow[]): Message {
  const text = rows.length
    ? `*Recent jobs for \`${esc(deployment)}\`*\n` + rows.slice(0, 20).map((r) => `\`${esc(r.id)}\` ${r.state.replace(/_/g, ' ')} ${when(r.createdAt)} by ${mention(r.requestedBy)}`).join('\n')
    : `No jobs recorded for \`${esc(deployment)}\`.`;
  return { text: clip(text, 3000), blocks: [{ type: 'section', block_id: 'history', text: { type: 'mrkdwn', text: clip(text, 3000) } }] };
}
