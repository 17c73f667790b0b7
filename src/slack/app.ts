import { App, LogLevel } from '@slack/bolt';
import { WebClient } from '@slack/web-api';
import type { Server } from 'node:http';
import type { JobEngine } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import { errorMessage, registerSecret } from '../redact.ts';
import type { SlackConfig } from './config.ts';
import { HELP, statusText, esc } from './blocks.ts';
import { Outbox, type OutboxStore } from './outbox.ts';
import { attachProgress } from './progress.ts';
import { GroupResolver, closest } from './policy.ts';
import { WizardSessions, specFromSubmission, wizardView, type SealFn } from './wizard.ts';

export interface SlackAppDeps {
  engine: JobEngine;
  config: SlackConfig;
  logger: Logger;
  outboxStore: OutboxStore;
  /** seal a secret typed in the wizard; returns the stored id (src/store/crypto.ts sealSecret) */
  sealSecret: SealFn;
  /** known deployment names (for "did you mean") */
  deployments: () => string[];
  history?: (deployment: string) => Array<{ id: string; state: string; createdAt: string; requestedBy: string }>;
  pacingMs?: number;
  retryAfterUnitMs?: number;
  baseBackoffMs?: number;
  /** test hook: shorter Bolt unhandled-request timer etc. */
  port?: number;
}

export const COMMANDS = ['setup', 'status', 'history', 'cancel', 'retry', 'help'];

export interface SlackRuntime {
  app: App;
  outbox: Outbox;
  client: WebClient;
  start(): Promise<Server | undefined>;
  stop(): Promise<void>;
}

