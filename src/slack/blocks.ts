/** Block Kit messages of the progress thread: parent checklist, step results, approval, failure. */
import type { ApprovalReview } from '../checklist/types.ts';
import type { ApprovalView, JobStepView, JobView } from '../jobs/types.ts';
import { redact } from '../redact.ts';
import { approversText, clip, codeBlock, duration, esc, mention, mentionIds, pages, reviewHash, shortHash, tail, when } from './text.ts';

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

/** every warning of the job, with the step it came from */
export function jobWarnings(job: JobView): Array<{ step: JobStepView; text: string }> {
  return job.steps.flatMap((s) => (s.warnings ?? []).map((text) => ({ step: s, text })));
}

/**
 * What the parent says the job is doing. Never backwards: between an approval and the worker claiming the
 * job again the engine says `queued`, which a reader would take for "nothing happened yet".
 */
export function jobHeadline(job: JobView, approvers?: string[]): string {
  const started = job.steps.some((s) => s.state !== 'pending') || job.approvals.some((a) => a.state === 'approved');
  if (job.state === 'queued') return started ? (job.attempt > 1 && !job.steps.some((s) => s.state === 'running') ? `retrying (attempt ${job.attempt})` : 'running') : 'queued';
  if (job.state === 'waiting_approval') {
    const pending = job.approvals.find((a) => a.state === 'pending');
    return `⏸ waiting for approval from ${approversText(pending?.approvers ?? approvers)}`;
  }
  if (job.state === 'succeeded') {
    const n = jobWarnings(job).length;
    return n ? `succeeded — ${n} action${n === 1 ? '' : 's'} for you` : 'succeeded';
  }
  return words(job.state);
}

/** The parent message: the eight-step checklist, updated in place. `activity` = latest progress line. */
export function checklistMessage(job: JobView, activity?: string, approvers?: string[]): Message {
  const head = `Remote Execution setup for \`${esc(job.deployment)}\` — ${jobHeadline(job, approvers)}`;
  const pending = job.approvals.find((a) => a.state === 'pending');
  const lines = [
    `*${head}*`,
    `Requested by ${mention(job.requestedBy)} · job \`${esc(job.id)}\` · attempt ${job.attempt}`,
    pending ? `✋ ${pending.approvals.length} of ${pending.required} approvals — review the request in the thread` : '',
    (job.state === 'failed' || job.state === 'cancelled') && job.error ? `${job.state === 'failed' ? '❌' : '🚫'} ${mentionIds(esc(clip(redact(job.error), 500)))}` : '',
  ].filter(Boolean);
  const took = job.startedAt && job.finishedAt ? ` · took ${duration(Date.parse(job.finishedAt) - Date.parse(job.startedAt))}` : '';
  return {
    text: clip(`Remote Execution setup for ${esc(job.deployment)} — ${jobHeadline(job, approvers)} (job ${esc(job.id)})`, 3000),
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

/** what a reader needs of a values change: `path`: old → new; secret-bearing keys never show a value */
export function valueLine(v: ApprovalReview['values'][number]): string {
  const val = (x: string) => `\`${esc(clip(redact(x), 120).replace(/`/g, "'"))}\``;
  const change = v.secret
    ? `«secret, ${v.old === undefined ? 'added' : v.new === undefined ? 'removed' : 'changed'}»`
    : `${v.old === undefined ? '_unset_' : val(v.old)} → ${v.new === undefined ? '_removed_' : val(v.new)}`;
  return `• \`${esc(v.path)}\`: ${change}`;
}

