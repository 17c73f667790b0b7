/**
 * The same test body against both stores: `describeEachDialect(name, (store) => { … })` declares the block once
 * per dialect, `[sqlite]` on a temp file opened by openStore and `[postgres]` on a database of a throwaway
 * cluster (test/support/postgres.ts; skipped with a reason when PostgreSQL is missing, failing under
 * RE_BOT_REQUIRE_TOOLS=1). Tables are emptied before each test.
 *
 * `DialectStore` is what exists on both sides, each side calling its own code (src/store/audit.ts vs
 * src/store/pg/audit.ts, claimNext/renewLease of src/jobs/queue.ts vs src/store/pg/claim.ts, the secret boxes of
 * src/store/crypto.ts vs src/store/pg/secrets.ts) and its own schema, everything async, plus raw access for tests
 * (tampering, rows behind the box's back) and `repo`: that dialect's Repository of src/store/repo.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import { sql as pgSql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import { claimNext, renewLease } from '../../src/jobs/queue.ts';
import { createSecretBox } from '../../src/store/crypto.ts';
import { createPgSecretBox } from '../../src/store/pg/secrets.ts';
import { openRepository, sqliteRepository, type Repository, type RepoClock } from '../../src/store/repo.ts';
import { pgRepository } from '../../src/store/pg/repo.ts';
import { appendAudit, verifyAuditChain, type AuditInput } from '../../src/store/audit.ts';
import { openStore, type Store } from '../../src/store/db.ts';
import * as lite from '../../src/store/schema.ts';
import { appendAuditPg, verifyAuditChainPg } from '../../src/store/pg/audit.ts';
import { claimNextJob, renewJobLease } from '../../src/store/pg/claim.ts';
import { openPgStore, type PgStore } from '../../src/store/pg/open.ts';
import * as pgs from '../../src/store/pg/schema.ts';
import { DEPLOYMENT_LOCK_CONSTRAINT, isUniqueViolation } from '../../src/store/pg/votes.ts';
import { startPostgres, type PgCluster } from './postgres.ts';
import { describeWithTools } from './tools.ts';

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type Dialect = (typeof DIALECTS)[number];

export type AuditRow = typeof lite.auditEvents.$inferSelect;
export type ChainCheck = { ok: true; count: number } | { ok: false; brokenAtSeq: number; reason: string };

export interface JobInput {
  id: string;
  deployment: string;
  state: string;
  createdAt: string;
}

/** Which unique rule a refused write broke, in the same words on both dialects. */
export class ConstraintError extends Error {
  constructor(readonly constraint: 'jobs_one_active_per_deployment' | 'approval_votes_unique', cause: unknown) {
    super(`refused by ${constraint}`, { cause });
  }
}

export interface DialectStore {
  dialect: Dialect;
  appendAudit(e: AuditInput, at?: Date): Promise<AuditRow>;
  verifyAudit(): Promise<ChainCheck>;
  auditRows(): Promise<AuditRow[]>;
  /** changes one stored audit row behind the chain's back (what tampering looks like) */
  tamperAudit(seq: number, decision: string): Promise<void>;
  /** a plain insert: ConstraintError('jobs_one_active_per_deployment') when the deployment has an active job */
  insertJob(j: JobInput): Promise<void>;
  setJobState(id: string, state: string): Promise<void>;
  jobIds(deployment: string): Promise<string[]>;
  insertApproval(id: string, jobId: string): Promise<void>;
  /** a plain insert: ConstraintError('approval_votes_unique') when that user already voted on that approval */
  insertVote(v: { approvalId: string; user: string; decision: string; at: string }): Promise<void>;
  votes(approvalId: string): Promise<Array<{ user: string; decision: string }>>;
  /** the oldest claimable queued job, leased to `owner` */
  claim(o: { owner: string; leaseMs: number; exclude?: string[] }): Promise<string | undefined>;
  renew(o: { jobId: string; owner: string; leaseMs: number }): Promise<boolean>;
  requestCancel(jobId: string): Promise<void>;
  /** the secret box of this dialect, sealing with `SECRET_KEY` */
  secrets: AsyncSecretBox;
  /** a box over the same rows sealing and opening with another key */
  secretsWithKey(key: Buffer): AsyncSecretBox;
  sealedRow(id: string): Promise<SealedRow | undefined>;
  /** writes columns of a sealed_secrets row behind the box's back */
  setSealedRow(id: string, values: Partial<SealedRow & { createdAt: string }>): Promise<void>;
  /** every row of every table, as text (to look for plaintext) */
  everyRowAsText(): Promise<string>;
  /** src/store/repo.ts over this store, on the test clock, sealing with SECRET_KEY */
  repo: Repository;
  /** another Repository opened through `openRepository` on the same database (another replica on PostgreSQL) */
  openAgain(): Promise<Repository>;
  /** moves the repository clock (row times, audit times, approval expiry; on SQLite also lease deadlines) */
  tick(ms: number): void;
  reset(): Promise<void>;
}

