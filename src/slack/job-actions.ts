/** Buttons in the progress thread. Anyone in the channel can click: every click is checked. */
import type { RespondFn } from '@slack/bolt';
import type { Routes } from './router.ts';
import type { WebClient } from '@slack/web-api';
import { errorMessage } from '../redact.ts';
import { afterAck, type SlackContext } from './context.ts';
import { settleFailure } from './progress.ts';
import { fullDiffView, rejectView } from './blocks.ts';
import { approversText, esc, mention } from './text.ts';

/** one sentence each, saying who may act instead (never a configuration variable's name) */
const REFUSAL: Record<string, (approvers: string) => string> = {
  not_approver: (a) => `you are not an approver of this deployment; approvers are ${a}.`,
  self_approval: (a) => `you cannot approve your own request; ${a} has to.`,
  duplicate: (a) => `you already voted on this request; another approver (${a}) is needed.`,
  stale_hash: () => 'this request is out of date because the values changed; use the newest approval message.',
  already_decided: () => 'this request was already decided.',
  expired: () => 'this request expired; retry the job to ask again.',
  not_found: () => 'this approval request no longer exists.',
};

function channelOf(body: any): string {
  return body.channel?.id ?? body.container?.channel_id;
}

/** Bolt's respond() when the click came with a response_url (a message's buttons do; Bolt's respond throws without one) */
const responder = (body: any, respond: RespondFn | undefined): RespondFn | undefined => (typeof body?.response_url === 'string' && body.response_url ? respond : undefined);

/**
 * Someone else's job: only users listed (directly or through a user group) in RE_BOT_OPERATORS or
 * RE_BOT_APPROVERS. `*` lets anyone start setups (or approve), not act on other people's jobs.
 */
async function mayActOn(ctx: SlackContext, requester: string, user: string): Promise<boolean> {
  if (requester === user) return true;
  const { operators, approvers } = ctx.config;
  return ctx.directory.groups.isMember(user, [...operators, ...approvers]);
}

/** retry/cancel from a button or `/re retry|cancel <job>` */
export async function jobAction(ctx: SlackContext, kind: 'cancel' | 'retry', ref: string, user: string, channel: string): Promise<void> {
  // a job id, or a deployment name (its latest job), as the lock message suggests: `/re cancel <deployment>`
  const job = (await ctx.engine.job(ref)) ?? (await ctx.engine.latestJobFor(ref));
  if (!job) return ctx.tell(channel, user, `Unknown job or deployment \`${esc(ref)}\`.`);
  const jobId = job.id;
  let allowed: boolean;
  try {
    allowed = await mayActOn(ctx, job.requestedBy, user);
  } catch (err) {
    return ctx.tell(channel, user, `Could not ${kind} job \`${esc(jobId)}\`: ${esc(errorMessage(err))}`);
  }
  if (!allowed) {
    ctx.audit({ actor: user, action: `job.${kind}.refused`, jobId, deployment: job.deployment, result: 'not_allowed' });
    return ctx.tell(channel, user, `Only the requester ${mention(job.requestedBy)}, an operator (${approversText(ctx.config.operators)}) or an approver (${approversText(ctx.config.approvers)}) may ${kind} job \`${esc(jobId)}\` of \`${esc(job.deployment)}\`.`);
  }
  try {
    const display = await ctx.directory.displayName(user, 500);
    if (kind === 'retry') {
      const after = await ctx.engine.retry(jobId, { id: user, display });
      await settleFailure(ctx.outbox, after, after.attempt - 1, `🔁 Retried by <@${user}> — attempt ${after.attempt} is running.`);
    }
    else {
      const after = await ctx.engine.cancel(jobId, { id: user, display });
      // a failed job is already finished (and unlocked): cancelling it only closes its failure reply
      if (after.state === 'failed') {
        await settleFailure(ctx.outbox, after, after.attempt, `🚫 Closed by ${mention(user)}: the job stays failed and holds no lock. \`/re retry ${after.id}\` can still resume it.`);
        ctx.tell(channel, user, `Job \`${esc(jobId)}\` had already failed; it holds no lock. Its failure reply is closed.`);
      } else if (after.state !== 'cancelled') ctx.tell(channel, user, `Job \`${esc(jobId)}\` already ${after.state.replace(/_/g, ' ')}; nothing to cancel.`);
    }
  } catch (err) {
    ctx.tell(channel, user, `Could not ${kind} job \`${esc(jobId)}\`: ${esc(errorMessage(err))}`);
  }
}