/** the keys a reviewer looks for first: image, backends, DAG bundles, where the agents connect */
const HEADLINE = ['image', 'secretBackend', 'xcomBackend', 'dagBundleConfigList', 'astroDeploymentAPIURL', 'namespace', 'commonEnv'];
export function orderedValues(values: ApprovalReview['values']): ApprovalReview['values'] {
  const rank = (path: string) => {
    const i = HEADLINE.findIndex((h) => path === h || path.startsWith(`${h}.`) || path.startsWith(`${h}[`));
    return i < 0 ? HEADLINE.length : i;
  };
  return values.map((v, i) => ({ v, i })).sort((a, b) => rank(a.v.path) - rank(b.v.path) || a.i - b.i).map((x) => x.v);
}

/** lines into at most `maxBlocks` sections; what does not fit is counted in an "…and N more" line */
function listSections(prefix: string, head: string, lines: string[], maxBlocks: number, more: string): Block[] {
  const out: Block[] = [];
  let cur = head;
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (cur.length + 1 + line.length > 2800) {
      if (out.length + 1 >= maxBlocks) break;
      out.push(section(`${prefix}_${out.length}`, cur));
      cur = '';
    }
    cur = cur ? `${cur}\n${line}` : line;
  }
  if (i < lines.length) cur += `\n_…and ${lines.length - i} more ${more}_`;
  out.push(section(`${prefix}_${out.length}`, cur));
  return out;
}

const presence = (p: string) => (p === 'new' ? '🆕 new' : 'existing');

/** the review: chart, release, namespace, image, values diff, Secrets, token URLs (whole diff: the modal) */
function reviewBlocks(a: ApprovalView, r: ApprovalReview): Block[] {
  const facts = [
    `*Chart* ${esc(r.chart.name)} ${esc(r.chart.version)} — ${presence(r.chart.state)}${r.chart.from ? ` (was ${esc(r.chart.from)})` : ''}`,
    `*Release* \`${esc(r.release.name)}\` — ${r.release.state === 'new' ? '🆕 new (helm install)' : `existing, revision ${r.release.revision ?? '?'}${r.release.adopts ? ' — installed without re-bot, adopted by this upgrade' : ''}`}`,
    `*Namespace* \`${esc(r.namespace.name)}\` — ${r.namespace.state === 'new' ? '🆕 new (created by re-bot)' : 'existing'}`,
  ];
  if (r.image) facts.push(`*Image* builds ${esc(r.image.build)} → pushes \`${esc(r.image.push)}\`${r.image.previous ? ` (agents now run \`${esc(r.image.previous)}\`)` : ''}`);
  if (r.server) facts.push(`*Server image* builds ${esc(r.server.build)} → creates a deploy on Astro Deployment \`${esc(r.server.deploymentId)}\`, pushes \`${esc(r.server.push)}\`, finalizes it and waits for HEALTHY`);
  const blocks: Block[] = [section('review_facts', facts.join('\n'))];
  const values = orderedValues(r.values).map(valueLine);
  blocks.push(...listSections('review_values', `*Values* — ${r.values.length} key${r.values.length === 1 ? '' : 's'} change${r.values.length === 1 ? 's' : ''}${r.values.length ? '' : ': _none_'}`, values, 3, 'keys: View full diff'));
  const writes = r.secrets.filter((x) => x.action !== 'unchanged');
  if (r.secrets.length) {
    const lines = r.secrets.map((x) => `• \`${esc(x.name)}\` (key${x.keys.length === 1 ? '' : 's'} ${x.keys.map((k) => `\`${esc(k)}\``).join(', ')}) — ${x.action === 'unchanged' ? 'unchanged' : `*${x.action}*`}${x.hash ? ` · content \`${esc(x.hash)}\`` : ''}`);
    blocks.push(...listSections('review_secrets', `*Secrets* — ${writes.length} to create or update`, lines, 1, 'Secrets'));
  }
  if (r.tokenUrls.length) blocks.push(...listSections('review_urls', '*Tokens are sent to*', r.tokenUrls.map((u) => `• ${esc(u)}`), 1, 'URLs'));
  void a;
  return blocks;
}

const approveConfirm = (job: JobView, a: ApprovalView) => ({
  title: { type: 'plain_text', text: 'Approve this change?' },
  text: { type: 'mrkdwn', text: clip(`${esc(a.title)} for \`${esc(job.deployment)}\`, approval hash \`${reviewHash(a.hash)}\`. re-bot applies it to the cluster right after the last approval.`, 300) },
  confirm: { type: 'plain_text', text: 'Approve' },
  deny: { type: 'plain_text', text: 'Not yet' },
});

