/** Buttons in the progress thread. Anyone in the channel can click: every click is checked. */
import type { App } from '@slack/bolt';
import { errorMessage } from '../redact.ts';
import { afterAck, type SlackContext } from './context.ts';
import { settleFailure } from './progress.ts';
import { esc } from './text.ts';

const REFUSAL: Record<string, string> = {
  not_approver: 'You are not an approver for this deployment (RE_BOT_APPROVERS).',
  self_approval: 'You cannot approve your own request: another approver has to.',
  duplicate: 'You already voted on this request; another approver is needed.',
  stale_hash: 'This request is out of date: the values changed. Use the newest approval message.',
  already_decided: 'This request was already decided.',
  expired: 'This request expired.',
  not_found: 'This approval request no longer exists.',
};

function channelOf(body: any): string {
  return body.channel?.id ?? body.container?.channel_id;
}

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
  const job = ctx.engine.job(ref) ?? ctx.engine.latestJobFor(ref);
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
    return ctx.tell(channel, user, `Only the requester (<@${job.requestedBy}>), an operator or an approver may ${kind} job \`${esc(jobId)}\`.`);
  }
  try {
    const display = await ctx.directory.displayName(user, 500);
    if (kind === 'retry') await ctx.engine.retry(jobId, { id: user, display });
    else {
      const after = await ctx.engine.cancel(jobId, { id: user, display });
      // a failed job is already finished (and unlocked): cancelling it only closes its failure reply
      if (after.state === 'failed') {
        settleFailure(ctx.outbox, after, after.attempt, `🚫 Closed by <@${user}>: the job stays failed and holds no lock. \`/re retry ${after.id}\` can still resume it.`);
        ctx.tell(channel, user, `Job \`${esc(jobId)}\` had already failed; it holds no lock. Its failure reply is closed.`);
      } else if (after.state !== 'cancelled') ctx.tell(channel, user, `Job \`${esc(jobId)}\` already ${after.state.replace(/_/g, ' ')}; nothing to cancel.`);
    }
  } catch (err) {
    ctx.tell(channel, user, `Could not ${kind} job \`${esc(jobId)}\`: ${esc(errorMessage(err))}`);
  }
}

export function registerJobActions(app: App, ctx: SlackContext): void {
  for (const decision of ['approve', 'reject'] as const) {
    app.action(`re_${decision}`, async ({ ack, body, action }) => {
      await ack();
      const user: string = (body as any).user.id;
      const channel = channelOf(body);
      const [approvalId = '', hash = ''] = String((action as any).value ?? '').split('|');
      // answered once per user and request: a repeated refused click is only acked
      const once = `${approvalId}|${user}`;
      if (ctx.refusedClicks.has(once)) return;
      await afterAck();
      try {
        const [userGroups, display] = await Promise.all([ctx.directory.groups.groupsOf(user, ctx.config.approvers), ctx.directory.displayName(user, 500)]);
        const r = await ctx.engine.decide(approvalId, { by: { id: user, display }, decision, hash, userGroups });
        if (!r.ok) {
          ctx.refusedClicks.add(once);
          ctx.logger.warn({ approvalId, user, reason: r.reason }, 'approval click refused');
          ctx.tell(channel, user, `Your ${decision} was not recorded. ${REFUSAL[r.reason] ?? ''} (${esc(r.message)})`);
        }
      } catch (err) {
        ctx.logger.error({ approvalId, user, err: errorMessage(err) }, 'approval click failed');
        ctx.tell(channel, user, `Your ${decision} could not be recorded: ${esc(errorMessage(err))}`);
      }
    });
  }
  for (const kind of ['retry', 'cancel'] as const) {
    app.action(`re_${kind}`, async ({ ack, body, action }) => {
      await ack();
      await afterAck();
      await jobAction(ctx, kind, String((action as any).value ?? ''), (body as any).user.id, channelOf(body));
    });
  }
}
