import { App, LogLevel, type CustomRoute, type Logger as BoltLogger } from '@slack/bolt';
import { WebClient } from '@slack/web-api';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { withLogContext, type Logger } from '../log.ts';
import { countingFetch, timeAcks, type Metrics } from '../metrics.ts';
import { errorMessage, registerSecret } from '../redact.ts';
import { registerCommands } from './commands.ts';
import { afterAckQueue, BoundedSet, type SlackAppDeps, type SlackContext } from './context.ts';
import { Directory } from './directory.ts';
import { keepAliveFetch } from './fetch.ts';
import { registerJobActions } from './job-actions.ts';
import { SlackRouter } from './router.ts';
import { Outbox } from './outbox.ts';
import { attachProgress } from './progress.ts';
import { WizardSessions } from './wizard.ts';
import { registerWizard } from './wizard-handlers.ts';

export type { SlackAppDeps, AuditEntry } from './context.ts';
export { COMMANDS } from './commands.ts';

/** Optional observability hooks (src/app/bot.ts). */
export interface SlackHooks {
  /** counts Web API calls and 429s by method, observes ack latency */
  metrics?: Metrics;
  /** HTTP mode: extra routes on the receiver's port (health, readiness, metrics) */
  customRoutes?: CustomRoute[];
}

export interface SlackRuntime {
  app: App;
  outbox: Outbox;
  client: WebClient;
  start(): Promise<Server | undefined>;
  stop(): Promise<void>;
}

/**
 * Bolt's auth.test, run explicitly: a transient failure (429, 5xx) is retried instead of surfacing as an
 * unhandled rejection, and a bad token stops start-up with the variable's name.
 */