/** Real time plus an offset tests move with `tick`; reset to 0 before each test. */
function testClock(): RepoClock & { offset: number } {
  const c = { offset: 0, now: () => Date.now() + c.offset };
  return c;
}

export interface AsyncSecretBox {
  sealSecret(value: string, purpose?: string): Promise<string>;
  openSecret(id: string): Promise<string>;
  eraseSecret(id: string): Promise<void>;
}
export interface SealedRow {
  ciphertext: string | null;
  iv: string | null;
  tag: string | null;
  purpose: string;
  erasedAt: string | null;
}

/** the key both dialects' boxes seal with in contract tests */
export const SECRET_KEY = randomBytes(32);

function asyncBox(box: ReturnType<typeof createSecretBox>): AsyncSecretBox {
  return {
    sealSecret: async (value, purpose) => box.sealSecret(value, purpose),
    openSecret: async (id) => box.openSecret(id),
    eraseSecret: async (id) => box.eraseSecret(id),
  };
}
const SEALED_COLUMNS: Record<keyof SealedRow | 'createdAt', string> = { ciphertext: 'ciphertext', iv: 'iv', tag: 'tag', purpose: 'purpose', erasedAt: 'erased_at', createdAt: 'created_at' };
function setClause(values: Partial<SealedRow & { createdAt: string }>, param: (i: number) => string): { text: string; args: unknown[] } {
  const entries = Object.entries(values) as Array<[keyof typeof SEALED_COLUMNS, unknown]>;
  return { text: entries.map(([k], i) => `${SEALED_COLUMNS[k]} = ${param(i + 1)}`).join(', '), args: entries.map(([, v]) => v) };
}

const jobValues = (j: JobInput) => ({
  id: j.id, deployment: j.deployment, state: j.state, requestedBy: 'U1', origin: { kind: 'cli' }, spec: {}, plan: { steps: [] },
  valuesHash: 'h', chart: 'c', createdAt: j.createdAt, updatedAt: j.createdAt,
});
const approvalValues = (id: string, jobId: string) => {
  const at = new Date().toISOString();
  return { id, jobId, stepId: 'agents', hash: 'x', title: 'helm upgrade', facts: {}, changedKeys: [], diffText: '', state: 'pending', required: 2, policy: {}, requestedAt: at, expiresAt: at };
};

function sqliteUnique(err: unknown, column: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'SQLITE_CONSTRAINT_UNIQUE' && (e.message ?? '').includes(column);
}