export function createSlackApp(deps: SlackAppDeps): SlackRuntime {
  const { engine, config, logger } = deps;
  registerSecret(config.botToken);
  registerSecret(config.appToken);
  registerSecret(config.signingSecret);
  const clientOptions = {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
  };
  const app =
    config.mode === 'http'
      ? new App({ token: config.botToken, signingSecret: config.signingSecret!, clientOptions, logLevel: LogLevel.ERROR, port: config.port })
      : new App({ token: config.botToken, appToken: config.appToken!, socketMode: true, clientOptions, logLevel: LogLevel.ERROR });
  const client = new WebClient(config.botToken, clientOptions);
  const outbox = new Outbox({ client, store: deps.outboxStore, logger, pacingMs: deps.pacingMs, retryAfterUnitMs: deps.retryAfterUnitMs, baseBackoffMs: deps.baseBackoffMs });
  const groups = new GroupResolver(client);
  const wizards = new WizardSessions();
  let ephemeralSeq = 0;
  const tell = (channel: string, user: string, text: string) => outbox.ephemeral(`eph:${Date.now()}:${++ephemeralSeq}`, channel, user, { text });
  const isOperator = async (user: string) => config.operators.length === 0 || (await groups.isMember(user, config.operators));

  app.command('/re', async ({ command, ack, client: c }) => {
    const [sub = 'help', arg] = command.text.trim().split(/\s+/).filter(Boolean);
    const user = command.user_id;
    const channel = command.channel_id;
    switch (sub) {
      case 'help':
        return ack({ response_type: 'ephemeral', text: HELP });
      case 'status': {
        if (!arg) return ack({ response_type: 'ephemeral', text: 'Usage: `/re status <deployment>`' });
        const job = engine.latestJobFor(arg);
        if (job) return ack({ response_type: 'ephemeral', text: statusText(job, arg) });
        const near = closest(arg, deps.deployments());
        return ack({ response_type: 'ephemeral', text: `Unknown deployment \`${esc(arg)}\`.${near.length ? ' Closest known: ' + near.map((n) => `\`${esc(n)}\``).join(', ') : ' No deployments are known yet.'}` });
      }
      case 'history': {
        if (!arg) return ack({ response_type: 'ephemeral', text: 'Usage: `/re history <deployment>`' });
        const rows = deps.history?.(arg) ?? [];
        return ack({ response_type: 'ephemeral', text: rows.length ? rows.map((r) => `\`${r.id}\` ${r.state} ${r.createdAt} by <@${r.requestedBy}>`).join('\n') : `No jobs recorded for \`${esc(arg)}\`.` });
      }
      case 'setup': {
        await ack();
        if (!(await isOperator(user))) return tell(channel, user, 'You are not allowed to start setups (RE_BOT_OPERATORS).');
        const key = wizards.create({ channel, user, deployment: arg });
        try {
          await c.views.open({ trigger_id: command.trigger_id, view: wizardView(key, arg ? { 'deployment.name': arg } : {}) as any });
        } catch (err) {
          logger.error({ err: errorMessage(err) }, 'views.open failed');
          tell(channel, user, `Could not open the setup wizard: ${errorMessage(err)}`);
        }
        return;
      }
      case 'cancel':
      case 'retry': {
        await ack();
        if (!arg) return tell(channel, user, `Usage: \`/re ${sub} <job>\``);
        return void jobAction(sub, arg, user, channel);
      }
      default: {
        const near = closest(sub, COMMANDS, 1)[0];
        return ack({ response_type: 'ephemeral', text: `Unknown command \`${esc(sub)}\`. Did you mean \`/re ${near}\`?\n\n${HELP}` });
      }
    }
  });

  async function jobAction(kind: 'cancel' | 'retry', jobId: string, user: string, channel: string): Promise<void> {
    const job = engine.job(jobId);
    if (!job) return tell(channel, user, `Unknown job \`${esc(jobId)}\`.`);
    if (job.requestedBy !== user && !(await isOperator(user))) return tell(channel, user, `Only the requester or an operator may ${kind} job ${job.id}.`);
    try {
      if (kind === 'retry') await engine.retry(jobId, { id: user });
      else await engine.cancel(jobId, { id: user });
    } catch (err) {
      tell(channel, user, `Could not ${kind} job ${jobId}: ${errorMessage(err)}`);
    }
  }

  for (const decision of ['approve', 'reject'] as const) {
    app.action(`re_${decision}`, async ({ ack, body, action }) => {
      await ack();
      const b = body as any;
      const user: string = b.user.id;
      const channel: string = b.channel?.id ?? b.container?.channel_id;
      const [approvalId, hash] = String((action as any).value ?? '').split('|');
      const userGroups = await groups.groupsOf(user, config.approvers);
      const r = await engine.decide(approvalId, { by: { id: user }, decision, hash, userGroups });
      if (!r.ok) {
        logger.warn({ approvalId, user, reason: r.reason }, 'approval click refused');
        tell(channel, user, `Your ${decision} was not recorded: ${r.message}`);
      }
    });
  }
  for (const kind of ['retry', 'cancel'] as const) {
    app.action(`re_${kind}`, async ({ ack, body, action }) => {
      await ack();
      const b = body as any;
      void jobAction(kind, String((action as any).value), b.user.id, b.channel?.id ?? b.container?.channel_id);
    });
  }

  app.view('re_setup', async ({ ack, view, body }) => {
    const state = wizards.get(view.private_metadata);
    if (!state) return ack({ response_action: 'errors', errors: { dep_name: 'This wizard session expired; close it and run /re setup again.' } } as any);
    const result = specFromSubmission(view.state.values as any, deps.sealSecret);
    if (!result.ok) return ack({ response_action: 'errors', errors: result.errors } as any);
    await ack();
    wizards.delete(view.private_metadata);
    try {
      await engine.submit({ spec: result.spec, requestedBy: { id: body.user.id }, origin: { kind: 'slack', channel: state.channel } });
    } catch (err) {
      tell(state.channel, body.user.id, `Setup not started: ${errorMessage(err)}`);
    }
  });

  const detach = attachProgress(engine, outbox);

  return {
    app,
    outbox,
    client,
    async start() {
      outbox.start();
      if (config.mode === 'http') return (await app.start(deps.port ?? config.port)) as Server;
      await app.start();
      return undefined;
    },
    async stop() {
      detach();
      await app.stop();
      await outbox.stop();
    },
  };
}