async function initialize(app: App, logger: SlackAppDeps['logger']): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await app.init();
    } catch (err: any) {
      const transient = ['slack_webapi_rate_limited_error', 'slack_webapi_http_error', 'slack_webapi_request_error'].includes(err?.code);
      if (!transient) throw new Error(`SLACK_BOT_TOKEN: auth.test failed (${err?.data?.error ?? err?.message ?? err}); check the bot token and SLACK_API_URL`);
      if (attempt >= 5) throw err;
      const waitMs = err.retryAfter ? err.retryAfter * 1000 : 250 * 2 ** attempt;
      logger.warn({ attempt, waitMs, code: err.code }, 'auth.test failed, retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

const BOLT_LEVELS = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR];

/**
 * Bolt (and the WebClient and Socket Mode client it creates) log through this instead of its console logger:
 * lines go to the app's pino logger, whose hooks pass every string, Error and object through redact().
 */
export function boltLogger(log: Logger, initial: LogLevel = LogLevel.ERROR): BoltLogger {
  let level = initial;
  let name = 'bolt';
  const write = (at: LogLevel, pinoLevel: 'debug' | 'info' | 'warn' | 'error') => (...msgs: unknown[]) => {
    if (BOLT_LEVELS.indexOf(at) < BOLT_LEVELS.indexOf(level)) return;
    const err = msgs.find((m) => m instanceof Error);
    const text = msgs.filter((m) => typeof m === 'string').join(' ');
    const detail = msgs.filter((m) => m !== err && typeof m !== 'string');
    log[pinoLevel]({ component: name, ...(err ? { err } : {}), ...(detail.length ? { detail } : {}) }, text || (err as Error | undefined)?.message || 'bolt');
  };
  return {
    debug: write(LogLevel.DEBUG, 'debug'),
    info: write(LogLevel.INFO, 'info'),
    warn: write(LogLevel.WARN, 'warn'),
    error: write(LogLevel.ERROR, 'error'),
    setLevel: (l) => void (level = l),
    getLevel: () => level,
    setName: (n) => void (name = n),
  };
}

export function createSlackApp(deps: SlackAppDeps & SlackHooks): SlackRuntime {
  const { engine, config, logger } = deps;
  registerSecret(config.botToken);
  registerSecret(config.appToken);
  registerSecret(config.signingSecret);
  // the outbox owns retries (429 Retry-After, 5xx backoff); the client must not retry on its own
  const httpFetch = keepAliveFetch();
  const clientOptions = {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    // Web API calls and respond() posts to response_url: kept-alive connections
    fetch: deps.metrics ? countingFetch(deps.metrics, config.apiUrl, httpFetch) : httpFetch,
  };
  const boltLog = boltLogger(logger);
  // convoStore false: Bolt's default conversation-state middleware (unused here) runs before every listener,
  // and its in-memory store answers each unknown conversation with a thrown Error (a stack trace per request)
  const app =
    config.mode === 'http'
      ? new App({ token: config.botToken, signingSecret: config.signingSecret!, clientOptions, logger: boltLog, logLevel: LogLevel.ERROR, port: config.port, customRoutes: deps.customRoutes, deferInitialization: true, convoStore: false })
      : new App({ token: config.botToken, appToken: config.appToken!, socketMode: true, clientOptions, logger: boltLog, logLevel: LogLevel.ERROR, deferInitialization: true, convoStore: false });
  // an error escaping a listener: logged (redacted) here instead of by Bolt's default handler
  app.error(async (error) => {
    const original = (error as { original?: unknown }).original;
    logger.error({ err: original instanceof Error ? original : error, code: (error as { code?: string }).code }, 'a Slack listener failed');
  });
  if (deps.metrics) timeAcks(deps.metrics, app);
  tagRequests(app, logger);
  const client = new WebClient(config.botToken, { ...clientOptions, logger: boltLogger(logger, LogLevel.WARN) });
  const outbox = new Outbox({
    client, store: deps.outboxStore, logger, pacingMs: deps.pacingMs, updateIntervalMs: deps.updateIntervalMs, retryAfterUnitMs: deps.retryAfterUnitMs, baseBackoffMs: deps.baseBackoffMs,
  });
  const directory = new Directory(client);
  const tell = boundedEphemerals(outbox, deps, logger);
  const ctx: SlackContext = {
    deps, engine, config, logger, outbox, client, directory,
    wizards: new WizardSessions(deps.wizardStore),
    tell,
    refusedClicks: new BoundedSet(),
    isOperator: async (user) => config.operators.includes('*') || (await directory.groups.isMember(user, config.operators)),
    audit: (e) => {
      logger.warn({ actor: e.actor, action: e.action, jobId: e.jobId, result: e.result }, 'refused');
      try {
        deps.audit?.(e);
      } catch (err) {
        logger.error({ err: String(err) }, 'audit write failed');
      }
    },
  };
  const routes = new SlackRouter();
  registerCommands(routes, ctx);
  registerJobActions(routes, ctx);
  registerWizard(routes, ctx);
  routes.attach(app);
  const detach = attachProgress(engine, outbox, logger, { approvers: config.approvers });

  return {
    app,
    outbox,
    client,
    async start() {
      await initialize(app, logger);
      outbox.start();
      if (config.mode === 'http') {
        const port = deps.port ?? config.port;
        return (await app.start(deps.host ? { port, host: deps.host } : port)) as Server;
      }
      await app.start();
      return undefined;
    },
    async stop() {
      await detach();
      await app.stop();
      await outbox.stop();
      await httpFetch.close().catch(() => undefined);
    },
  };
}

/**
 * Ephemeral answers go through the persisted outbox, which sends a few at a time: a burst of refused clicks
 * could queue thousands that arrive minutes late. At most `deps.ephemeralBacklog` (default 200) of ours wait
 * at once; past that the oldest still pending is dropped (marked failed, counted, logged once per 10 s).
 */
export function boundedEphemerals(outbox: Outbox, deps: Pick<SlackAppDeps, 'outboxStore' | 'ephemeralBacklog'> & SlackHooks, logger: Logger) {
  const max = Math.max(1, deps.ephemeralBacklog ?? 200);
  const keys: string[] = []; // ours, oldest first (sent ones are skipped when trimming)
  let seq = 0;
  let dropped = 0;
  let lastLog = 0;
  return (channel: string, user: string, text: string): void => {
    const key = `eph:${Date.now()}:${++seq}`;
    outbox.ephemeral(key, channel, user, { text });
    keys.push(key);
    while (keys.length > max) void dropIfPending(keys.shift()!);
  };
  // after the answer was queued, never before (the caller may be inside an ack); a sent one is left alone
  async function dropIfPending(key: string): Promise<void> {
    try {
      const old = await deps.outboxStore.get(key);
      if (old?.state !== 'pending' || !(await deps.outboxStore.dropPending(old.id, 'dropped: ephemeral backlog full'))) return;
    } catch (err) {
      logger.error({ err: errorMessage(err), key }, 'ephemeral backlog: could not drop the oldest answer');
      return;
    }
    dropped++;
    deps.metrics?.dropped.inc({ queue: 'ephemeral' });
    if (Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      logger.warn({ dropped, max }, 'ephemeral backlog full: dropped the oldest pending answer');
    }
  }
}

/** A request acked slower than this is logged at info ("slack request handled"); any other at debug. */
export const SLOW_REQUEST_MS = 1000;

/**
 * Every log line written while Bolt handles a request carries its request id, user and what was asked
 * (command, action or view), and the request itself is logged once with its handling time: at debug level,
 * or at info when its ack took SLOW_REQUEST_MS or more (what Slack's 3 s window sees; the work after the ack
 * may wait behind a burst on purpose: src/slack/after-ack.ts). An info line for every request was a tenth of a
 * click's CPU on the Slack process (a write to stderr per request; bench/click.ts), and the ack latency is in
 * the metrics (re_bot_slack_ack_latency_seconds) either way.
 */
function tagRequests(app: App, logger: Logger): void {
  const process = app.processEvent.bind(app);
  app.processEvent = (event) => {
    afterAckQueue.noteRequest();
    const b = event.body as Record<string, any>;
    const what = b.command ?? b.actions?.[0]?.action_id ?? b.view?.callback_id ?? b.type ?? 'event';
    const fields = { requestId: randomUUID(), slackUser: b.user_id ?? b.user?.id, slackRequest: String(what) };
    const t0 = performance.now();
    let ackMs: number | undefined;
    const ack = event.ack.bind(event);
    event.ack = (response) => {
      ackMs ??= Math.round(performance.now() - t0);
      return ack(response);
    };
    return withLogContext(fields, async () => {
      try {
        return await process(event);
      } finally {
        const ms = Math.round(performance.now() - t0);
        if ((ackMs ?? ms) >= SLOW_REQUEST_MS) logger.info({ ms, ackMs }, 'slack request handled');
        else logger.debug({ ms, ackMs }, 'slack request handled');
      }
    });
  };
}
