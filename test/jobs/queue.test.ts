/**
 * The queue's SQL (src/jobs/queue.ts) and the per-deployment lock as a database rule
 * (jobs_one_active_per_deployment, migrations 0004/0005).
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.ts';
import { claimNext } from '../../src/jobs/queue.ts';
import { ACTIVE_STATES, TERMINAL_STATES } from '../../src/jobs/views.ts';
import { DeploymentLockedError, type JobEngine } from '../../src/jobs/types.ts';
import { fakeSpec, makeEngine, ok, tmpDb } from './helpers.ts';

const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const cleanup: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });
const engineOn = (path: string, handlers = ['a', 'b', 'c', 'd'].map((id) => ok(id)), leaseMs = 500) => {
  const x = makeEngine(handlers, { path, leaseMs });
  cleanup.push(() => x.store.close(), () => x.engine.stop());
  return x;
};

/** a jobs row written by hand (another process, an old build): the database alone decides */
function rawJob(store: Store, id: string, deployment: string, state: string, createdAt = new Date().toISOString()) {
  store.sqlite.prepare(`INSERT INTO jobs (id, deployment, state, attempt, requested_by, origin, spec, plan, values_hash, chart, created_at, updated_at)
    VALUES (?, ?, ?, 1, 'UALICE', '{"kind":"cli"}', '{}', '{}', 'vh', 'c', ?, ?)`).run(id, deployment, state, createdAt, createdAt);
}

describe('one active job per deployment is a database rule', () => {
  it('the unique index refuses a second queued, running or waiting_approval job of a deployment, and allows any number of finished ones', () => {
    const store = openStore({ path: tmpDb() });
    cleanup.push(() => store.close());
    for (const state of ACTIVE_STATES) {
      rawJob(store, `holder-${state}`, `d-${state}`, state);
      for (const other of ACTIVE_STATES) {
        expect(() => rawJob(store, `dup-${state}-${other}`, `d-${state}`, other), `${state} + ${other}`).toThrow(/UNIQUE constraint failed: jobs\.deployment/);
      }
      for (const done of TERMINAL_STATES) rawJob(store, `done-${state}-${done}`, `d-${state}`, done);
    }
    rawJob(store, 'done-2', 'd-queued', 'failed');
  });

  it('two engines on one DB submitting the same deployment at once: one job, the other told who holds the lock', async () => {
    const path = tmpDb();
    const a = engineOn(path);
    const b = engineOn(path);
    const results = await Promise.allSettled([a.engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } }), b.engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0].reason).toBeInstanceOf(DeploymentLockedError);
    expect(lost[0].reason.holder.jobId).toBe((won[0] as PromiseFulfilledResult<{ id: string }>).value.id);
    // the refused submit left nothing behind: exactly one job row, and its steps only
    expect(a.store.sqlite.prepare('SELECT COUNT(*) AS n FROM jobs').get()).toEqual({ n: 1 });
    expect(a.store.sqlite.prepare('SELECT COUNT(*) AS n FROM job_steps').get()).toEqual({ n: 4 });
  });

  it('a job active in the DB but unknown to this engine locks submit and retry, naming the holder', async () => {
    const { engine, store } = engineOn(tmpDb(), [ok('a'), { id: 'b', run: async () => { throw new Error('boom'); } }, ok('c'), ok('d')]);
    engine.start();
    const first = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    expect((await engine.settled(first.id)).state).toBe('failed');
    await engine.stop();
    rawJob(store, 'job_other', 'sales', 'waiting_approval');
    const err = await engine.retry(first.id, alice).catch((e) => e);
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect(err.holder).toMatchObject({ jobId: 'job_other', state: 'waiting_approval', requestedBy: 'UALICE' });
    // the refused retry changed nothing
    expect(await engine.job(first.id)).toMatchObject({ state: 'failed', attempt: 1 });
    await expect(engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } })).rejects.toMatchObject({ holder: { jobId: 'job_other' } });
  });

  it('an existing DB with duplicate active jobs still opens: the oldest keeps the lock, the others fail saying why', () => {
    // a DB migrated up to 0003 (before the index), with two active jobs of one deployment
    const dir = mkdtempSync(join(tmpdir(), 'rebot-mig-'));
    const old = join(dir, 'migrations');
    cpSync(join(import.meta.dirname, '../../migrations'), old, { recursive: true });
    const journal = JSON.parse(readFileSync(join(old, 'meta/_journal.json'), 'utf8'));
    const upTo = journal.entries.findIndex((e: { tag: string }) => e.tag.startsWith('0004_'));
    expect(upTo).toBeGreaterThan(0);
    writeFileSync(join(old, 'meta/_journal.json'), JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo) }));
    const path = join(dir, 're-bot.db');
    const sqlite = new Database(path);
    migrate(drizzle(sqlite), { migrationsFolder: old });
    const rawOld = { sqlite } as unknown as Store;
    rawJob(rawOld, 'job_old', 'sales', 'waiting_approval', '2026-01-01T00:00:00.000Z');
    rawJob(rawOld, 'job_new', 'sales', 'queued', '2026-01-02T00:00:00.000Z');
    rawJob(rawOld, 'job_other', 'billing', 'running', '2026-01-02T00:00:00.000Z');
    sqlite.close();

    const store = openStore({ path });
    cleanup.push(() => store.close());
    const rows = store.sqlite.prepare('SELECT id, state, error FROM jobs ORDER BY id').all() as Array<{ id: string; state: string; error: string | null }>;
    expect(rows.map((r) => [r.id, r.state])).toEqual([['job_new', 'failed'], ['job_old', 'waiting_approval'], ['job_other', 'running']]);
    expect(rows[0].error).toMatch(/another job of this deployment was already active/);
    expect(() => rawJob(store, 'job_third', 'sales', 'queued')).toThrow(/UNIQUE/);
  });
});

