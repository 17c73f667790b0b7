import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHealthServer, type HealthServer } from '../../src/app/http.ts';
import { checkDatabase, postgresProbe, sqliteProbe, type DatabaseProbe } from '../../src/app/readiness.ts';
import { createMetrics } from '../../src/metrics.ts';
import { openStore, type Store } from '../../src/store/db.ts';
import { openPgStore, type PgStore } from '../../src/store/pg/open.ts';
import { startPostgres, type PgCluster } from '../support/postgres.ts';
import { describeWithTools } from '../support/tools.ts';

/** /readyz the way the bot builds it around the database check: 503 naming `db` when it fails */
async function serveReadiness(probe: DatabaseProbe, timeoutMs: number): Promise<HealthServer> {
  return startHealthServer({
    port: 0, host: '127.0.0.1', metrics: createMetrics({}, { defaultMetrics: false }),
    ready: async () => {
      const db = await checkDatabase(probe, timeoutMs);
      return { ok: db === true, checks: { db } };
    },
  });
}

async function readyz(srv: HealthServer) {
  const res = await fetch(`${srv.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

describe('database readiness check', () => {
  let dir: string;
  let store: Store | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rebot-ready-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => {
    if (store?.sqlite.open) store.close();
  });

  it('SQLite: ready while the DB answers; once it is closed, the failing check names the file', async () => {
    const path = join(dir, 'ready.db');
    store = openStore({ path });
    const probe = sqliteProbe(store.sqlite, path);
    expect(await checkDatabase(probe)).toBe(true);
    store.close();
    expect(await checkDatabase(probe)).toBe(`SQLite at ${path}: closed`);
  });

  it('SQLite: a file that is not a migrated re-bot DB is not ready', async () => {
    const Database = (await import('better-sqlite3')).default;
    const path = join(dir, 'empty.db');
    const raw = new Database(path);
    try {
      expect(await checkDatabase(sqliteProbe(raw, path))).toMatch(new RegExp(`^SQLite at ${path}: no such table: __drizzle_migrations`));
    } finally {
      raw.close();
    }
  });

  it('a store that does not answer fails the check after the deadline, not the probe\'s own timeout', async () => {
    const hanging: DatabaseProbe = { describe: 'PostgreSQL at postgres://bot:REDACTED@db/rebot', ping: () => new Promise(() => {}) };
    const t = Date.now();
    expect(await checkDatabase(hanging, 200)).toBe('PostgreSQL at postgres://bot:[REDACTED]@db/rebot: no answer within 200 ms');
    expect(Date.now() - t).toBeLessThan(2_000);
  });

  it('a PostgreSQL store whose ping fails is named by its redacted URL; a password in an error is masked', async () => {
    const down = postgresProbe({ url: 'postgres://bot:REDACTED@db.internal:5432/rebot', ping: async () => false });
    expect(await checkDatabase(down, 300)).toBe('PostgreSQL at postgres://bot:[REDACTED]@db.internal:5432/rebot: no answer within 300 ms');
    const leaky: DatabaseProbe = { describe: 'PostgreSQL at db.internal', ping: async () => { throw new Error('connect to postgres://bot:Hunter2-pw@db.internal/rebot refused'); } };
    const answer = await checkDatabase(leaky, 300);
    expect(answer).toMatch(/^PostgreSQL at db\.internal: connect to postgres:\/\/bot:.*@db\.internal\/rebot refused$/);
    expect(answer).not.toContain('Hunter2-pw');
  });
});

describeWithTools(['postgresql'], 'readiness on PostgreSQL', () => {
  let cluster: PgCluster;
  let store: PgStore | undefined;
  let srv: HealthServer | undefined;
  const PASSWORD = 'Ready-Pr0be-S3cret';

  beforeAll(async () => {
    cluster = await startPostgres();
    await cluster.createDatabase('ready');
  });
  afterAll(async () => {
    await srv?.close();
    await store?.close().catch(() => {});
    cluster?.stop();
  });

  it('/readyz is 200 while PostgreSQL answers and 503 naming the db check, URL redacted, once the server is gone', async () => {
    // trust auth ignores the password; it is there to show it never reaches the answer (the redaction pipeline
    // writes its own mask over the store's REDACTED)
    store = await openPgStore(`postgres://postgres:${PASSWORD}@127.0.0.1:${cluster.port}/ready`);
    srv = await serveReadiness(postgresProbe(store), 1_000);
    const up = await readyz(srv);
    expect(up.status).toBe(200);
    expect(JSON.parse(up.text)).toEqual({ ok: true, checks: { db: true } });

    cluster.stop();
    const down = await readyz(srv);
    expect(down.status).toBe(503);
    const body = JSON.parse(down.text);
    expect(body.failing).toEqual(['db']);
    expect(body.checks.db).toBe(`PostgreSQL at postgres://postgres:[REDACTED]@127.0.0.1:${cluster.port}/ready: no answer within 1000 ms`);
    expect(down.text).not.toContain(PASSWORD);
  }, 60_000);
});
