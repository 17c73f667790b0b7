/**
 * `/re rotate-token <deployment>`: submits a rotate-token job (src/spec/rotate-plan.ts) for the deployment's last
 * spec. Acks first; the answer goes through respond() (response_url) after the ack. The job's thread, approval
 * and steps are the engine's, like a setup's.
 */
import type { RespondFn } from '@slack/bolt';
import { DeploymentLockedError } from '../jobs/types.ts';
import { errorMessage } from '../redact.ts';
import { ROTATE_TOKEN } from '../spec/rotate-plan.ts';
import { secretRefsOf } from '../spec/schema.ts';
import { afterAck, type SlackContext } from './context.ts';
import { closest } from './policy.ts';
import { esc, when } from './text.ts';

export async function rotateTokenCommand(
  ctx: SlackContext,
  a: { ack: (m?: any) => Promise<void>; respond: RespondFn; arg?: string; user: string; channel: string; teamId?: string },
): Promise<void> {
  if (!a.arg) return a.ack({ response_type: 'ephemeral', text: 'Usage: `/re rotate-token <deployment>`' });
  await a.ack();
  await afterAck();
  const answer = async (text: string) => {
    try {
      await a.respond({ response_type: 'ephemeral', replace_original: false, text } as any);
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, 'response_url answer failed');
    }
  };
  const name = a.arg;
  try {
    if (!(await ctx.isOperator(a.user))) {
      ctx.audit({ actor: a.user, action: 'rotate-token.refused', deployment: name, result: 'not_operator' });
      return answer('Only operators may rotate agent tokens (RE_BOT_OPERATORS).');
    }
    const spec = await ctx.deps.lastSpec?.(name);
    if (!spec) {
      const near = closest(name, await ctx.deps.deployments());
      return answer(`Unknown deployment \`${esc(name)}\`.${near.length ? ' Closest known: ' + near.map((n) => `\`${esc(n)}\``).join(', ') : ''}`);
    }
    if (!('create' in spec.agent.token)) {
      return answer(`\`${esc(name)}\` uses a pasted agent token: re-bot rotates only tokens it creates. Run \`/re setup ${esc(name)}\` and choose “create a token for me” first.`);
    }
    // secrets typed into the wizard are erased once their setup is done: the rotation could not call the Astro API
    const erased = secretRefsOf(spec).filter((r) => 'stored' in r.ref).map((r) => r.field);
    if (erased.length) {
      return answer(`\`${esc(name)}\` was set up with secrets typed into the wizard (${erased.map((f) => `\`${f}\``).join(', ')}); they were erased after that setup, and the rotation needs the Deployment API token. Run \`/re setup ${esc(name)}\` with “create a token for me” (it creates a new token), or give re-bot the token as an env/file reference.`);
    }
    const channel = a.channel.startsWith('D') ? ((await ctx.directory.dmWith(a.user)) ?? a.channel) : a.channel;
    const display = await ctx.directory.displayName(a.user);
    const job = await ctx.engine.submit({ spec, kind: ROTATE_TOKEN, requestedBy: { id: a.user, display }, origin: { kind: 'slack', channel, ...(a.teamId ? { teamId: a.teamId } : {}) } });
    return answer(`Rotating the agent token of \`${esc(name)}\`: job \`${esc(job.id)}\`. The plan and its approval are in the job's thread; the old token is deleted only after the agents run with the new one.`);
  } catch (err) {
    if (err instanceof DeploymentLockedError) {
      const h = err.holder;
      return answer(`🔒 \`${esc(err.deployment)}\` is locked by job \`${esc(h.jobId)}\` (requested by <@${h.requestedBy}>, ${h.state.replace(/_/g, ' ')} since ${when(h.since)}); nothing was started.`);
    }
    ctx.logger.error({ err: errorMessage(err) }, 'rotate-token submission failed');
    return answer(`Rotation not started: ${esc(errorMessage(err))}`);
  }
}