describe('claim', () => {
  it('takes the oldest queued job with a free or expired lease, never one another owner holds or this process still winds down', () => {
    const store = openStore({ path: tmpDb() });
    cleanup.push(() => store.close());
    const t = Date.parse('2026-03-01T00:00:00Z');
    rawJob(store, 'j1', 'd1', 'queued', '2026-01-01T00:00:01.000Z');
    rawJob(store, 'j2', 'd2', 'queued', '2026-01-01T00:00:02.000Z');
    rawJob(store, 'j3', 'd3', 'queued', '2026-01-01T00:00:03.000Z');
    rawJob(store, 'j0', 'd0', 'succeeded', '2026-01-01T00:00:00.000Z');
    // j1 is leased by someone else until t + 1000; j2 this process is still winding down
    store.sqlite.prepare("UPDATE jobs SET lease_owner = 'other', lease_expires_at = ? WHERE id = 'j1'").run(t + 1000);
    const claim = (now: number, exclude: string[] = []) => claimNext(store, { owner: 'me', now, leaseMs: 500, at: new Date(now).toISOString(), exclude });
    expect(claim(t, ['j2'])).toBe('j3');
    expect(claim(t, ['j2'])).toBeUndefined();
    expect(claim(t + 1000)).toBe('j1'); // its lease expired
    expect(store.sqlite.prepare("SELECT state, lease_owner, lease_expires_at FROM jobs WHERE id = 'j1'").get()).toEqual({ state: 'running', lease_owner: 'me', lease_expires_at: t + 1500 });
    expect(claim(t + 1000)).toBe('j2');
    expect(claim(t + 1000)).toBeUndefined();
  });

  it('two engines on one DB never run the same job twice', async () => {
    const path = tmpDb();
    const runs: string[] = [];
    const handlers = () => ['a', 'b', 'c', 'd'].map((id) => ({ id, run: async (ctx: { jobId: string }) => { runs.push(`${ctx.jobId}:${id}`); await new Promise((r) => setTimeout(r, 5)); return { status: 'succeeded' as const, summary: id }; } }));
    // long leases: this is about claiming; a lease that expires under CPU load is reclaimed by design (at-least-once)
    const a = engineOn(path, handlers(), 60_000);
    const b = engineOn(path, handlers(), 60_000);
    const jobs = [];
    for (let i = 0; i < 6; i++) jobs.push(await a.engine.submit({ spec: fakeSpec(`d${i}`), requestedBy: alice, origin: { kind: 'cli' } }));
    a.engine.start();
    b.engine.start();
    for (const j of jobs) expect((await (a.engine as JobEngine).settled(j.id)).state).toBe('succeeded');
    expect(runs).toHaveLength(24);
    expect(new Set(runs).size).toBe(24);
  });
});