function sqliteStore(s: Store): DialectStore {
  const { db } = s;
  const clock = testClock();
  return {
    repo: sqliteRepository(s, { clock, secretKey: SECRET_KEY }),
    openAgain: () => openRepository(undefined, { sqlitePath: s.path, clock, secretKey: SECRET_KEY }),
    tick: (ms) => void (clock.offset += ms),
    dialect: 'sqlite',
    appendAudit: async (e, at) => appendAudit(s, e, at),
    verifyAudit: async () => verifyAuditChain(s),
    auditRows: async () => s.sqlite.prepare('SELECT seq, at, actor, action, job_id AS jobId, deployment, values_hash AS valuesHash, decision, result, details, prev_hash AS prevHash, hash FROM audit_events ORDER BY seq').all()
      .map((r) => ({ ...(r as AuditRow), details: (r as { details: string | null }).details === null ? null : JSON.parse((r as { details: string }).details) })),
    tamperAudit: async (seq, decision) => void s.sqlite.prepare('UPDATE audit_events SET decision = ? WHERE seq = ?').run(decision, seq),
    async insertJob(j) {
      try {
        db.insert(lite.jobs).values(jobValues(j)).run();
      } catch (err) {
        throw sqliteUnique(err, 'jobs.deployment') ? new ConstraintError('jobs_one_active_per_deployment', err) : err;
      }
    },
    setJobState: async (id, state) => void s.sqlite.prepare('UPDATE jobs SET state = ? WHERE id = ?').run(state, id),
    jobIds: async (deployment) => s.sqlite.prepare('SELECT id FROM jobs WHERE deployment = ? ORDER BY created_at, id').pluck().all(deployment) as string[],
    insertApproval: async (id, jobId) => void db.insert(lite.approvals).values(approvalValues(id, jobId)).run(),
    async insertVote(v) {
      try {
        db.insert(lite.approvalVotes).values(v).run();
      } catch (err) {
        throw sqliteUnique(err, 'approval_votes.approval_id') ? new ConstraintError('approval_votes_unique', err) : err;
      }
    },
    votes: async (approvalId) => s.sqlite.prepare('SELECT "user", decision FROM approval_votes WHERE approval_id = ? ORDER BY "user"').all(approvalId) as Array<{ user: string; decision: string }>,
    claim: async (o) => {
      const now = Date.now();
      return claimNext(s, { owner: o.owner, now, leaseMs: o.leaseMs, at: new Date(now).toISOString(), exclude: o.exclude });
    },
    renew: async (o) => renewLease(s, o.jobId, o.owner, Date.now() + o.leaseMs),
    requestCancel: async (jobId) => void s.sqlite.prepare('UPDATE jobs SET cancel_requested = 1 WHERE id = ?').run(jobId),
    secrets: asyncBox(createSecretBox(s, SECRET_KEY)),
    secretsWithKey: (key) => asyncBox(createSecretBox(s, key)),
    sealedRow: async (id) => s.sqlite.prepare('SELECT ciphertext, iv, tag, purpose, erased_at AS erasedAt FROM sealed_secrets WHERE id = ?').get(id) as SealedRow | undefined,
    async setSealedRow(id, values) {
      const c = setClause(values, () => '?');
      s.sqlite.prepare(`UPDATE sealed_secrets SET ${c.text} WHERE id = ?`).run(...c.args, id);
    },
    async everyRowAsText() {
      const tables = s.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
      return tables.map((t) => JSON.stringify(s.sqlite.prepare(`SELECT * FROM "${t}"`).all())).join('\n');
    },
    // audit seq is AUTOINCREMENT: its counter is reset too, so seq numbers start at 1 in each test
    reset: async () => {
      clock.offset = 0;
      s.sqlite.exec(`DELETE FROM approval_votes; DELETE FROM approvals; DELETE FROM job_steps; DELETE FROM jobs; DELETE FROM audit_events; DELETE FROM sealed_secrets;
      DELETE FROM deployments; DELETE FROM slack_outbox; DELETE FROM agent_tokens; DELETE FROM wizard_sessions; DELETE FROM sqlite_sequence WHERE name = 'audit_events';`);
    },
  };
}

