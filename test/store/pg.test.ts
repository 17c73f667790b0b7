import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { generateDrizzleJson, generateMigration } from 'drizzle-kit/api';
import * as sqliteSchema from '../../src/store/schema.ts';
import * as pgSchema from '../../src/store/pg/schema.ts';
import { ConfigError } from '../../src/config-error.ts';
import { redact } from '../../src/redact.ts';
import { openStore } from '../../src/store/db.ts';
import { MIGRATION_LOCK, MIGRATIONS_PG, openPgStore, parseDatabaseUrl, type PgStore } from '../../src/store/pg/open.ts';
import { startPostgres, type PgCluster } from '../support/postgres.ts';
import { describeWithTools } from '../support/tools.ts';

describe('RE_BOT_DATABASE_URL', () => {
  it('names the variable and the expected form for a URL of another scheme, echoing none of it', () => {
    const e = (() => {
      try {
        parseDatabaseUrl('mysql://bot:hunter2-secret@db:3306/rebot');
      } catch (err) {
        return err as Error;
      }
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e!.message).toBe('RE_BOT_DATABASE_URL: not a PostgreSQL URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://…)');
  });

  it('rejects text that is not a URL without echoing it', () => {
    for (const bad of ['bot:hunter2 secret@db/rebot', 'hunter2-secret', 'postgres://bot:hunter2@db:99999/x']) {
      expect(() => parseDatabaseUrl(bad)).toThrow(/^RE_BOT_DATABASE_URL: not a (PostgreSQL )?URL; expected postgres:\/\//);
      try {
        parseDatabaseUrl(bad);
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2');
      }
    }
  });

  it('rejects a URL without a host or with a bad port', () => {
    expect(() => parseDatabaseUrl('postgres:///rebot')).toThrow(/RE_BOT_DATABASE_URL: no host/);
    expect(() => parseDatabaseUrl('postgres://db:0/rebot')).toThrow(/RE_BOT_DATABASE_URL: bad port "0"/);
  });

  it('masks the password in the URL it returns for logs, and in anything redacted later', () => {
    const { redacted } = parseDatabaseUrl('postgresql://bot:Zq8%40pass-word@db.internal:5432/rebot?sslmode=require');
    expect(redacted).toBe('postgresql://bot:REDACTED@db.internal:5432/rebot?sslmode=require');
    // the decoded password is registered: a driver error quoting it is masked by the one redaction pipeline
    expect(redact('password authentication failed: Zq8@pass-word')).not.toContain('Zq8@pass-word');
  });

  it('asks for a percent-encoded password when it is not one, without echoing it', () => {
    expect(() => parseDatabaseUrl('postgres://bot:50%off-Secret@db/rebot')).toThrow(
      'RE_BOT_DATABASE_URL: the password in postgres://bot:REDACTED@db/rebot is not URL-encoded (write "%" as %25)');
  });

  it('accepts a Unix socket directory given as ?host=', () => {
    expect(parseDatabaseUrl('postgres:///rebot?host=/var/run/postgresql&user=bot').redacted).toBe('postgres:///rebot?host=/var/run/postgresql&user=bot');
  });
});

const journal = JSON.parse(readFileSync(join(MIGRATIONS_PG, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ idx: number; tag: string }> };

describe('PostgreSQL schema (no server needed)', () => {
  it('declares every table and column of the SQLite schema, with the same names and nullability', () => {
    const shape = (cols: Array<{ name: string; notNull: boolean }>) => cols.map((c) => `${c.name}${c.notNull ? ' not null' : ''}`).sort();
    const fromSqlite = Object.fromEntries(Object.values(sqliteSchema).filter((t) => t instanceof SQLiteTable)
      .map((t) => { const c = sqliteTableConfig(t as SQLiteTable); return [c.name, shape(c.columns)]; }));
    const fromPg = Object.fromEntries(Object.values(pgSchema).filter((t) => t instanceof PgTable)
      .map((t) => { const c = pgTableConfig(t as PgTable); return [c.name, shape(c.columns)]; }));
    const { slack_channel_leases: _lease, ...shared } = fromPg;
    expect(Object.keys(fromSqlite).length).toBeGreaterThanOrEqual(8);
    expect(shared).toEqual(fromSqlite);
  });

  it('has migrations up to date with src/store/pg/schema.ts (else: npm run db:generate:pg)', async () => {
    const last = journal.entries.at(-1)!;
    const snapshot = JSON.parse(readFileSync(join(MIGRATIONS_PG, 'meta', `${String(last.idx).padStart(4, '0')}_snapshot.json`), 'utf8'));
    const pending = await generateMigration(snapshot, generateDrizzleJson(pgSchema as Record<string, unknown>, snapshot.id));
    expect(pending).toEqual([]);
  });
});

describeWithTools(['postgresql'], 'PostgreSQL store', () => {
  let cluster: PgCluster;
  const opened: PgStore[] = [];
  const open = async (url: string, opts?: Parameters<typeof openPgStore>[1]) => {
    const s = await openPgStore(url, opts);
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    cluster = await startPostgres();
  });
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    cluster?.stop();
  });

  it('migrates once when three replicas start together', async () => {
    const url = await cluster.createDatabase('three_replicas');
    const stores = await Promise.all([0, 1, 2].map(() => open(url)));
    const { rows } = await stores[0].pool.query('select hash from drizzle.__drizzle_migrations order by id');
    expect(journal.entries.length).toBeGreaterThan(0);
    expect(rows).toHaveLength(journal.entries.length);
    expect(new Set(rows.map((r) => r.hash)).size).toBe(rows.length);
    // a fourth start later finds nothing to apply and changes nothing
    await open(url);
    expect((await stores[1].pool.query('select count(*)::int as n from drizzle.__drizzle_migrations')).rows[0].n).toBe(journal.entries.length);
  });

  it('a replica waits for another replica\'s migration longer than an ordinary statement may run, within the migration timeout', async () => {
    const url = await cluster.createDatabase('slow_migration');
    // another replica is migrating: it holds the migration lock for 1.5 s
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      await other.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
      const waiting = open(url, { statementTimeoutMs: 300 });
      const givingUp = openPgStore(url, { migrationTimeoutMs: 500 }).then(() => 'opened', (e: Error) => e.message);
      await new Promise((r) => setTimeout(r, 1_500));
      await other.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      const s = await waiting;
      expect(await s.ping()).toBe(true);
      expect((await s.pool.query('select count(*)::int as n from drizzle.__drizzle_migrations')).rows[0].n).toBe(journal.entries.length);
      expect(await givingUp).toMatch(/^PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/slow_migration: .*(statement timeout|timeout)/);
    } finally {
      await other.end();
    }
  });

  it('has the tables and columns of the SQLite store, nullable where SQLite is, plus the outbox sender lease', async () => {
    const pgStore = await open(await cluster.createDatabase('parity'));
    const sqlite = openStore({ path: ':memory:' });
    try {
      const sqliteTables = (sqlite.sqlite.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name != '__drizzle_migrations'`).all() as Array<{ name: string }>).map((r) => r.name);
      const fromSqlite: Record<string, string[]> = {};
      for (const t of sqliteTables) {
        fromSqlite[t] = (sqlite.sqlite.pragma(`table_info(${t})`) as Array<{ name: string; notnull: number }>)
          .map((c) => `${c.name}${c.notnull ? ' not null' : ''}`).sort();
      }
      const { rows } = await pgStore.pool.query<{ table_name: string; column_name: string; is_nullable: 'YES' | 'NO' }>(
        `select table_name, column_name, is_nullable from information_schema.columns where table_schema = 'public'`);
      const fromPg: Record<string, string[]> = {};
      for (const r of rows) (fromPg[r.table_name] ??= []).push(`${r.column_name}${r.is_nullable === 'NO' ? ' not null' : ''}`);
      for (const cols of Object.values(fromPg)) cols.sort();
      expect(sqliteTables.length).toBeGreaterThanOrEqual(8);
      expect(fromSqlite.jobs).toContain('lease_owner');
      expect(fromSqlite.jobs).toContain('deployment not null');
      const { slack_channel_leases: leases, ...shared } = fromPg;
      expect(shared).toEqual(fromSqlite);
      expect(leases).toEqual(['channel not null', 'expires_at not null', 'owner not null']);
    } finally {
      sqlite.close();
    }
  });

  it('has the same named indexes, unique where SQLite is, partial for the per-deployment lock', async () => {
    const pgStore = await open(await cluster.createDatabase('index_parity'));
    const sqlite = openStore({ path: ':memory:' });
    try {
      const fromSqlite: Record<string, { unique: boolean; partial: boolean }> = {};
      const tables = (sqlite.sqlite.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name != '__drizzle_migrations'`).all() as Array<{ name: string }>);
      for (const { name } of tables) {
        for (const i of sqlite.sqlite.pragma(`index_list(${name})`) as Array<{ name: string; unique: number; partial: number }>) {
          if (!i.name.startsWith('sqlite_autoindex_')) fromSqlite[i.name] = { unique: i.unique === 1, partial: i.partial === 1 };
        }
      }
      const { rows } = await pgStore.pool.query<{ name: string; unique: boolean; partial: boolean }>(`
        select c.relname as name, i.indisunique as unique, i.indpred is not null as partial
        from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and not i.indisprimary`);
      const fromPg = Object.fromEntries(rows.map((r) => [r.name, { unique: r.unique, partial: r.partial }]));
      expect(fromPg).toEqual(fromSqlite);
      expect(fromPg.jobs_one_active_per_deployment).toEqual({ unique: true, partial: true });
      expect(fromPg.approval_votes_unique).toEqual({ unique: true, partial: false });
    } finally {
      sqlite.close();
    }
  });

  it('logs only a redacted URL', async () => {
    // trust auth ignores the password, which lets the test see what the store reports about it
    const url = (await cluster.createDatabase('redacted')).replace('postgres@', 'postgres:Pg-s3cret-value@');
    const s = await open(url);
    expect(s.url).not.toContain('Pg-s3cret-value');
    expect(s.url).toContain('REDACTED');
    expect(await s.ping()).toBe(true);
  });

  it('ping answers false within its timeout when no connection can be had', async () => {
    const s = await open(await cluster.createDatabase('ping_timeout'), { max: 1 });
    const held = await s.pool.connect();
    try {
      const t0 = Date.now();
      expect(await s.ping(300)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(4_000);
    } finally {
      held.release();
    }
    expect(await s.ping()).toBe(true);
  });

  it('fails to open with an error that names the redacted URL, not the password, when the database does not exist', async () => {
    const url = `postgres://postgres:Pg-s3cret-value@127.0.0.1:${cluster.port}/does_not_exist`;
    const err = await openPgStore(url, { connectionTimeoutMs: 2_000 }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^PostgreSQL at postgres:\/\/postgres:REDACTED@127\.0\.0\.1:\d+\/does_not_exist: database "does_not_exist" does not exist$/);
    expect(err?.message).not.toContain('Pg-s3cret-value');
  });

  it('a test process that exits without stopping its cluster leaves no server or files behind', async () => {
    const support = fileURLToPath(new URL('../support/postgres.ts', import.meta.url));
    const child = `const { startPostgres } = await import(${JSON.stringify(support)});
      const c = await startPostgres(); console.log(JSON.stringify({ port: c.port, dir: c.dir })); process.exit(0);`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { timeout: 120_000 });
    const { port, dir } = JSON.parse(stdout) as { port: number; dir: string };
    expect(existsSync(dir)).toBe(false);
    const refused = await new Promise<boolean>((done) => {
      const sock = connect({ host: '127.0.0.1', port }, () => { sock.destroy(); done(false); });
      sock.on('error', () => done(true));
    });
    expect(refused).toBe(true);
  });
});