/** the notification line: who asks whom to approve what */
export function approvalAsk(job: JobView, a: ApprovalView, approvers?: string[]): string {
  return `${mention(job.requestedBy)} asks ${approversText(a.approvers ?? approvers)} to approve ${esc(a.title)} for ${esc(job.deployment)}`;
}

export function approvalMessage(job: JobView, a: ApprovalView, decidedAt?: string, approvers?: string[]): Message {
  const ask = approvalAsk(job, a, approvers);
  const blocks: Block[] = [
    section('approval_head', `✋ ${ask}\n${a.required} approval${a.required > 1 ? 's' : ''} needed · the requester cannot approve · expires ${when(a.expiresAt)}`),
  ];
  if (a.review) blocks.push(...reviewBlocks(a, a.review));
  else {
    const fields = Object.entries(a.facts)
      .slice(0, 10)
      .map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${esc(k)}*\n${esc(redact(String(v)))}`, 2000) }));
    if (fields.length) blocks.push({ type: 'section', block_id: 'approval_facts', fields });
    const keys = a.changedKeys.length ? a.changedKeys.slice(0, 40).map((k) => `\`${esc(k)}\``).join(', ') + (a.changedKeys.length > 40 ? ` _…and ${a.changedKeys.length - 40} more_` : '') : '_none_';
    blocks.push(section('approval_keys', `*Changed keys (${a.changedKeys.length}):* ${keys}`));
  }
  blocks.push(context('approval_hash', `approval hash \`${reviewHash(a.hash)}\` · values hash \`${shortHash(job.valuesHash)}\``));
  const count = `${a.approvals.length} of ${a.required} approvals`;
  const voters = a.approvals.map((x) => `${mention(x.user)} ${when(x.at)}`).join(', ');
  const value = `${a.id}|${a.hash}|${job.id}`;
  const diffButton = { type: 'button', action_id: 're_view_diff', text: { type: 'plain_text', text: 'View full diff' }, value: `${a.id}|${job.id}` };
  if (a.state === 'pending') {
    blocks.push(context('approval_count', `${count}${voters ? ' — ' + voters : ''}`));
    blocks.push({
      type: 'actions',
      block_id: 'approval_actions',
      elements: [
        { type: 'button', action_id: 're_approve', text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value, confirm: approveConfirm(job, a) },
        { type: 'button', action_id: 're_reject', text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value },
        diffButton,
      ],
    });
  } else {
    const result =
      a.state === 'approved'
        ? `✅ Approved by ${voters}`
        : a.state === 'rejected'
          ? `⛔ Rejected by ${mention(a.rejectedBy ?? '?')}${decidedAt ? ' ' + when(decidedAt) : ''}${a.rejectReason ? `: “${esc(clip(a.rejectReason, 500))}”` : ''}${voters ? ` (approved before: ${voters})` : ''}`
          : a.state === 'expired'
            ? `⌛ Expired ${when(a.expiresAt)} with ${count}`
            : `↪️ Superseded${decidedAt ? ' ' + when(decidedAt) : ''}: the job was cancelled or its values changed`;
    blocks.push(context('approval_result', result));
    blocks.push({ type: 'actions', block_id: 'approval_view', elements: [diffButton] });
  }
  const state = a.state === 'pending' ? count : a.state === 'approved' ? `approved by ${a.approvals.map((x) => mention(x.user)).join(', ')}` : a.state === 'rejected' ? `rejected by ${mention(a.rejectedBy ?? '?')}` : a.state;
  return { text: clip(`${ask} — ${state}`, 3000), blocks };
}