function postgresStore(s: PgStore, url: string): DialectStore {
  const { db, pool } = s;
  const clock = testClock();
  return {
    repo: pgRepository(s, { clock, secretKey: SECRET_KEY }),
    openAgain: () => openRepository(url, { clock, secretKey: SECRET_KEY }),
    tick: (ms) => void (clock.offset += ms),
    dialect: 'postgres',
    appendAudit: (e, at) => appendAuditPg(db, e, at),
    verifyAudit: () => verifyAuditChainPg(db),
    auditRows: async () => db.select().from(pgs.auditEvents).orderBy(pgs.auditEvents.seq),
    tamperAudit: async (seq, decision) => void (await pool.query('update audit_events set decision = $1 where seq = $2', [decision, seq])),
    async insertJob(j) {
      try {
        await db.insert(pgs.jobs).values(jobValues(j));
      } catch (err) {
        throw isUniqueViolation(err, DEPLOYMENT_LOCK_CONSTRAINT) ? new ConstraintError('jobs_one_active_per_deployment', err) : err;
      }
    },
    setJobState: async (id, state) => void (await pool.query('update jobs set state = $1 where id = $2', [state, id])),
    jobIds: async (deployment) => (await pool.query('select id from jobs where deployment = $1 order by created_at, id', [deployment])).rows.map((r) => r.id as string),
    insertApproval: async (id, jobId) => void (await db.insert(pgs.approvals).values(approvalValues(id, jobId))),
    async insertVote(v) {
      try {
        await db.insert(pgs.approvalVotes).values(v);
      } catch (err) {
        throw isUniqueViolation(err, 'approval_votes_unique') ? new ConstraintError('approval_votes_unique', err) : err;
      }
    },
    votes: async (approvalId) => (await pool.query('select "user", decision from approval_votes where approval_id = $1 order by "user"', [approvalId])).rows,
    claim: async (o) => (await claimNextJob(db, o))?.id,
    renew: (o) => renewJobLease(db, o),
    requestCancel: async (jobId) => void (await pool.query('update jobs set cancel_requested = true where id = $1', [jobId])),
    secrets: createPgSecretBox(db, SECRET_KEY),
    secretsWithKey: (key) => createPgSecretBox(db, key),
    sealedRow: async (id) => (await pool.query('select ciphertext, iv, tag, purpose, erased_at as "erasedAt" from sealed_secrets where id = $1', [id])).rows[0],
    async setSealedRow(id, values) {
      const c = setClause(values, (i) => `$${i}`);
      await pool.query(`update sealed_secrets set ${c.text} where id = $${c.args.length + 1}`, [...c.args, id]);
    },
    async everyRowAsText() {
      const tables = (await pool.query("select table_schema || '.' || quote_ident(table_name) as t from information_schema.tables where table_schema in ('public', 'drizzle') and table_type = 'BASE TABLE'")).rows.map((r) => r.t as string);
      const out: string[] = [];
      for (const t of tables) out.push(JSON.stringify((await pool.query(`select x::text as row from ${t} x`)).rows.map((r) => r.row)));
      return out.join('\n');
    },
    // restart identity: seq numbers start at 1 in each test
    reset: async () => {
      clock.offset = 0;
      await db.execute(pgSql`truncate approval_votes, approvals, job_steps, jobs, audit_events, sealed_secrets, deployments, slack_outbox, slack_channel_leases, agent_tokens, wizard_sessions restart identity cascade`);
    },
  };
}

let databases = 0;

/**
 * Declares `fn`'s tests once per dialect (`${name} [sqlite]`, `${name} [postgres]`). `store()` is that block's
 * store, valid inside tests and hooks.
 */
export function describeEachDialect(name: string, fn: (store: () => DialectStore) => void): void {
  for (const dialect of DIALECTS) {
    const body = () => {
      let store: DialectStore | undefined;
      let close = async () => {};
      beforeAll(async () => {
        if (dialect === 'sqlite') {
          const dir = mkdtempSync(join(tmpdir(), 'rebot-dialect-'));
          const s = openStore({ path: join(dir, 're-bot.db') });
          store = sqliteStore(s);
          close = async () => {
            s.close();
            rmSync(dir, { recursive: true, force: true });
          };
        } else {
          const cluster: PgCluster = await startPostgres();
          try {
            const url = await cluster.createDatabase(`contract_${process.pid}_${++databases}`);
            const s = await openPgStore(url);
            store = postgresStore(s, url);
            close = async () => {
              await s.close().catch(() => {});
              cluster.stop();
            };
          } catch (err) {
            cluster.stop();
            throw err;
          }
        }
      }, 120_000);
      afterAll(() => close());
      beforeEach(() => store?.reset());
      fn(() => {
        if (!store) throw new Error(`the ${dialect} store did not open (see beforeAll)`);
        return store;
      });
    };
    if (dialect === 'postgres') describeWithTools(['postgresql'], `${name} [postgres]`, body);
    else describe(`${name} [sqlite]`, body);
  }
}
