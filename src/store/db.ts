import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.ts';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Store {
  path: string;
  db: Db;
  sqlite: Database.Database;
  close(): void;
}

const MIGRATIONS = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations');

export function defaultDbPath(): string {
  return process.env.RE_BOT_DB ?? './data/re-bot.db';
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
  const path = opts.path ?? defaultDbPath();
  const onDisk = path !== ':memory:' && path !== '';
  if (onDisk) {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
    // create it 0600 before SQLite does (SQLite would apply the umask, and gives -wal/-shm the DB file's mode)
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    ownerOnly(path);
  }
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  // the migrations wrote: -wal and -shm exist now; older versions of re-bot may have left them world-readable
  if (onDisk) for (const f of [`${path}-wal`, `${path}-shm`]) ownerOnly(f);
  return { path, db, sqlite, close: () => sqlite.close() };
}
