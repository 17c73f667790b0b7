/**
 * PostgreSQL beside SQLite, at the store level (issue 16). The engine is not wired to PostgreSQL yet
 * (docs/ha.md), so this times the store operations the engine and `/re status` will call, not the bot:
 *
 *  - job claim → heartbeat → complete: SQLite through src/jobs/queue.ts (claimNext, renewLease, completeJob) in
 *    one loop (better-sqlite3 is synchronous: more loops in one process would only take turns); PostgreSQL through
 *    src/store/pg/claim.ts (claimNextJob, renewJobLease) plus the completing UPDATE, with one claimer, then with
 *    several claimers spread over two pools (two replicas).
 *  - the `/re status` reads (latest job with steps, approvals and votes, the lock holder, the last good setup) for
 *    the same seeded rows: SQLite through src/jobs/status-queries.ts; PostgreSQL through src/store/pg/status.ts
 *    (the whole answer in one statement) and, for comparison, bench/lib/pg-status.ts (one statement per read).
 *
 * The PostgreSQL server is a throwaway cluster (test/support/postgres.ts) on this machine, started with
 * fsync/synchronous_commit/full_page_writes on (the tests' clusters have them off) so that commits are as durable
 * as the SQLite file's. It shares the
 * CPUs with the benchmark; a server elsewhere adds a network round trip per statement.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { claimNext, completeJob, renewLease } from '../src/jobs/queue.ts';
import { statusQueries } from '../src/jobs/status-queries.ts';
import { buildPlan } from '../src/spec/plan.ts';
import { openStore, type Store } from '../src/store/db.ts';
import { claimNextJob, renewJobLease } from '../src/store/pg/claim.ts';
import { openPgStore, type PgStore } from '../src/store/pg/open.ts';
import { postgresMissing, startPostgres, type PgCluster } from '../test/support/postgres.ts';
import { statusAnswerPg } from '../src/store/pg/status.ts';
import { pgStatusReads } from './lib/pg-status.ts';
import { demoSpec } from './lib/spec.ts';
import { ms, p50, p99, type Row } from './lib/stats.ts';
import { rng } from './status.ts';

export interface PgStoreOptions {
  deployments: number;
  jobsPerDeployment: number;
  /** queued jobs each claim run works through */
  claimJobs: number;
  /** concurrent claimers in the multi-claimer PostgreSQL run (spread over two pools) */
  claimers: number;
  samples: number;
  log: (line: string) => void;
}

const SECTION = 'PostgreSQL vs SQLite (store level)';
const LEASE_MS = 60_000;

type Table = { name: string; cols: string[]; rows: unknown[][] };

