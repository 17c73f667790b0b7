/**
 * The database part of `/readyz`: can the store answer a query now, within a deadline? A replica whose
 * database is unreachable answers 503 naming the `db` check, so the Service stops sending it Slack requests;
 * liveness (`/healthz`) does not include it, so a database outage makes pods unready without restarting them.
 *
 * SQLite: a trivial read of the migrations table (it touches the file, unlike `select 1`). PostgreSQL:
 * `PgStore.ping(timeoutMs)` (src/store/pg/open.ts), which never throws. Text in a failing check goes through
 * the redaction: a URL's password never reaches the probe's answer.
 */
import type Database from 'better-sqlite3';
import { errorMessage, redact } from '../redact.ts';
import type { PgStore } from '../store/pg/open.ts';

export interface DatabaseProbe {
  /** names the store in a failing check: "SQLite at /data/re-bot.db", "PostgreSQL at postgres://bot:REDACTED@db/rebot" */
  describe: string;
  /** true when the store answered within `timeoutMs`; false, or a rejection, when it did not */
  ping(timeoutMs: number): Promise<boolean>;
}

/** what a readiness probe waits for the database (the kubelet's readiness timeout is 3 s) */
export const DB_PING_TIMEOUT_MS = 2_000;

export function sqliteProbe(sqlite: Pick<Database.Database, 'open' | 'prepare'>, path: string): DatabaseProbe {
  return {
    describe: `SQLite at ${path}`,
    async ping() {
      if (!sqlite.open) throw new Error('closed');
      // better-sqlite3 is synchronous: a WAL read does not wait for writers, so this cannot hang the probe
      sqlite.prepare('SELECT 1 FROM __drizzle_migrations LIMIT 1').get();
      return true;
    },
  };
}

export function postgresProbe(store: Pick<PgStore, 'url' | 'ping'>): DatabaseProbe {
  return { describe: `PostgreSQL at ${store.url}`, ping: (timeoutMs) => store.ping(timeoutMs) };
}

/**
 * `true` when the database answered within `timeoutMs`, else why not, naming the store (redacted). Never throws,
 * and never waits much past `timeoutMs`, even for a probe that ignores its deadline.
 */
export async function checkDatabase(probe: DatabaseProbe, timeoutMs = DB_PING_TIMEOUT_MS): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs + 250);
  });
  try {
    const answer = await Promise.race([Promise.resolve().then(() => probe.ping(timeoutMs)), late]);
    if (answer === true) return true;
    return redact(`${probe.describe}: no answer within ${timeoutMs} ms`);
  } catch (err) {
    return redact(`${probe.describe}: ${errorMessage(err)}`);
  } finally {
    clearTimeout(timer);
  }
}
