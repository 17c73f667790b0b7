/** `/re <subcommand>`: static answers (help, usage, typos) come in the ack; everything else acks first. */
import type { RespondFn } from '@slack/bolt';
import type { Routes } from './router.ts';
import { errorMessage } from '../redact.ts';
import { HELP } from './blocks.ts';
import { afterAck, type SlackContext } from './context.ts';
import { jobAction } from './job-actions.ts';
import { closest } from './policy.ts';
import { historyMessage, reportFromJob, statusMessage, type StatusReport } from './status-blocks.ts';
import { parentKey } from './progress.ts';
import { esc } from './text.ts';
import { openWizard } from './wizard-handlers.ts';
import { rotateTokenCommand } from './rotate.ts';

export const COMMANDS = ['setup', 'status', 'history', 'cancel', 'retry', 'rotate-token', 'help'];

/** a link to a job's thread from the stored parent message (no API call, no job read inside the ack window) */
async function threadUrl(ctx: SlackContext, jobId: string): Promise<string | undefined> {
  const parent = await ctx.outbox.postedAt(parentKey(jobId));
  return parent && `https://slack.com/archives/${parent.channel}/p${parent.ts.replace('.', '')}`;
}

const ephemeral = (m: { text: string; blocks?: unknown[] }) => ({ response_type: 'ephemeral' as const, ...m });

/**
 * The rendered answer of a report: the status reads are reused between commits (src/app/status-cache.ts) and
 * return the same report object, so a burst of `/re status` renders each deployment's answer once, not once
 * per request. statusMessage depends on the report and the thread link only.
 */
const rendered = new WeakMap<StatusReport, { url?: string; message: ReturnType<typeof statusMessage> }>();
function statusAnswer(report: StatusReport, url: string | undefined): ReturnType<typeof statusMessage> {
  const hit = rendered.get(report);
  if (hit && hit.url === url) return hit.message;
  const message = statusMessage(report, url);
  rendered.set(report, { url, message });
  return message;
}

export function registerCommands(app: Routes, ctx: SlackContext): void {
  const { engine, deps } = ctx;

  const unknownDeployment = async (name: string) => {
    const near = closest(name, await deps.deployments());
    return `Unknown deployment \`${esc(name)}\`.${near.length ? ' Closest known: ' + near.map((n) => `\`${esc(n)}\``).join(', ') : ' No deployments are known yet.'}`;
  };

  // answers that read the store or render Block Kit go through response_url, after the ack: the ack itself
  // never waits for SQLite or rendering (Slack's 3 s window, and the Bolt floor under bursts)
  const reply = async (respond: RespondFn, build: () => Promise<{ text: string; blocks?: unknown[] }>) => {
    await afterAck();
    let m: { text: string; blocks?: unknown[] };
    try {
      m = await build();
    } catch (err) {
      ctx.logger.error({ err: errorMessage(err) }, 'slash command answer failed');
      m = { text: `Something went wrong: ${esc(errorMessage(err))}` };
    }
    try {
      await respond({ ...ephemeral(m), replace_original: false } as any);
    } catch (err) {
      ctx.logger.warn({ err: errorMessage(err) }, 'response_url answer failed');
    }
  };

  app.command('/re', async ({ command, ack, respond }) => {
    const words = command.text.trim().split(/\s+/).filter(Boolean);
    const sub = (words[0] ?? 'help').toLowerCase();
    const arg = words[1];
    const user = command.user_id;
    const channel = command.channel_id;
    switch (sub) {
      case 'help':
        return ack(ephemeral({ text: HELP }));
      case 'status': {
        if (!arg) return ack(ephemeral({ text: 'Usage: `/re status <deployment>`' }));
        await ack();
        return reply(respond, async () => {
          const report = deps.status ? await deps.status(arg) : await (async () => { const j = await engine.latestJobFor(arg); return j && reportFromJob(j); })();
          return report ? statusAnswer(report, report.job && (await threadUrl(ctx, report.job.id))) : { text: await unknownDeployment(arg) };
        });
      }
      case 'history': {
        if (!arg) return ack(ephemeral({ text: 'Usage: `/re history <deployment>`' }));
        await ack();
        return reply(respond, async () => {
          const rows = (await deps.history?.(arg)) ?? [];
          if (!rows.length && !(await deps.deployments()).includes(arg)) return { text: await unknownDeployment(arg) };
          return historyMessage(arg, rows);
        });
      }
      case 'setup':
        await ack();
        return openWizard(ctx, { triggerId: command.trigger_id, channel, user, deployment: arg });
      case 'cancel':
      case 'retry':
        await ack();
        if (!arg) return ctx.tell(channel, user, `Usage: \`/re ${sub} <deployment or job>\``);
        return jobAction(ctx, sub, arg, user, channel);
      case 'rotate-token':
        return rotateTokenCommand(ctx, { ack, respond, arg, user, channel, teamId: command.team_id });
      default: {
        const near = closest(sub, COMMANDS, 1)[0];
        return ack(ephemeral({ text: `Unknown command \`${esc(sub)}\`. Did you mean \`/re ${near}\`?\n\n${HELP}` }));
      }
    }
  });
}