/**
 * How long a refused click is remembered (a repeat only acked). Every refusal but one is final for that user,
 * request and button: the request was decided, expired, superseded or never existed, the user is its
 * requester, or already voted. "Not an approver" can change: the user may be added to an approver user group
 * (whose membership the directory caches), so that refusal is remembered for a minute, not for good.
 */
export const REFUSAL_MEMORY_MS: Partial<Record<string, number>> = { not_approver: 60_000 };

/**
 * `viaModal`: a rejection submitted with its reason is always answered; only button clicks are deduplicated
 * (a refused Approve must not silence the Reject the same user then types a reason for).
 */
async function recordDecision(ctx: SlackContext, decision: 'approve' | 'reject', approvalId: string, hash: string, user: string, channel: string, reason?: string, viaModal = false, respond?: RespondFn): Promise<void> {
  const noun = decision === 'approve' ? 'approval' : 'rejection';
  // answered once per user, request and button: a repeated refused click is only acked
  const once = `${approvalId}|${user}|${decision}`;
  if (!viaModal && ctx.refusedClicks.has(once)) return;
  await afterAck();
  try {
    const [userGroups, display] = await Promise.all([ctx.directory.groups.groupsOf(user, ctx.config.approvers), ctx.directory.displayName(user, 500)]);
    const r = await ctx.engine.decide(approvalId, { by: { id: user, display }, decision, hash, userGroups, ...(reason ? { reason } : {}) });
    if (!r.ok) {
      if (!viaModal) ctx.refusedClicks.add(once, REFUSAL_MEMORY_MS[r.reason]);
      // someone not allowed to decide is worth a warning; a late, repeated or stale click is routine (both are audited)
      if (r.reason === 'not_approver' || r.reason === 'self_approval') ctx.logger.warn({ approvalId, user, reason: r.reason }, 'approval click refused');
      else ctx.logger.debug({ approvalId, user, reason: r.reason }, 'approval click refused');
      const why = REFUSAL[r.reason]?.(approversText(ctx.config.approvers)) ?? `${esc(r.message)}.`;
      answer(ctx, respond, channel, user, `Your ${noun} was not recorded: ${why}`);
    }
  } catch (err) {
    ctx.logger.error({ approvalId, user, err: errorMessage(err) }, 'approval click failed');
    answer(ctx, respond, channel, user, `Your ${noun} could not be recorded: ${esc(errorMessage(err))}`);
  }
}

/**
 * The answer to a click, seen only by its clicker: through the click's response_url when it has one (one
 * kept-alive POST; no outbox row, poll or Web API call on the Slack process, which was most of a refused
 * click's cost: bench/click.ts), else, or when that POST fails, through the outbox (ctx.tell). Like any
 * ephemeral it may be lost in a kill; a refusal changes nothing, so the click can simply be repeated.
 */
function answer(ctx: SlackContext, respond: RespondFn | undefined, channel: string, user: string, text: string): void {
  if (!respond) return ctx.tell(channel, user, text);
  respond({ response_type: 'ephemeral', replace_original: false, text }).catch((err) => {
    ctx.logger.warn({ err: errorMessage(err) }, 'response_url answer failed; answering through the outbox');
    ctx.tell(channel, user, text);
  });
}

