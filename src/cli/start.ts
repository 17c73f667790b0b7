import { startBot, type Bot } from '../app/bot.ts';
import { logger } from '../log.ts';
import { errorMessage } from '../redact.ts';
import { ConfigError } from '../slack/config.ts';

/** `re-bot start`: the Slack bot with health, readiness and metrics; runs until SIGTERM/SIGINT. */
export async function run(_args: string[]): Promise<number> {
  const log = logger();
  let bot: Bot;
  try {
    bot = await startBot({ logger: log });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`re-bot start: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`re-bot start: ${errorMessage(err)}\n`);
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
