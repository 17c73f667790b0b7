import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';
import { ConfigError } from '../config-error.ts';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Store {
  path: string;
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export const DEFAULT_DB_PATH = './data/re-bot.db';

/**
 * RE_BOT_DATABASE_URL selects PostgreSQL for `re-bot start` and its worker (src/app/wire.ts, docs/ha.md), which
 * never open a SQLite store then. Everything that does open one (the CLI's run, status, history, cancel, retry,
 * demo) works on a local SQLite file: with the variable set it would read or write a different database than
 * the bot's, so it refuses instead, naming the variable.
 */
export function refuseDatabaseUrl(env: NodeJS.ProcessEnv = process.env): void {
  if (env.RE_BOT_DATABASE_URL?.trim()) {
    throw new ConfigError([{ variable: 'RE_BOT_DATABASE_URL', message: 'is set, but this command works on a SQLite file (RE_BOT_DB) only; the PostgreSQL store is used by `re-bot start` (the bot and its worker). Unset RE_BOT_DATABASE_URL to run it on SQLite, or use the Slack commands of the bot' }]);
  }
}

export function defaultDbPath(): string {
  return process.env.RE_BOT_DB ?? DEFAULT_DB_PATH;
}

/**
 * When a commit waits for the disk: `normal` (the default) or `full` (RE_BOT_SQLITE_SYNCHRONOUS). In WAL mode
 * `normal` loses nothing to a crash of re-bot itself (kill -9, OOM): a committed transaction is in the WAL, which
 * the OS keeps; only a power loss or kernel crash can roll back the last transactions since the WAL was last
 * synced, and the database stays consistent (SQLite: "WAL mode is always consistent with synchronous=NORMAL").
 * `full` syncs the WAL on every commit: about 0.7 ms per commit on this machine's disk, during which the
 * process's event loop is blocked (better-sqlite3 is synchronous) — in the Slack process, every decision, audit
 * row and outbox mark (BENCHMARKS.md). What a rolled-back commit means for re-bot: a step re-runs (every step is
 * safe to re-run), an approval is asked again, a Slack post may be posted a second time.
 */
export function sqliteSynchronous(env: NodeJS.ProcessEnv = process.env): 'NORMAL' | 'FULL' {
  const v = env.RE_BOT_SQLITE_SYNCHRONOUS?.trim().toLowerCase();
  if (!v || v === 'normal') return 'NORMAL';
  if (v === 'full') return 'FULL';
  throw new ConfigError([{ variable: 'RE_BOT_SQLITE_SYNCHRONOUS', message: `expected "normal" (the default) or "full", got "${env.RE_BOT_SQLITE_SYNCHRONOUS}"` }]);
}

/** The DB and its -wal/-shm files hold sealed secrets, audit and job history: owner-only (0600). */
function ownerOnly(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Opens (creating if needed) the SQLite DB, applies pending migrations. */
export function openStore(opts: { path?: string } = {}): Store {
  refuseDatabaseUrl();
  const path = opts.path ?? defaultDbPath();
  const onDisk = path !== ':memory:' && path !== '';
  if (onDisk) {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    // create it 0600 before SQLite does (SQLite would apply the umask, and gives -wal/-shm the DB file's mode)
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    ownerOnly(path);
  }
  const synchronous = sqliteSynchronous();
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${synchronous}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  // the migrations wrote: -wal and -shm exist now; older versions of re-bot may have left them world-readable
  if (onDisk) for (const f of [`${path}-wal`, `${path}-shm`]) ownerOnly(f);
  return { path, db, sqlite, close: () => sqlite.close() };
}

/** Why an existing re-bot DB could not be opened; `message` tells the user what to do (CLI: exit 2, no stack). */
export class DbOpenError extends Error {
  constructor(
    readonly reason: 'empty' | 'directory' | 'missing' | 'not_sqlite' | 'not_rebot' | 'cannot_open',
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'DbOpenError';
  }
}

/** Tables every re-bot command reads; their absence means "not a re-bot DB" (or one never migrated). */
const REQUIRED_TABLES = ['__drizzle_migrations', 'deployments', 'jobs', 'job_steps', 'approvals', 'approval_votes', 'audit_events'];

/** Where the path came from, for messages: "RE_BOT_DB" or "default ./data/re-bot.db". */
function sourceOf(path: string | undefined): string {
  if (path !== undefined) return 'the path given';
  return process.env.RE_BOT_DB !== undefined ? 'from RE_BOT_DB' : `default ${DEFAULT_DB_PATH}; set RE_BOT_DB to use another`;
}

/**
 * Checks that `path` (default: RE_BOT_DB, else ./data/re-bot.db) is an existing, migrated re-bot DB
 * without creating or changing anything. Returns the absolute path; throws DbOpenError otherwise.
 */
export function checkExistingDb(path?: string): string {
  const abs = checkPath(path);
  openReadOnlyHandle(abs, sourceOf(path)).close();
  return abs;
}

function checkPath(path: string | undefined): string {
  const raw = path ?? defaultDbPath();
  const src = sourceOf(path);
  if (raw.trim() === '') {
    throw new DbOpenError('empty', raw, path === undefined
      ? `RE_BOT_DB is set but empty: set it to the SQLite file, e.g. ${DEFAULT_DB_PATH} (or unset it to use that default)`
      : `the database path is empty: give the SQLite file, e.g. ${DEFAULT_DB_PATH}`);
  }
  const abs = resolve(raw);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new DbOpenError('missing', abs, `no re-bot database at ${abs} (${src}): run \`re-bot run <spec.yaml>\` or \`re-bot demo\` first, or point RE_BOT_DB at the DB`);
  }
  if (st.isDirectory()) {
    throw new DbOpenError('directory', abs, `${abs} (${src}) is a directory, not a SQLite file: point RE_BOT_DB at the DB file, e.g. ${resolve(abs, 're-bot.db')}`);
  }
  return abs;
}

function openReadOnlyHandle(abs: string, src: string): Database.Database {
  let sqlite: Database.Database;
  try {
    sqlite = new Database(abs, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new DbOpenError('cannot_open', abs, `cannot open the database ${abs} (${src}) read-only: ${(err as Error).message}. Check the file and its directory are readable, or point RE_BOT_DB at another DB`);
  }
  try {
    sqlite.pragma('busy_timeout = 5000');
    const rows = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    const have = new Set(rows.map((r) => r.name));
    const missing = REQUIRED_TABLES.filter((t) => !have.has(t));
    if (missing.length) {
      throw new DbOpenError('not_rebot', abs, have.size === 0
        ? `${abs} (${src}) is an empty SQLite file, not a re-bot database: point RE_BOT_DB at re-bot's DB (created by \`re-bot run\`, \`re-bot demo\` or \`re-bot start\`)`
        : `${abs} (${src}) is a SQLite database but not a re-bot one (missing tables: ${missing.join(', ')}): point RE_BOT_DB at re-bot's DB`);
    }
    return sqlite;
  } catch (err) {
    sqlite.close();
    if (err instanceof DbOpenError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new DbOpenError('not_sqlite', abs, `${abs} (${src}) is not a SQLite database: point RE_BOT_DB at re-bot's DB file`);
    }
    throw new DbOpenError('cannot_open', abs, `cannot read the database ${abs} (${src}): ${(err as Error).message}. Check the file and its directory are readable (a WAL database needs its -wal/-shm files or a writable directory)`);
  }
}

/**
 * Opens an existing re-bot DB read-only: never creates the file or its directory, runs no migrations.
 * For `re-bot status`, `history`, `doctor`. Throws DbOpenError (with a message naming the path and RE_BOT_DB).
 */
export function openStoreReadOnly(path?: string): Store {
  refuseDatabaseUrl();
  const abs = checkPath(path);
  const sqlite = openReadOnlyHandle(abs, sourceOf(path));
  const db = drizzle(sqlite, { schema });
  return { path: abs, db, sqlite, close: () => sqlite.close() };
}

/** An existing re-bot DB opened read-write (pending migrations applied); never creates one. For `re-bot cancel`/`retry`. */
export function openExistingStore(path?: string): Store {
  const abs = checkExistingDb(path);
  const store = openStore({ path: abs });
  return { ...store, path: abs };
}
