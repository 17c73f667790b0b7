import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { JobEngine } from '../jobs/types.ts';
import { logger } from '../log.ts';
import { errorMessage } from '../redact.ts';
import { ConfigError, loadSlackConfig } from '../slack/config.ts';
import { createSlackApp } from '../slack/app.ts';
import { SqliteOutboxStore } from '../slack/outbox.ts';

/** What `src/app/wire.ts` `createRuntime({dbPath})` must provide to the Slack bot. */
export interface SlackRuntimeDeps {
  engine: JobEngine;
  /** the better-sqlite3 handle of the store (the outbox keeps its rows in the same DB) */
  db: Database.Database;
  sealSecret(value: string, purpose: string): string;
  deployments(): string[];
  close?(): void | Promise<void>;
}

async function loadRuntime(dbPath: string): Promise<SlackRuntimeDeps> {
  const wire = './../app/wire.ts';
  const mod = (await import(wire)) as { createRuntime(o: { dbPath: string }): Promise<SlackRuntimeDeps> | SlackRuntimeDeps };
  return mod.createRuntime({ dbPath });
}

export async function run(_args: string[]): Promise<number> {
  const log = logger();
  let config;
  try {
    config = loadSlackConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`re-bot start: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const dbPath = resolve(process.env.RE_BOT_DB ?? 're-bot.db');
  let runtime: SlackRuntimeDeps;
  try {
    runtime = await loadRuntime(dbPath);
  } catch (err) {
    process.stderr.write(`re-bot start: cannot open the store/job engine at ${dbPath}: ${errorMessage(err)}\n`);
    return 1;
  }
  const slack = createSlackApp({
    engine: runtime.engine,
    config,
    logger: log,
    outboxStore: new SqliteOutboxStore(runtime.db),
    sealSecret: runtime.sealSecret,
    deployments: runtime.deployments,
  });
  runtime.engine.start();
  await slack.start();
  log.info({ mode: config.mode, port: config.mode === 'http' ? config.port : undefined }, 're-bot Slack app started');
  await new Promise<void>((done) => {
    const stop = async (signal: string) => {
      log.info({ signal }, 'stopping: finishing in-flight Slack writes, leaving jobs resumable');
      try {
        await slack.outbox.idle(10_000).catch(() => undefined);
        await slack.stop();
        await runtime.engine.stop();
        await runtime.close?.();
      } finally {
        done();
      }
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
  return 0;
}