/**
 * views.open with one retry on a 429 or 5xx: the trigger id stays valid for 3 s, so a short Retry-After
 * can still be honoured (the WebClient does not retry: the outbox owns retries for everything else).
 */
async function openModal(client: WebClient, triggerId: string, view: Record<string, unknown>): Promise<void> {
  try {
    await client.views.open({ trigger_id: triggerId, view: view as any });
  } catch (err: any) {
    const waitMs = err?.code === 'slack_webapi_rate_limited_error' ? Number(err.retryAfter ?? 1) * 1000 : err?.code === 'slack_webapi_http_error' ? 200 : -1;
    if (waitMs < 0 || waitMs > 1500) throw err;
    await new Promise((r) => setTimeout(r, waitMs));
    await client.views.open({ trigger_id: triggerId, view: view as any });
  }
}

/** the job and approval a button names: `approvalId|hash|jobId` (older messages: no job id) */
async function approvalOf(ctx: SlackContext, value: string) {
  const [approvalId = '', hash = '', jobId = ''] = value.split('|');
  const job = jobId ? await ctx.engine.job(jobId) : undefined;
  return { approvalId, hash, job, approval: job?.approvals.find((a) => a.id === approvalId) };
}


export function registerJobActions(app: Routes, ctx: SlackContext): void {
  app.action('re_approve', async ({ ack, body, action, respond }) => {
    await ack();
    // the id and hash are all a decision needs: no job read for a click that is only acked
    const [approvalId = '', hash = ''] = String((action as any).value ?? '').split('|');
    await recordDecision(ctx, 'approve', approvalId, hash, (body as any).user.id, channelOf(body), undefined, false, responder(body, respond));
  });
  // Reject asks for a reason first (a modal); the decision is recorded when it is submitted
  app.action('re_reject', async ({ ack, body, action, client, respond }) => {
    await ack();
    const user: string = (body as any).user.id;
    const channel = channelOf(body);
    const { approvalId, hash, job, approval } = await approvalOf(ctx, String((action as any).value ?? ''));
    if (!job || !approval) return recordDecision(ctx, 'reject', approvalId, hash, user, channel, undefined, false, responder(body, respond));
    try {
      await openModal(client, (body as any).trigger_id, rejectView(job, { ...approval, hash }, channel));
    } catch (err) {
      ctx.tell(channel, user, `Could not open the rejection form (${esc(errorMessage(err))}); try again.`);
    }
  });
  app.view('re_reject_reason', async ({ ack, body, view }) => {
    const reason = String((view.state.values as any).reason?.reason?.value ?? '').trim();
    if (!reason) return ack({ response_action: 'errors', errors: { reason: 'Say why, so the requester knows what to change.' } });
    await ack();
    const meta = JSON.parse(view.private_metadata || '{}') as { approvalId?: string; hash?: string; channel?: string };
    await recordDecision(ctx, 'reject', meta.approvalId ?? '', meta.hash ?? '', body.user.id, meta.channel ?? '', reason, true);
  });
  app.action('re_view_diff', async ({ ack, body, action, client }) => {
    await ack();
    const user: string = (body as any).user.id;
    const [approvalId = '', jobId = ''] = String((action as any).value ?? '').split('|');
    const job = await ctx.engine.job(jobId);
    const approval = job?.approvals.find((a) => a.id === approvalId);
    if (!job || !approval) return ctx.tell(channelOf(body), user, 'This approval request no longer exists.');
    try {
      await openModal(client, (body as any).trigger_id, fullDiffView(job, approval));
    } catch (err) {
      ctx.tell(channelOf(body), user, `Could not open the diff (${esc(errorMessage(err))}); try again.`);
    }
  });
  for (const kind of ['retry', 'cancel'] as const) {
    app.action(`re_${kind}`, async ({ ack, body, action }) => {
      await ack();
      await afterAck();
      await jobAction(ctx, kind, String((action as any).value ?? ''), (body as any).user.id, channelOf(body));
    });
  }
}
