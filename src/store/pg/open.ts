/**
 * Opens re-bot's PostgreSQL store (RE_BOT_DATABASE_URL=postgres://…): a pg.Pool with connection, statement
 * and idle timeouts, drizzle's node-postgres dialect, and the migrations of ./migrations-pg applied at start.
 *
 * N replicas starting together migrate once: each takes the session-level advisory lock MIGRATION_LOCK on a
 * connection of its own before running drizzle's migrator, so the others wait, then find nothing left to apply.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { ConfigError } from '../../config-error.ts';
import { errorMessage, redact, registerSecret } from '../../redact.ts';
import * as schema from './schema.ts';

export type PgDb = NodePgDatabase<typeof schema>;

export interface PgStore {
  /** the URL with its password masked: the only form that may be logged */
  url: string;
  db: PgDb;
  pool: pg.Pool;
  /** true when the database answers `select 1` within `timeoutMs` (for /readyz); never throws */
  ping(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export const DATABASE_URL_VARIABLE = 'RE_BOT_DATABASE_URL';

/** pg_advisory_lock key held while migrating ("re-bot" in ASCII hex: any constant works, it must never change). */
export const MIGRATION_LOCK = 0x72652d626f74;

export const MIGRATIONS_PG = resolve(dirname(fileURLToPath(import.meta.url)), '../../../migrations-pg');

export interface PgStoreOptions {
  /** max pooled connections (default 10) */
  max?: number;
  /** give up connecting after this long (default 5 s) */
  connectionTimeoutMs?: number;
  /** the server cancels a statement running longer than this (default 30 s) */
  statementTimeoutMs?: number;
  /** close connections idle this long (default 30 s) */
  idleTimeoutMs?: number;
  /** waiting for another replica's migration plus our own (default 5 min) */
  migrationTimeoutMs?: number;
  /** where a broken idle connection is reported (the pool replaces it) */
  onPoolError?: (message: string) => void;
  migrationsFolder?: string;
}

/** The URL from RE_BOT_DATABASE_URL, or undefined when unset (SQLite is used then). */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[DATABASE_URL_VARIABLE];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

const EXPECTED = 'expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://…)';

/**
 * Checks the URL's shape and registers its password with the redaction, so neither this function's errors nor
 * any later log line can carry it. Returns the URL with the password masked.
 */
export function parseDatabaseUrl(raw: string): { redacted: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    // the value may hold a password that no pattern recognises in a malformed URL: it is not echoed
    throw new ConfigError([{ variable: DATABASE_URL_VARIABLE, message: `not a URL; ${EXPECTED}` }]);
  }
  if (u.password) registerSecret(u.password);
  registerSecret(u.searchParams.get('password'));
  const redactedUrl = redactUrl(u);
  let decodedPassword: string;
  try {
    decodedPassword = decodeURIComponent(u.password);
  } catch {
    throw new ConfigError([{ variable: DATABASE_URL_VARIABLE, message: `the password in ${redactedUrl} is not URL-encoded (write "%" as %25); ${EXPECTED}` }]);
  }
  // the driver sends the decoded form: that is what an error message could quote
  registerSecret(decodedPassword);
  // another scheme: `user:pass word@host` parses as scheme "user", so nothing of it is echoed
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new ConfigError([{ variable: DATABASE_URL_VARIABLE, message: `not a PostgreSQL URL; ${EXPECTED}` }]);
  const problem = (message: string) => new ConfigError([{ variable: DATABASE_URL_VARIABLE, message: `${message} in ${redactedUrl}; ${EXPECTED}` }]);
  // an empty host is allowed with ?host=/path/to/socket-dir (a Unix socket)
  if (!u.hostname && !u.searchParams.get('host')) throw problem('no host');
  if (u.port && !(Number(u.port) > 0 && Number(u.port) < 65536)) throw problem(`bad port "${u.port}"`);
  if (u.pathname.replace(/^\//, '').includes('/')) throw problem('a database name may not contain "/"');
  return { redacted: redactedUrl };
}

function redactUrl(u: URL): string {
  const c = new URL(u.href);
  if (c.password) c.password = 'REDACTED';
  if (c.searchParams.has('password')) c.searchParams.set('password', 'REDACTED');
  return c.href;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Applies ./migrations-pg under the migration advisory lock, on a connection of its own (not the pool's): its
 * statement and query timeouts are the migration's, since waiting behind another replica's migration can take
 * longer than any ordinary statement may. Ending the connection also frees the lock if unlocking failed.
 */
async function migrateOnce(url: string, folder: string, o: { timeoutMs: number; connectionTimeoutMs: number }): Promise<void> {
  const timeout = Math.max(1, Math.floor(o.timeoutMs));
  const client = new pg.Client({
    connectionString: url, connectionTimeoutMillis: o.connectionTimeoutMs, statement_timeout: timeout, query_timeout: timeout + 5_000,
    application_name: 're-bot migrate',
  });
  // a connection lost mid-migration is reported by the failing query; this keeps it from being an uncaught error
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle({ client, schema }), { migrationsFolder: folder });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** Opens the pool, checks the server answers, and migrates. Throws ConfigError for a malformed URL. */
export async function openPgStore(url: string, opts: PgStoreOptions = {}): Promise<PgStore> {
  const { redacted } = parseDatabaseUrl(url);
  const statementTimeoutMs = opts.statementTimeoutMs ?? 30_000;
  const connectionTimeoutMs = opts.connectionTimeoutMs ?? 5_000;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: connectionTimeoutMs,
    idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000,
    statement_timeout: statementTimeoutMs,
    // client side: a statement stuck on a dead connection is abandoned too
    query_timeout: statementTimeoutMs + 5_000,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    application_name: 're-bot',
    keepAlive: true,
  });
  // an idle connection that breaks (server restart, network) must not crash the process: the pool replaces it
  pool.on('error', (err) => opts.onPoolError?.(redact(errorMessage(err))));
  try {
    await migrateOnce(url, opts.migrationsFolder ?? MIGRATIONS_PG, { timeoutMs: opts.migrationTimeoutMs ?? 300_000, connectionTimeoutMs });
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`PostgreSQL at ${redacted}: ${errorMessage(err)}`);
  }
  const db = drizzle({ client: pool, schema });
  return {
    url: redacted,
    db,
    pool,
    async ping(timeoutMs = 2_000) {
      try {
        await withTimeout(pool.query('select 1'), timeoutMs, 'database ping');
        return true;
      } catch {
        return false;
      }
    },
    close: () => pool.end(),
  };
}