/** The same rows for both stores: deployments, their jobs (the latest may be active), steps, approvals, votes. */
async function seedRows(o: PgStoreOptions): Promise<{ tables: Table[]; names: string[] }> {
  const spec = await demoSpec('seed-template');
  const plan = buildPlan(spec);
  const specJson = JSON.stringify(spec);
  const planJson = JSON.stringify(plan);
  const small = JSON.stringify({ note: 'older job: trimmed by the seeder' });
  const rand = rng(42);
  const t0 = Date.parse('2025-01-01T00:00:00Z');
  const deployments: Table = { name: 'deployments', cols: ['name', 'astro_id', 'last_spec', 'updated_at'], rows: [] };
  const jobs: Table = {
    name: 'jobs',
    cols: ['id', 'deployment', 'state', 'attempt', 'requested_by', 'origin', 'spec', 'plan', 'values_hash', 'chart', 'lease_owner', 'lease_expires_at', 'error', 'created_at', 'started_at', 'finished_at', 'updated_at'],
    rows: [],
  };
  const steps: Table = { name: 'job_steps', cols: ['job_id', 'step_id', 'number', 'title', 'exec_order', 'state', 'attempt', 'started_at', 'finished_at', 'duration_ms', 'summary', 'error'], rows: [] };
  const approvals: Table = {
    name: 'approvals',
    cols: ['id', 'job_id', 'step_id', 'hash', 'title', 'facts', 'changed_keys', 'diff_text', 'state', 'required', 'policy', 'requested_at', 'expires_at', 'decided_at'],
    rows: [],
  };
  const votes: Table = { name: 'approval_votes', cols: ['approval_id', 'user', 'decision', 'at'], rows: [] };
  const names = Array.from({ length: o.deployments }, (_, i) => `dep-${String(i).padStart(5, '0')}`);
  let seq = 0;
  for (const name of names) {
    deployments.rows.push([name, `cl-${name}`, specJson, new Date(t0).toISOString()]);
    for (let k = 0; k < o.jobsPerDeployment; k++) {
      const latest = k === o.jobsPerDeployment - 1;
      const created = t0 + ++seq * 1000;
      const at = (d: number) => new Date(created + d).toISOString();
      const r = rand();
      const state = latest ? (r < 0.7 ? 'succeeded' : r < 0.8 ? 'failed' : r < 0.9 ? 'running' : 'waiting_approval') : r < 0.9 ? 'succeeded' : 'failed';
      const finished = state === 'succeeded' || state === 'failed';
      const id = `job-${name}-${k}`;
      jobs.rows.push([id, name, state, 1, 'U0REQ', JSON.stringify({ kind: 'slack', channel: 'C0PLATFORM' }), latest ? specJson : small, latest ? planJson : small,
        plan.valuesHash, plan.chart, state === 'running' ? 'bench-owner' : null, state === 'running' ? created + 30_000 : null,
        state === 'failed' ? 'pods not Ready after 300s' : null, at(0), at(50), finished ? at(60_000) : null, at(60_000)]);
      const reached = state === 'succeeded' ? plan.steps.length : 1 + Math.floor(rand() * (plan.steps.length - 1));
      plan.steps.forEach((s, i) => {
        const st = i < reached ? 'succeeded' : i === reached ? (state === 'failed' ? 'failed' : state === 'succeeded' ? 'pending' : state) : 'pending';
        const done = st === 'succeeded' || st === 'failed';
        steps.rows.push([id, s.id, s.number, s.title, s.order, st, st === 'pending' ? 0 : 1, st === 'pending' ? null : at(100 * i), done ? at(100 * i + 900) : null,
          done ? 800 + Math.floor(rand() * 4000) : null, done ? `${s.title}: done` : null, st === 'failed' ? 'pods not Ready after 300s' : null]);
      });
      const pending = state === 'waiting_approval';
      approvals.rows.push([`apr-${id}`, id, 'agents', 'h', `helm upgrade --install astro-agent (${name})`, '{"chart":"astro-remote-execution-agent"}', '["image"]',
        '+ image: x\n'.repeat(8), pending ? 'pending' : 'approved', 1, '{"approvers":["S0APPROVERS"]}', at(200), at(86_400_000), pending ? null : at(5000)]);
      if (!pending) votes.rows.push([`apr-${id}`, 'U0APPROVER', 'approve', at(5000)]);
    }
  }
  return { tables: [deployments, jobs, steps, approvals, votes], names };
}

function seedSqlite(store: Store, tables: Table[]): void {
  const sq = store.sqlite;
  sq.transaction(() => {
    for (const t of tables) {
      const ins = sq.prepare(`INSERT INTO ${t.name} (${t.cols.map((c) => `"${c}"`).join(', ')}) VALUES (${t.cols.map(() => '?').join(', ')})`);
      for (const r of t.rows) ins.run(...r);
    }
  })();
  sq.exec('ANALYZE');
}

async function insertMany(pool: pg.Pool, t: Table): Promise<void> {
  const per = Math.floor(30_000 / t.cols.length);
  for (let i = 0; i < t.rows.length; i += per) {
    const chunk = t.rows.slice(i, i + per);
    const values: unknown[] = [];
    const tuples = chunk.map((r) => `(${r.map((v) => `$${values.push(v)}`).join(', ')})`);
    await pool.query(`insert into ${t.name} (${t.cols.map((c) => `"${c}"`).join(', ')}) values ${tuples.join(', ')}`, values);
  }
}

async function seedPg(pool: pg.Pool, tables: Table[]): Promise<void> {
  for (const t of tables) await insertMany(pool, t);
  await pool.query('analyze');
}

const queuedJobs = (n: number, tag: string): Table => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  return {
    name: 'jobs',
    cols: ['id', 'deployment', 'state', 'attempt', 'requested_by', 'origin', 'spec', 'plan', 'values_hash', 'chart', 'created_at', 'updated_at'],
    rows: Array.from({ length: n }, (_, i) => {
      const at = new Date(t0 + i).toISOString();
      return [`claim-${tag}-${i}`, `claim-${tag}-${i}`, 'queued', 1, 'U0REQ', '{"kind":"cli"}', '{}', '{"steps":[]}', 'h', 'c', at, at];
    }),
  };
};

