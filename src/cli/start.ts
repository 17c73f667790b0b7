import { startBot, type Bot } from '../app/bot.ts';
import { leanSlackProcessHeap } from '../app/heap.ts';
import { logger } from '../log.ts';
import { errorMessage, redact } from '../redact.ts';
import { ConfigError } from '../slack/config.ts';

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/';

/**
 * A start-up failure in one line: a Slack Web API request that never got an answer (no network, DNS, proxy)
 * says which URL it tried; anything else is its (redacted) message. Never a stack trace.
 */
export function startupFailure(err: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const e = err as { code?: unknown; original?: unknown; cause?: unknown } | undefined;
  if (e?.code === 'slack_webapi_request_error') {
    const url = env.SLACK_API_URL || DEFAULT_SLACK_API_URL;
    const details: string[] = [];
    let cur: unknown = e.original ?? e.cause;
    for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
      const c = cur as { message?: unknown; code?: unknown; cause?: unknown };
      const text = typeof c.message === 'string' && c.message ? c.message : typeof c.code === 'string' ? c.code : '';
      if (text && !details.some((d) => d.includes(text))) details.push(text);
      cur = c.cause;
    }
    return redact(`cannot reach Slack at ${url} (auth.test): ${details.join(': ') || 'request failed'} — check network/proxy or SLACK_API_URL`);
  }
  return errorMessage(err);
}

/** `re-bot start`: the Slack bot with health, readiness and metrics; runs until SIGTERM/SIGINT. */
export async function run(_args: string[]): Promise<number> {
  leanSlackProcessHeap();
  const log = logger();
  let bot: Bot;
  try {
    bot = await startBot({ logger: log });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`re-bot start: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`re-bot start: ${startupFailure(err)}\n`);
    return 1;
  }
  log.info({ mode: bot.config.mode, port: bot.port }, 're-bot started: /healthz, /readyz, /metrics' + (bot.config.mode === 'http' ? ', /slack/events' : ''));
  await new Promise<void>((done) => {
    const stop = async (signal: string) => {
      log.info({ signal }, 'stopping: finishing in-flight Slack writes, leaving jobs resumable');
      try {
        await bot.stop();
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'error while stopping');
      } finally {
        done();
      }
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
  return 0;
}
