/**
 * Two stores side by side for parity tests of src/store/pg/{jobs,approvals,outbox,status}.ts: a SQLite store
 * (openStore on a temp file) and a PostgreSQL database on a throwaway cluster (test/support/postgres.ts) with two
 * pools (`pg`, `pg2`: two replicas). A test runs the same operations on both, each through its own code (the
 * SQLite functions of src/jobs/* and src/slack/outbox-store.ts vs the PostgreSQL ones), then compares the rows
 * both hold with `rowsOf`: same jobs, steps, approvals, votes and audit rows (hashes included, so the audit rows
 * match to the byte).
 *
 * Declare with `describeTwins(name, (t) => …)`: skipped with a reason without PostgreSQL (test/support/tools.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { asc, sql } from 'drizzle-orm';
import { appendAudit } from '../../src/store/audit.ts';
import { openStore, type Store } from '../../src/store/db.ts';
import * as lite from '../../src/store/schema.ts';
import type { AuditFn } from '../../src/jobs/queue.ts';
import { openPgStore, type PgStore } from '../../src/store/pg/open.ts';
import * as pgs from '../../src/store/pg/schema.ts';
import { pgAudit, type PgAuditFn } from '../../src/store/pg/jobs.ts';
import { startPostgres, type PgCluster } from './postgres.ts';
import { describeWithTools } from './tools.ts';

export interface Twins {
  lite: Store;
  pg: PgStore;
  /** a second pool on the same database: another replica */
  pg2: PgStore;
  /** the test's clock (ms), shared by both sides; `tick(ms)` moves it */
  now(): number;
  iso(): string;
  tick(ms?: number): void;
  /** the engine's audit function on each side, on the test clock */
  liteAudit: AuditFn;
  pgAudit: PgAuditFn;
}

export const T0 = Date.UTC(2026, 0, 1, 12);

const TABLES = ['approval_votes', 'approvals', 'job_steps', 'jobs', 'deployments', 'audit_events', 'slack_outbox', 'sealed_secrets'];

export function describeTwins(name: string, fn: (t: () => Twins) => void, dbName: string): void {
  describeWithTools(['postgresql'], name, () => {
    let cluster: PgCluster | undefined;
    let twins: Twins | undefined;
    let dir = '';
    let clock = T0;
    beforeAll(async () => {
      cluster = await startPostgres();
      const url = await cluster.createDatabase(dbName);
      const [pg, pg2] = await Promise.all([openPgStore(url), openPgStore(url)]);
      dir = mkdtempSync(join(tmpdir(), 'rebot-twins-'));
      const store = openStore({ path: join(dir, 're-bot.db') });
      const now = () => clock;
      twins = {
        lite: store, pg, pg2, now, iso: () => new Date(clock).toISOString(), tick: (ms = 1000) => void (clock += ms),
        liteAudit: (j, actor, action, extra = {}) => void appendAudit(store, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash, ...extra }, new Date(now())),
        pgAudit: pgAudit(now),
      };
    }, 180_000);
    afterAll(async () => {
      twins?.lite.close();
      await Promise.all([twins?.pg.close(), twins?.pg2.close()]);
      cluster?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      clock = T0;
      if (!twins) return;
      twins.lite.sqlite.exec(`${TABLES.map((t) => `DELETE FROM ${t};`).join(' ')} DELETE FROM sqlite_sequence;`);
      await twins.pg.db.execute(sql.raw(`truncate ${[...TABLES, 'slack_channel_leases'].join(', ')} restart identity cascade`));
    });
    fn(() => {
      if (!twins) throw new Error('the twin stores did not open (see beforeAll)');
      return twins;
    });
  });
}

/** Every row of the job tables and the audit log on one side, in a fixed order, as plain objects. */
export async function rowsOf(t: Twins, side: 'lite' | 'pg', o: { hashes?: boolean } = {}) {
  const audit = o.hashes === false ? withoutIds : <R,>(r: R) => r;
  if (side === 'lite') {
    const { db } = t.lite;
    return {
      deployments: db.select().from(lite.deployments).orderBy(asc(lite.deployments.name)).all(),
      jobs: db.select().from(lite.jobs).orderBy(asc(lite.jobs.id)).all(),
      steps: db.select().from(lite.jobSteps).orderBy(asc(lite.jobSteps.jobId), asc(lite.jobSteps.execOrder)).all(),
      approvals: db.select().from(lite.approvals).orderBy(asc(lite.approvals.requestedAt)).all().map(({ id: _, ...a }) => a),
      votes: db.select().from(lite.approvalVotes).orderBy(asc(lite.approvalVotes.at), asc(lite.approvalVotes.user)).all().map(({ approvalId: _, ...v }) => v),
      audit: db.select().from(lite.auditEvents).orderBy(asc(lite.auditEvents.seq)).all().map(audit),
    };
  }
  const { db } = t.pg;
  return {
    deployments: await db.select().from(pgs.deployments).orderBy(asc(pgs.deployments.name)),
    jobs: await db.select().from(pgs.jobs).orderBy(asc(pgs.jobs.id)),
    steps: await db.select().from(pgs.jobSteps).orderBy(asc(pgs.jobSteps.jobId), asc(pgs.jobSteps.execOrder)),
    approvals: (await db.select().from(pgs.approvals).orderBy(asc(pgs.approvals.requestedAt))).map(({ id: _, ...a }) => a),
    votes: (await db.select().from(pgs.approvalVotes).orderBy(asc(pgs.approvalVotes.at), asc(pgs.approvalVotes.user))).map(({ approvalId: _, ...v }) => v),
    audit: (await db.select().from(pgs.auditEvents).orderBy(asc(pgs.auditEvents.seq))).map(audit),
  };
}

/**
 * Approval ids are random per side (`apr_<uuid>`), and the audit rows that name them, and every row chained after
 * them, hash differently: `{ hashes: false }` compares audit rows without the ids and hashes (each side's chain is
 * verified on its own).
 */
function withoutIds<R extends { details: unknown; hash: string; prevHash: string }>(r: R) {
  const { hash: _h, prevHash: _p, ...rest } = r;
  const d = r.details as Record<string, unknown> | null;
  if (!d || typeof d.approvalId !== 'string') return rest;
  const { approvalId: _, ...details } = d;
  return { ...rest, details };
}