/** The "View full diff" modal: the whole redacted change, paged across blocks at line ends. */
export function fullDiffView(job: JobView, a: ApprovalView): Record<string, unknown> {
  const values = a.review ? ['values (key path: old → new):', ...orderedValues(a.review.values).map((v) => `  ${v.path}: ${v.secret ? `«secret, ${v.old === undefined ? 'added' : v.new === undefined ? 'removed' : 'changed'}»` : `${v.old ?? '(unset)'} → ${v.new ?? '(removed)'}`}`), ''] : [];
  const text = esc(redact([...values, a.diffText].join('\n')).replace(/```/g, 'ʼʼʼ'));
  const all = pages(text, 2900);
  const MAX = 97;
  const shown = all.slice(0, MAX);
  const blocks: Block[] = [context('diff_head', clip(`${esc(a.title)} for \`${esc(job.deployment)}\` · approval hash \`${reviewHash(a.hash)}\` · ${text.split('\n').length} lines`, 3000))];
  shown.forEach((p, i) => blocks.push(section(`diff_${i}`, '```' + p + '```')));
  if (all.length > MAX) blocks.push(context('diff_more', `…and ${all.length - MAX} more pages: \`re-bot status ${esc(job.deployment)}\` on the bot host shows the whole request`));
  return { type: 'modal', callback_id: 're_diff', title: { type: 'plain_text', text: 'Full diff' }, close: { type: 'plain_text', text: 'Close' }, blocks };
}

/** The Reject modal: a reason, shown in the thread and written to the audit log. */
export function rejectView(job: JobView, a: ApprovalView, channel: string): Record<string, unknown> {
  return {
    type: 'modal',
    callback_id: 're_reject_reason',
    private_metadata: JSON.stringify({ approvalId: a.id, hash: a.hash, channel }),
    title: { type: 'plain_text', text: 'Reject the change' },
    submit: { type: 'plain_text', text: 'Reject' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      section('reject_what', clip(`${esc(a.title)} for \`${esc(job.deployment)}\` (approval hash \`${reviewHash(a.hash)}\`). The job fails; the requester can change the values and run the setup again.`, 3000)),
      { type: 'input', block_id: 'reason', label: { type: 'plain_text', text: 'Reason' }, element: { type: 'plain_text_input', action_id: 'reason', multiline: true, max_length: 500, placeholder: { type: 'plain_text', text: 'What has to change before you would approve?' } } },
    ],
  };
}

export function failureMessage(job: JobView, stepId: string | undefined, error: string, logTail?: string, hint?: string): Message {
  const step = job.steps.find((s) => s.stepId === stepId);
  const title = step ? `${step.number}. ${step.title}` : 'the job';
  const lines = [`❌ ${mention(job.requestedBy)} step *${esc(title)}* of \`${esc(job.deployment)}\` failed (attempt ${job.attempt}):`, mentionIds(esc(clip(redact(error), 1500)))];
  if (hint) lines.push(`💡 *What to do:* ${esc(clip(redact(hint), 600))}`);
  const done = job.steps.filter((s) => ['succeeded', 'warned', 'skipped'].includes(s.state)).length;
  lines.push(`*Retry* runs attempt ${job.attempt + 1} from ${step ? `step ${esc(title)}` : 'the step that failed'}${done ? `; the ${done} finished step${done === 1 ? ' is' : 's are'} not repeated` : ''}. *Cancel* closes the job; nothing is undone.`);
  const blocks: Block[] = [section('failure', lines.join('\n'))];
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
  return { text: clip(`Step ${esc(title)} of ${esc(job.deployment)} failed: ${mentionIds(esc(redact(error)))}`, 3000), blocks };
}