/** SQLite: claim → renew → complete, one loop; returns jobs/s */
function claimSqlite(store: Store, n: number): { perSecond: number; done: number } {
  seedSqlite(store, [queuedJobs(n, 'sqlite')]);
  const t = performance.now();
  let done = 0;
  for (;;) {
    const now = Date.now();
    const id = claimNext(store, { owner: 'bench', now, leaseMs: LEASE_MS, at: new Date(now).toISOString() });
    if (!id) break;
    if (!renewLease(store, id, 'bench', Date.now() + LEASE_MS)) throw new Error(`SQLite: lost the lease of ${id}`);
    completeJob(store, id, new Date().toISOString());
    done++;
  }
  const s = (performance.now() - t) / 1000;
  const succeeded = (store.sqlite.prepare(`SELECT COUNT(*) FROM jobs WHERE id LIKE 'claim-sqlite-%' AND state = 'succeeded'`).pluck().get() as number);
  return { perSecond: done / s, done: succeeded };
}

/** PostgreSQL: `claimers` loops over `pools`, each claim → renew → complete; returns jobs/s and whether each job was done once */
async function claimPg(stores: PgStore[], claimers: number, n: number, tag: string): Promise<{ perSecond: number; done: number; duplicates: number }> {
  await insertMany(stores[0]!.pool, queuedJobs(n, tag));
  await stores[0]!.pool.query('analyze jobs');
  const seen: string[] = [];
  const loop = async (s: PgStore, owner: string) => {
    for (;;) {
      const j = await claimNextJob(s.db, { owner, leaseMs: LEASE_MS });
      if (!j) return;
      if (!(await renewJobLease(s.db, { jobId: j.id, owner, leaseMs: LEASE_MS }))) throw new Error(`PostgreSQL: ${owner} lost the lease of ${j.id}`);
      // completeJob of src/jobs/queue.ts, under the owner's lease (there is no PostgreSQL completeJob yet)
      const at = new Date().toISOString();
      await s.pool.query(`update jobs set state = 'succeeded', finished_at = $1, lease_owner = null, lease_expires_at = null, updated_at = $1 where id = $2 and lease_owner = $3`, [at, j.id, owner]);
      seen.push(j.id);
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: claimers }, (_, i) => loop(stores[i % stores.length]!, `replica-${i % stores.length}:claimer-${i}`)));
  const s = (performance.now() - t) / 1000;
  const { rows } = await stores[0]!.pool.query(`select count(*)::int as n from jobs where id like $1 and state = 'succeeded'`, [`claim-${tag}-%`]);
  return { perSecond: seen.length / s, done: rows[0].n, duplicates: seen.length - new Set(seen).size };
}

async function durability(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query(`select string_agg(name || '=' || setting, ' ' order by name) as s from pg_settings where name in ('fsync', 'synchronous_commit', 'full_page_writes')`);
    const now = rows[0].s as string;
    if (now.includes('=off')) throw new Error(`the benchmark cluster is not durable: ${now}`);
    return now;
  } finally {
    await c.end();
  }
}

const perSecond = (v: number) => `${v.toFixed(0)} jobs/s`;
const times = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');