/** The failure reply once someone acted on it: same text, buttons replaced by what happened. */
export function resolvedFailure(original: Record<string, unknown> | undefined, outcome: string): Message {
  const blocks = ((original?.blocks as Block[] | undefined) ?? []).filter((b) => b.block_id !== 'failure_actions' && b.block_id !== 'failure_outcome');
  blocks.push(context('failure_outcome', outcome));
  return { text: String(original?.text ?? 'Step failed'), blocks };
}

/** The last reply of an attempt: outcome, release, who approved, how long; every warning as an action item; next steps. */
export function finalMessage(job: JobView): Message {
  const dep = `\`${esc(job.deployment)}\``;
  const took = job.startedAt && job.finishedAt ? duration(Date.parse(job.finishedAt) - Date.parse(job.startedAt)) : undefined;
  const warnings = jobWarnings(job);
  const out = (id: string) => job.steps.find((s) => s.stepId === id)?.output;
  const revision = (out('deploy')?.helmRevision ?? out('agents')?.helmRevision) as number | undefined;
  const approvedBy = [...new Set(job.approvals.filter((a) => a.state === 'approved').flatMap((a) => a.approvals.map((x) => x.user)))];
  const head =
    job.state === 'succeeded'
      ? `🎉 ${mention(job.requestedBy)} setup of ${dep} succeeded${warnings.length ? ` — ${warnings.length} action${warnings.length === 1 ? '' : 's'} for you` : ''}.`
      : `🚫 Setup of ${dep} ${job.error ? mentionIds(esc(clip(redact(job.error), 500))) : 'cancelled'}.`;
  const facts = [
    revision !== undefined ? `Helm revision *${revision}*` : '',
    `chart ${esc(job.chart)}`,
    approvedBy.length ? `approved by ${approvedBy.map(mention).join(', ')}` : '',
    took ? `took ${took}` : '',
    `attempt ${job.attempt}`,
  ].filter(Boolean).join(' · ');
  const blocks: Block[] = [section('final', `${head}\n${facts}`)];
  if (warnings.length) {
    const items = warnings.map((w, i) => `${i + 1}. *${w.step.number}. ${esc(w.step.title)}:* ${esc(clip(redact(w.text), 400))}`);
    blocks.push(...listSections('final_actions', `*⚠️ Action items (${warnings.length})*`, items, 4, 'action items: `/re status` lists every step'));
  }
  const next = job.state === 'succeeded'
    ? [`• \`/re status ${esc(job.deployment)}\` — the live release and this job`, `• to change or re-run the setup: \`/re setup ${esc(job.deployment)}\` (the wizard starts from these values)`]
    : [`• \`/re retry ${esc(job.id)}\` resumes from the step that stopped`, `• \`/re setup ${esc(job.deployment)}\` starts over with new values`, `• \`/re status ${esc(job.deployment)}\` — the live release and this job`];
  blocks.push(section('final_next', `*Next steps*\n${next.join('\n')}`));
  const text = job.state === 'succeeded'
    ? `Setup of ${esc(job.deployment)} succeeded${warnings.length ? ` — ${warnings.length} action${warnings.length === 1 ? '' : 's'} for you` : ''}${revision !== undefined ? ` (Helm revision ${revision})` : ''}`
    : `Setup of ${esc(job.deployment)} ${job.error ? mentionIds(esc(redact(job.error))) : 'cancelled'}`;
  return { text: clip(text, 3000), blocks };
}

export const HELP = [
  '*re-bot* — set up Astronomer Remote Execution agents',
  '`/re setup [deployment]` — open the setup wizard',
  '`/re status <deployment>` — latest job, steps, approvals, Helm revision, lock',
  '`/re history <deployment>` — recent jobs',
  '`/re cancel <deployment or job>` — cancel the running job',
  '`/re retry <deployment or job>` — retry a failed job from the failed step',
  '`/re rotate-token <deployment>` — replace the agent token re-bot created (one approval; the old one is deleted last)',
  '`/re help` — this help',
].join('\n');