export async function runPgStoreBench(o: PgStoreOptions): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const missing = postgresMissing();
  if (missing) {
    o.log(`  skipped: ${missing}`);
    return { rows: [{ section: SECTION, figure: '(not run)', value: `no PostgreSQL here: ${missing}` }], detail: { skipped: missing } };
  }
  const dir = mkdtempSync(join(tmpdir(), 'rebot-bench-pg-'));
  let cluster: PgCluster | undefined;
  const stores: PgStore[] = [];
  const sqlite = openStore({ path: join(dir, 'bench.db') });
  try {
    // durable: the test clusters run with fsync off, which would flatter PostgreSQL's commits against SQLite's
    cluster = await startPostgres({ durable: true });
    const url = await cluster.createDatabase('bench');
    const settings = await durability(cluster.url);
    stores.push(await openPgStore(url), await openPgStore(url));
    const version = (await stores[0]!.pool.query('show server_version')).rows[0].server_version as string;
    o.log(`  PostgreSQL ${version} (throwaway cluster on this machine, ${settings}); SQLite ${sqlite.sqlite.prepare('select sqlite_version()').pluck().get()} (WAL, synchronous=${sqlite.sqlite.pragma('synchronous', { simple: true })})`);

    const { tables, names } = await seedRows(o);
    let t = performance.now();
    seedSqlite(sqlite, tables);
    const seedSqliteMs = performance.now() - t;
    t = performance.now();
    await seedPg(stores[0]!.pool, tables);
    const seedPgMs = performance.now() - t;
    const stepRows = tables.find((x) => x.name === 'job_steps')!.rows.length;
    o.log(`  seeded ${names.length} deployments, ${names.length * o.jobsPerDeployment} jobs, ${stepRows} step rows: SQLite ${ms(seedSqliteMs)}, PostgreSQL ${ms(seedPgMs)}`);

    // status reads, the same deployments in the same order on both
    const q = statusQueries(sqlite);
    const sqliteReads = (name: string) => {
      const id = q.latestJobId(name);
      const view = id ? q.jobView(id) : undefined;
      const lock = q.lockHolder(name);
      const good = q.lastSucceededJobId(name);
      return { view, lock, lastGood: good ? (good === id ? view : q.jobView(good)) : undefined };
    };
    // sanity: both stores answer the same job, steps and approvals for a deployment
    const a = sqliteReads(names[1]!);
    const b = await pgStatusReads(stores[0]!.pool, names[1]!);
    if (a.view?.id !== (b?.view as { id?: string } | undefined)?.id || a.view?.steps.length !== (b?.view as { steps: unknown[] }).steps.length
      || a.view?.approvals.length !== (b?.view as { approvals: unknown[] }).approvals.length) throw new Error('the two stores answer different status reads');
    for (const name of names.slice(0, 20)) {
      const l = sqliteReads(name);
      const one = await statusAnswerPg(stores[0]!.pool, name);
      if (JSON.stringify([l.view, l.lock, l.lastGood]) !== JSON.stringify([one.view, one.lock, one.lastGood])) throw new Error(`the one-statement status answer differs from SQLite's for ${name}`);
    }
    const pick = (seed: number) => { const r = rng(seed); return () => names[Math.floor(r() * names.length)]!; };
    const warm = Math.min(200, o.samples);
    const sqliteTimes: number[] = [];
    const pgTimes: number[] = [];
    let next = pick(7);
    for (let i = 0; i < warm + o.samples; i++) {
      const name = next();
      const s = performance.now();
      sqliteReads(name);
      if (i >= warm) sqliteTimes.push(performance.now() - s);
    }
    next = pick(7);
    for (let i = 0; i < warm + o.samples; i++) {
      const name = next();
      const s = performance.now();
      await pgStatusReads(stores[0]!.pool, name);
      if (i >= warm) pgTimes.push(performance.now() - s);
    }
    const pgOneTimes: number[] = [];
    next = pick(7);
    for (let i = 0; i < warm + o.samples; i++) {
      const name = next();
      const s = performance.now();
      await statusAnswerPg(stores[0]!.pool, name);
      if (i >= warm) pgOneTimes.push(performance.now() - s);
    }
    o.log(`  status reads: SQLite p50 ${ms(p50(sqliteTimes))} p99 ${ms(p99(sqliteTimes))}; PostgreSQL one statement p50 ${ms(p50(pgOneTimes))} p99 ${ms(p99(pgOneTimes))}, one per read p50 ${ms(p50(pgTimes))} p99 ${ms(p99(pgTimes))}`);

    const lite = claimSqlite(sqlite, o.claimJobs);
    o.log(`  claim → renew → complete: SQLite ${perSecond(lite.perSecond)} (1 loop)`);
    const one = await claimPg(stores.slice(0, 1), 1, o.claimJobs, 'one');
    o.log(`  claim → renew → complete: PostgreSQL ${perSecond(one.perSecond)} (1 claimer)`);
    const many = await claimPg(stores, o.claimers, o.claimJobs, 'many');
    o.log(`  claim → renew → complete: PostgreSQL ${perSecond(many.perSecond)} (${o.claimers} claimers on 2 pools)`);
    // SQLite's WAL runs at synchronous=NORMAL: a commit survives kill -9 but not a power cut until the next
    // checkpoint. PostgreSQL's like-for-like is synchronous_commit=off (never inconsistent, may lose the last
    // commits on a server crash); new connections pick the database default up
    await stores[0]!.pool.query('alter database bench set synchronous_commit = off');
    await Promise.all(stores.splice(0).map((s) => s.close()));
    stores.push(await openPgStore(url), await openPgStore(url));
    const oneAsync = await claimPg(stores.slice(0, 1), 1, o.claimJobs, 'one_async');
    const manyAsync = await claimPg(stores, o.claimers, o.claimJobs, 'many_async');
    o.log(`  with synchronous_commit=off: PostgreSQL ${perSecond(oneAsync.perSecond)} (1 claimer), ${perSecond(manyAsync.perSecond)} (${o.claimers} claimers)`);

    const pgRuns = [one, many, oneAsync, manyAsync];
    const allDone = lite.done === o.claimJobs && pgRuns.every((r) => r.done === o.claimJobs && r.duplicates === 0);
    const rows: Row[] = [
      { section: SECTION, figure: `every queued job completed exactly once (5 runs × ${o.claimJobs})`, value: allDone ? 'yes' : `SQLite ${lite.done}, PG ${pgRuns.map((r) => `${r.done} (${r.duplicates} twice)`).join(', ')}`, target: 'all', ok: allDone, gate: true },
      { section: SECTION, figure: 'claim → renew → complete, SQLite (src/jobs/queue.ts, 1 loop, WAL NORMAL)', value: perSecond(lite.perSecond) },
      { section: SECTION, figure: 'claim → renew → complete, PostgreSQL, 1 claimer', value: perSecond(one.perSecond), target: '(info)', ratio: `${times(one.perSecond, lite.perSecond)} of SQLite` },
      { section: SECTION, figure: `claim → renew → complete, PostgreSQL, ${o.claimers} claimers / 2 pools`, value: perSecond(many.perSecond), target: '(info)', ratio: `${times(many.perSecond, lite.perSecond)} of SQLite` },
      { section: SECTION, figure: '  the same, synchronous_commit=off, 1 claimer', value: perSecond(oneAsync.perSecond), target: '(info)', ratio: `${times(oneAsync.perSecond, lite.perSecond)} of SQLite` },
      { section: SECTION, figure: `  the same, synchronous_commit=off, ${o.claimers} claimers`, value: perSecond(manyAsync.perSecond), target: '(info)', ratio: `${times(manyAsync.perSecond, lite.perSecond)} of SQLite` },
      { section: SECTION, figure: `status reads p50, SQLite (${names.length} deployments, ${stepRows.toLocaleString('en-US')} step rows)`, value: ms(p50(sqliteTimes)) },
      { section: SECTION, figure: 'status reads p99, SQLite', value: ms(p99(sqliteTimes)) },
      { section: SECTION, figure: 'status answer p50, PostgreSQL, one statement (src/store/pg/status.ts, same rows)', value: ms(p50(pgOneTimes)), target: '(info)', ratio: `${times(p50(pgOneTimes), p50(sqliteTimes))} SQLite's` },
      { section: SECTION, figure: 'status answer p99, PostgreSQL, one statement', value: ms(p99(pgOneTimes)), target: '(info)', ratio: `${times(p99(pgOneTimes), p99(sqliteTimes))} SQLite's` },
      { section: SECTION, figure: 'status reads p50, PostgreSQL, one statement per read (7–11)', value: ms(p50(pgTimes)), target: '(info)', ratio: `${times(p50(pgTimes), p50(sqliteTimes))} SQLite's` },
      { section: SECTION, figure: 'status reads p99, PostgreSQL, one statement per read', value: ms(p99(pgTimes)), target: '(info)', ratio: `${times(p99(pgTimes), p99(sqliteTimes))} SQLite's` },
    ];
    return {
      rows,
      detail: {
        postgres: version, settings, deployments: names.length, jobs: names.length * o.jobsPerDeployment, stepRows, seedSqliteMs, seedPgMs,
        status: { samples: o.samples, sqlite: { p50: p50(sqliteTimes), p99: p99(sqliteTimes) }, postgres: { p50: p50(pgTimes), p99: p99(pgTimes) }, postgresOneStatement: { p50: p50(pgOneTimes), p99: p99(pgOneTimes) } },
        claims: {
          jobs: o.claimJobs, claimers: o.claimers, sqlite: lite.perSecond, postgresOne: one.perSecond, postgresMany: many.perSecond,
          postgresOneAsyncCommit: oneAsync.perSecond, postgresManyAsyncCommit: manyAsync.perSecond,
        },
      },
    };
  } finally {
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
    sqlite.close();
    cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
