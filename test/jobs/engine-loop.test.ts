/**
 * The worker loop (src/jobs/engine.ts) as a user or an operator sees it: which jobs run when, that a job is
 * never run by two workers at once, that a crashed or stopped worker's job is resumed (and a live one's is
 * not), cancel at any moment, events and audit rows per job, and the engine's own refusals.
 * Fast on purpose (mutation testing runs it once per mutant): injected clocks, long leases unless the test
 * is about renewal, a long poll interval where a test is about `kick`.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, it, expect } from 'vitest';
import type { StepHandler } from '../../src/checklist/types.ts';
import { createJobEngine } from '../../src/jobs/engine.ts';
import type { JobEvent } from '../../src/jobs/types.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { openStore, type Store } from '../../src/store/db.ts';
import { redact, registerSecret, registeredSecretCount } from '../../src/redact.ts';
import { fakePlan, fakeSpec, makeEngine, ok, policy, tmpDb } from './helpers.ts';
import { alice, bob, sleep, stopEnginesAfterEach, submit, waitFor, waitState } from './engine-harness.ts';

const track = stopEnginesAfterEach();
const lease = (store: Store, id: string) => store.sqlite.prepare('select state, lease_owner as owner, lease_expires_at as expires from jobs where id = ?').get(id) as { state: string; owner: string | null; expires: number | null };
/** the row a worker that crashed while running the job leaves behind */
const crashedHolder = (store: Store, id: string, owner: string, expires: number) =>
  store.sqlite.prepare("update jobs set state = 'running', lease_owner = ?, lease_expires_at = ?, started_at = created_at where id = ?").run(owner, expires, id);

/** a step that waits until released (or aborted); records what happened */
function held(id: string, log: string[]) {
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  const h: StepHandler = {
    id,
    run: (ctx) => new Promise((resolve, reject) => {
      log.push(`${id}:start`);
      ctx.signal.addEventListener('abort', () => { log.push(`${id}:aborted`); reject(new Error('aborted')); });
      void released.then(() => { log.push(`${id}:end`); resolve({ status: 'succeeded', summary: `${id} done` }); });
    }),
  };
  return { h, release: () => release() };
}
const recorder = (id: string, runs: string[]): StepHandler => ({ id, run: async () => { runs.push(id); return { status: 'succeeded', summary: `${id} done` }; } });

describe('reclaiming leases', () => {
  it('an engine restarted under the same owner id resumes its own job whose lease ran out', async () => {
    const T = 1_800_000_000_000;
    const runs: string[] = [];
    const { engine, store } = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs)), { owner: 'otherhost:1:same', clock: () => T, leaseMs: 60_000 }));
    const j = await submit(engine);
    crashedHolder(store, j.id, 'otherhost:1:same', T - 1);
    store.sqlite.prepare("update job_steps set state = 'succeeded' where job_id = ? and step_id = 'a'").run(j.id);
    engine.start();
    expect((await waitState(engine, j.id, 'succeeded')).steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(runs).toEqual(['b', 'c', 'd']);
  });

  it('a lease is taken over at the millisecond it expires, not one before', async () => {
    const T = 1_800_000_000_000;
    const runs: string[] = [];
    const early = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs)), { owner: 'otherhost:2:early', clock: () => T - 1, leaseMs: 60_000 }));
    const j = await submit(early.engine);
    crashedHolder(early.store, j.id, 'otherhost:1:gone', T);
    early.engine.start();
    await sleep(120); // several polls
    expect(lease(early.store, j.id)).toEqual({ state: 'running', owner: 'otherhost:1:gone', expires: T });
    expect(runs).toEqual([]);
    await early.engine.stop();
    const onTime = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs)), { owner: 'otherhost:3:ontime', clock: () => T, leaseMs: 60_000, path: early.store.path }));
    onTime.engine.start();
    await waitState(onTime.engine, j.id, 'succeeded');
    expect(runs).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a job whose holder was a process on this host that has exited is resumed at once, lease time left or not', async () => {
    const T = 1_800_000_000_000;
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const { engine, store } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')], { clock: () => T, leaseMs: 60_000 }));
    const j = await submit(engine);
    crashedHolder(store, j.id, `${hostname()}:${dead}:abcd1234`, T + 3_600_000);
    engine.start();
    await waitState(engine, j.id, 'succeeded');
    expect(exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'job.started').map((e) => (e.details as { owner: string }).owner)).toEqual([engine.owner]);
  });

  it('a worker never takes back its own running job, even when its clock says the lease is past', async () => {
    let t = 1_800_000_000_000;
    const log: string[] = [];
    const b = held('b', log);
    const { engine, store } = track(makeEngine([ok('a'), b.h, ok('c'), ok('d')], { clock: () => t, leaseMs: 60_000 }));
    const j = await submit(engine);
    engine.start();
    await waitFor(() => log.includes('b:start'));
    t += 120_000; // the lease it wrote is now in the past; renewal runs only every 20 s
    await sleep(150);
    expect(lease(store, j.id)).toMatchObject({ state: 'running', owner: engine.owner });
    expect((await engine.job(j.id))!.state).toBe('running');
    b.release();
    await waitState(engine, j.id, 'succeeded');
    expect(log).toEqual(['b:start', 'b:end']);
  });

  it('two engines on one DB with a short lease: a slow step runs once, owned throughout by the engine that started it', async () => {
    const log: string[] = [];
    let active = 0;
    let max = 0;
    const slow = (who: string): StepHandler => ({ id: 'b', run: async () => {
      active++; max = Math.max(max, active); log.push(`${who}:start`);
      await sleep(700);
      active--; log.push(`${who}:end`);
      return { status: 'succeeded', summary: `b by ${who}` };
    } });
    const a = track(makeEngine([ok('a'), slow('A'), ok('c'), ok('d')], { leaseMs: 150, owner: 'otherhost:1:aaaa' }));
    const b = track(makeEngine([ok('a'), slow('B'), ok('c'), ok('d')], { leaseMs: 150, owner: 'otherhost:2:bbbb', path: a.store.path }));
    a.engine.start();
    const j = await submit(a.engine);
    await waitFor(() => log.includes('A:start'));
    b.engine.start();
    const owners: Array<string | null> = [];
    while (!log.includes('A:end')) { owners.push(lease(a.store, j.id).owner); await sleep(25); }
    const v = await waitState(a.engine, j.id, 'succeeded');
    expect(new Set(owners)).toEqual(new Set(['otherhost:1:aaaa']));
    expect(max).toBe(1);
    expect(log).toEqual(['A:start', 'A:end']);
    expect(v.steps[1].summary).toBe('b by A');
  });
  it('a worker that lost its job to another owner aborts its step at its next renewal, and records nothing more', async () => {
    const log: string[] = [];
    const dRuns: string[] = [];
    const d = (who: string): StepHandler => ({ id: 'd', run: async () => { dRuns.push(who); return { status: 'succeeded', summary: who }; } });
    const slowA: StepHandler = { id: 'b', run: (ctx) => new Promise((resolve, reject) => {
      log.push('A:start');
      const t = setTimeout(() => { log.push('A:end'); resolve({ status: 'succeeded', summary: 'b by A' }); }, 900);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); log.push('A:aborted'); reject(new Error('aborted')); });
    }) };
    const a = track(makeEngine([ok('a'), slowA, ok('c'), d('A')], { leaseMs: 150, owner: 'otherhost:1:aaaa' }));
    a.engine.start();
    const j = await submit(a.engine);
    await waitFor(() => log.includes('A:start'));
    // a worker whose clock runs ahead sees A's lease as expired and takes the job
    const slowB: StepHandler = { id: 'b', run: async () => { log.push('B:start'); await sleep(300); log.push('B:end'); return { status: 'succeeded', summary: 'b by B' }; } };
    const b = track(makeEngine([ok('a'), slowB, ok('c'), d('B')], { leaseMs: 150, owner: 'otherhost:2:bbbb', path: a.store.path, clock: () => Date.now() + 60_000 }));
    b.engine.start();
    const v = await waitState(b.engine, j.id, 'succeeded');
    await sleep(100);
    expect(log).toContain('A:aborted');
    expect(log).not.toContain('A:end');
    expect(log.indexOf('A:aborted')).toBeLessThan(log.indexOf('B:end'));
    expect(dRuns).toEqual(['B']);
    expect(v.steps[1].summary).toBe('b by B');
  });
});

describe('which jobs run when', () => {
  it('concurrency 1: a second job starts only when the first one ends, without waiting for the next poll', async () => {
    const log: string[] = [];
    const x = held('b', log);
    let active = 0;
    let max = 0;
    const count: StepHandler = { id: 'c', run: async () => { active++; max = Math.max(max, active); await sleep(30); active--; return { status: 'succeeded', summary: 'c' }; } };
    const { engine } = track(makeEngine([ok('a'), x.h, count, ok('d')], { concurrency: 1, pollMs: 1_000_000 }));
    engine.start();
    const j1 = await submit(engine, 'one');
    await waitFor(() => log.includes('b:start'));
    const j2 = await submit(engine, 'two', ['b']);
    await sleep(100);
    expect((await engine.job(j2.id))!.state).toBe('queued');
    x.release();
    await waitState(engine, j2.id, 'succeeded');
    expect((await engine.job(j1.id))!.state).toBe('succeeded');
    expect(max).toBe(1);
  });

  it('by default two jobs run at once (RE_BOT_CONCURRENCY sets another number)', async () => {
    for (const [env, expected] of [[undefined, 2], ['3', 3]] as const) {
      const before = process.env.RE_BOT_CONCURRENCY;
      if (env === undefined) delete process.env.RE_BOT_CONCURRENCY; else process.env.RE_BOT_CONCURRENCY = env;
      const log: string[] = [];
      const x = held('b', log);
      const { engine } = track(makeEngine([ok('a'), x.h, ok('c'), ok('d')], { concurrency: undefined }));
      if (before === undefined) delete process.env.RE_BOT_CONCURRENCY; else process.env.RE_BOT_CONCURRENCY = before;
      const jobs = [await submit(engine, 'one'), await submit(engine, 'two'), await submit(engine, 'three'), await submit(engine, 'four')];
      engine.start();
      await waitFor(() => log.length === expected);
      await sleep(100);
      expect(log.length).toBe(expected);
      expect((await Promise.all(jobs.map((j) => engine.job(j.id)))).filter((v) => v!.state === 'queued').length).toBe(4 - expected);
      x.release();
      for (const j of jobs) await waitState(engine, j.id, 'succeeded');
      await engine.stop();
    }
  });

  it('without options a worker holds a job for 30 s at a time, under an owner id naming this host and process', async () => {
    const T = 1_800_000_000_000;
    const log: string[] = [];
    const x = held('b', log);
    const { engine, store } = track(makeEngine([ok('a'), x.h, ok('c'), ok('d')], { clock: () => T, leaseMs: undefined, owner: undefined }));
    engine.start();
    const j = await submit(engine);
    await waitFor(() => log.includes('b:start'));
    expect(lease(store, j.id)).toEqual({ state: 'running', owner: engine.owner, expires: T + 30_000 });
    expect(engine.owner.startsWith(`${hostname()}:${process.pid}:`)).toBe(true);
    x.release();
    await waitState(engine, j.id, 'succeeded');
  });

  it('a job submitted and queued before start(), after start() (from this engine), or from another process all run', async () => {
    const { engine, store } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')], { pollMs: 1_000_000 }));
    const before = await submit(engine, 'before');
    await sleep(50);
    expect((await engine.job(before.id))!.state).toBe('queued');
    engine.start();
    engine.start(); // a second start changes nothing
    await waitState(engine, before.id, 'succeeded');
    const after = await submit(engine, 'after');
    await waitState(engine, after.id, 'succeeded');
    // another process (the Slack app) only writes the row: the worker finds it on its next poll
    const polling = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')], { pollMs: 30, path: store.path }));
    polling.engine.start();
    await sleep(50); // the worker is idle: only its poll can find the job
    const cli = makeEngine([], { path: store.path });
    const other = await submit(cli.engine, 'other');
    await waitState(polling.engine, other.id, 'succeeded');
  });

  it('a job retried after a failure runs again at once', async () => {
    let fail = true;
    const { engine } = track(makeEngine([ok('a'), { id: 'b', run: async () => { if (fail) throw new Error('boom'); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d')], { pollMs: 1_000_000 }));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'failed');
    fail = false;
    const events: string[] = [];
    engine.on((e) => events.push(e.type));
    expect((await engine.retry(j.id, bob)).state).toBe('queued');
    expect(events[0]).toBe('job.queued');
    expect((await waitState(engine, j.id, 'succeeded')).attempt).toBe(2);
  });

  it('a job can be retried after a cancel; a running one cannot', async () => {
    const log: string[] = [];
    const x = held('b', log);
    const { engine } = track(makeEngine([ok('a'), x.h, ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    await waitFor(() => log.includes('b:start'));
    await expect(engine.retry(j.id, bob)).rejects.toThrow(`job ${j.id} is running; only failed or cancelled jobs can be retried`);
    await engine.cancel(j.id, bob);
    await waitFor(() => log.includes('b:aborted'));
    await sleep(20);
    const r = await engine.retry(j.id, bob);
    expect(r).toMatchObject({ state: 'queued', attempt: 2 });
    await waitFor(() => log.filter((l) => l === 'b:start').length === 2);
    x.release();
    await waitState(engine, j.id, 'succeeded');
  });
});

describe('cancel', () => {
  it('a cancel the moment a step finishes: no later step runs', async () => {
    const runs: string[] = [];
    const { engine } = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs))));
    engine.on((e) => { if (e.type === 'step.finished' && e.stepId === 'a') void engine.cancel(e.job.id, bob); });
    engine.start();
    const j = await submit(engine);
    const v = await waitState(engine, j.id, 'cancelled');
    await sleep(50);
    expect(runs).toEqual(['a']);
    expect((await engine.job(j.id))!.steps.map((s) => s.state)).toEqual(['succeeded', 'pending', 'pending', 'pending']);
    expect(v.error).toBe('cancelled by UBOB');
  });

  it('a cancel as the job starts: no step runs at all', async () => {
    const runs: string[] = [];
    const { engine } = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs))));
    engine.on((e) => { if (e.type === 'job.started') void engine.cancel(e.job.id, bob); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'cancelled');
    await sleep(50);
    expect(runs).toEqual([]);
  });

  it('a step that ignores the abort and returns later is not recorded as done, and nothing after it runs', async () => {
    const runs: string[] = [];
    const stubborn: StepHandler = { id: 'b', run: async () => { await sleep(150); runs.push('b'); return { status: 'succeeded', summary: 'b applied anyway' }; } };
    const { engine, store } = track(makeEngine([recorder('a', runs), stubborn, recorder('c', runs), recorder('d', runs)]));
    const events: string[] = [];
    engine.on((e) => events.push(`${e.type}${'stepId' in e ? `:${e.stepId}` : ''}`));
    engine.start();
    const j = await submit(engine);
    await waitFor(() => events.includes('step.started:b'));
    const v = await engine.cancel(j.id, bob);
    expect(v.state).toBe('cancelled');
    await waitFor(() => runs.includes('b'));
    await sleep(50);
    const after = (await engine.job(j.id))!;
    expect(after.state).toBe('cancelled');
    expect(after.steps.map((s) => s.state)).toEqual(['succeeded', 'cancelled', 'pending', 'pending']);
    expect(runs).toEqual(['a', 'b']);
    expect(events.filter((e) => e.startsWith('job.'))).toEqual(['job.queued', 'job.started', 'job.cancelled']);
    expect(events).not.toContain('step.finished:b');
    expect(exportAudit(store, { jobId: j.id }).map((e) => e.action)).not.toContain('job.finished');
  });

  it('a cancelled job retried while its old step is still winding down waits for it: never two copies at once', async () => {
    let active = 0;
    let max = 0;
    let calls = 0;
    const slow: StepHandler = { id: 'b', run: async () => { calls++; active++; max = Math.max(max, active); await sleep(200); active--; return { status: 'succeeded', summary: 'b' }; } };
    const { engine } = track(makeEngine([ok('a'), slow, ok('c'), ok('d')], { concurrency: 2 }));
    engine.start();
    const j = await submit(engine);
    await waitFor(() => calls === 1);
    await engine.cancel(j.id, bob);
    await engine.retry(j.id, bob);
    await waitState(engine, j.id, 'succeeded');
    expect(calls).toBe(2);
    expect(max).toBe(1);
  });

  it('cancelling a finished job changes nothing; cancelling a queued one frees the deployment', async () => {
    const { engine } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    const queued = await submit(engine);
    const events: JobEvent[] = [];
    engine.on((e) => events.push(e));
    const c = await engine.cancel(queued.id, bob);
    expect(c).toMatchObject({ state: 'cancelled', error: 'cancelled by UBOB' });
    expect(events.map((e) => [e.type, e.job.state])).toEqual([['job.cancelled', 'cancelled']]);
    const next = await submit(engine);
    engine.start();
    await waitState(engine, next.id, 'succeeded');
    events.length = 0;
    expect((await engine.cancel(next.id, bob)).state).toBe('succeeded');
    expect((await engine.job(next.id))).toMatchObject({ state: 'succeeded' });
    expect((await engine.job(next.id))!.error).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('a job cancelled by another process is interrupted here at once (not only at the next lease renewal)', async () => {
    const log: string[] = [];
    const x = held('b', log);
    const runs: string[] = [];
    const { engine, store } = track(makeEngine([ok('a'), x.h, recorder('c', runs), recorder('d', runs)], { leaseMs: 60_000 }));
    const events: string[] = [];
    engine.on((e) => events.push(e.type));
    engine.start();
    const j = await submit(engine);
    await waitFor(() => log.includes('b:start'));
    const slackApp = makeEngine([], { path: store.path });
    await slackApp.engine.cancel(j.id, bob);
    engine.interrupt(j.id);
    await waitFor(() => log.includes('b:aborted'), 500);
    x.release();
    await sleep(50);
    expect((await engine.job(j.id))!.state).toBe('cancelled');
    expect(runs).toEqual([]);
    expect(events).not.toContain('job.failed');
    engine.interrupt('job_unknown'); // nothing running under that id: no error
  });
});

describe('stop', () => {
  it('stop() aborts the running step, waits for it, and leaves the job to any other worker at once', async () => {
    const log: string[] = [];
    const winding: StepHandler = { id: 'b', run: (ctx) => new Promise((_, reject) => {
      log.push('b:start');
      // the step needs a moment to clean up after the abort (a child process to kill)
      ctx.signal.addEventListener('abort', () => { log.push('b:aborted'); setTimeout(() => { log.push('b:cleaned up'); reject(new Error('aborted')); }, 60); });
    }) };
    const first = makeEngine([ok('a'), winding, ok('c'), ok('d')], { leaseMs: 60_000, owner: 'otherhost:1:aaaa' });
    first.engine.start();
    const j = await submit(first.engine);
    await waitFor(() => log.includes('b:start'));
    await first.engine.stop();
    expect(log).toEqual(['b:start', 'b:aborted', 'b:cleaned up']);
    const row = lease(first.store, j.id);
    expect(row).toMatchObject({ state: 'running', owner: 'otherhost:1:aaaa', expires: 0 });
    expect((await first.engine.job(j.id))!.steps[1].state).toBe('running');
    const runs: string[] = [];
    const second = track(makeEngine([ok('a'), recorder('b', runs), ok('c'), ok('d')], { leaseMs: 60_000, owner: 'otherhost:2:bbbb', path: first.store.path }));
    second.engine.start();
    await waitState(second.engine, j.id, 'succeeded', 2000);
    expect(runs).toEqual(['b']);
  });

  it('after stop() the worker claims nothing more', async () => {
    const { engine } = makeEngine([ok('a'), ok('b'), ok('c'), ok('d')], { pollMs: 20 });
    engine.start();
    await engine.stop();
    const j = await submit(engine);
    await sleep(100);
    expect((await engine.job(j.id))!.state).toBe('queued');
  });

  it('an engine without step handlers submits and cancels but refuses to start, saying why', async () => {
    const { engine } = makeEngine([]);
    expect(() => engine.start()).toThrow('job engine: this engine has no step handlers (it only submits, decides and cancels jobs); start one with the checklist handlers to run jobs');
    const j = await submit(engine);
    expect((await engine.cancel(j.id, bob)).state).toBe('cancelled');
  });
});

describe('what a user sees per job', () => {
  it('events in order, each carrying the job as it is at that moment', async () => {
    const { engine } = track(makeEngine([ok('a'), { id: 'b', run: async (ctx) => { ctx.progress('half way'); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d')]));
    const seen: string[] = [];
    engine.on((e) => seen.push(`${e.type}${'stepId' in e ? `:${e.stepId}` : ''}:${e.job.state}${e.type === 'step.progress' ? `:${e.message}` : ''}`));
    engine.start();
    const j = await submit(engine, 'sales', ['c']);
    await waitState(engine, j.id, 'succeeded');
    expect(seen).toEqual([
      'job.queued:queued', 'job.started:running',
      'step.started:a:running', 'step.finished:a:running',
      'step.started:b:running', 'step.progress:b:running:half way', 'step.finished:b:running',
      'step.started:d:running', 'step.finished:d:running',
      'job.succeeded:succeeded',
    ]);
  });

  it('a failing step: its error on the step and the job, later steps never run, the failure audited', async () => {
    const runs: string[] = [];
    const { engine, store } = track(makeEngine([recorder('a', runs), { id: 'b', run: async () => { throw new Error('kube said no'); } }, recorder('c', runs), recorder('d', runs)]));
    const seen: string[] = [];
    engine.on((e) => seen.push(`${e.type}:${e.job.state}`));
    engine.start();
    const j = await submit(engine);
    const v = await waitState(engine, j.id, 'failed');
    expect(v.error).toBe('Step b: kube said no');
    expect(v.steps.map((s) => [s.state, s.error])).toEqual([['succeeded', undefined], ['failed', 'kube said no'], ['pending', undefined], ['pending', undefined]]);
    expect(runs).toEqual(['a']);
    expect(seen.slice(-2)).toEqual(['step.failed:running', 'job.failed:failed']);
    const audit = exportAudit(store, { jobId: j.id });
    expect(audit.map((e) => [e.action, e.actor, e.result])).toEqual([
      ['job.submitted', 'UALICE', null], ['job.started', 'system', null], ['step.finished', 'system', 'succeeded'],
      ['step.failed', 'system', 'failed'], ['job.finished', 'system', 'failed'],
    ]);
    expect(audit[1]).toMatchObject({ deployment: 'sales', valuesHash: 'vh1', details: { attempt: 1, owner: engine.owner } });
    expect(audit[3].details).toEqual({ stepId: 'b', error: 'kube said no' });
    expect(audit[4].details).toEqual({ error: 'Step b: kube said no' });
    expect(exportAudit(store, { jobId: j.id }).every((e) => e.jobId === j.id)).toBe(true);
  });

  it('a database error outside the step itself fails the job with that error (masked), instead of leaving it running', async () => {
    const secret = 'db-s3cr3t-value-4';
    registerSecret(secret);
    const runs: string[] = [];
    const { engine, store } = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs))));
    // the write that marks step b running fails, as a full disk or a corrupt page would
    store.sqlite.exec(`create trigger fail_b before update of state on job_steps when new.step_id = 'b' and new.state = 'running' begin select raise(abort, 'disk I/O error near ${secret}'); end`);
    const seen: string[] = [];
    engine.on((e) => seen.push(`${e.type}:${e.job.state}`));
    engine.start();
    const j = await submit(engine);
    const v = await waitState(engine, j.id, 'failed');
    store.sqlite.exec('drop trigger fail_b');
    expect(v.error).toBe('disk I/O error near [REDACTED]');
    expect(runs).toEqual(['a']);
    expect(seen.at(-1)).toBe('job.failed:failed');
    expect(exportAudit(store, { jobId: j.id }).at(-1)).toMatchObject({ action: 'job.finished', result: 'failed', details: { error: 'disk I/O error near [REDACTED]' } });
  });

  it('a succeeded job is audited as finished and succeeded', async () => {
    const { engine, store } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    const last = exportAudit(store, { jobId: j.id }).at(-1)!;
    expect(last).toMatchObject({ action: 'job.finished', actor: 'system', result: 'succeeded', deployment: 'sales', valuesHash: 'vh1' });
  });

  it('a listener that throws does not stop the others or the job; an unsubscribed listener hears nothing more; relay re-emits', async () => {
    const { engine } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    const heard: string[] = [];
    const gone: string[] = [];
    engine.on(() => { throw new Error('listener bug'); });
    engine.on((e) => heard.push(e.type));
    const off = engine.on((e) => gone.push(e.type));
    off();
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(heard.at(-1)).toBe('job.succeeded');
    expect(gone).toEqual([]);
    const relayed = { type: 'job.failed', job: (await engine.job(j.id))! } as JobEvent;
    engine.relay(relayed);
    expect(heard.at(-1)).toBe('job.failed');
  });

  it("a job's secrets stop being masked once it ends (succeeded, failed or cancelled), not before", async () => {
    for (const outcome of ['succeeded', 'failed', 'cancelled'] as const) {
      const secret = `s3cr3t-${outcome}-value`;
      let seenWhileRunning = '';
      const { engine } = track(makeEngine([{ id: 'a', run: async (ctx) => {
        registerSecret(secret, { scope: ctx.jobId });
        seenWhileRunning = redact(`token ${secret}`);
        if (outcome === 'failed') throw new Error('boom');
        if (outcome === 'cancelled') await engine.cancel(ctx.jobId, bob);
        return { status: 'succeeded', summary: 'a' };
      } }, ok('b'), ok('c'), ok('d')]));
      const count = registeredSecretCount();
      engine.start();
      const j = await submit(engine);
      await waitState(engine, j.id, outcome);
      expect(seenWhileRunning).toBe('token [REDACTED]');
      expect(redact(`token ${secret}`)).toBe(`token ${secret}`);
      expect(registeredSecretCount()).toBe(count);
      await engine.stop();
    }
  });
});

describe('reading jobs', () => {
  it('settled(): at once for a finished job, via the database for a job another process runs, an error for an unknown one', async () => {
    const { engine, store } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect((await engine.settled(j.id)).state).toBe('succeeded');
    await expect(engine.settled('job_nope')).rejects.toThrow('job job_nope not found');
    const slackApp = makeEngine([], { path: store.path });
    const other = await submit(engine, 'other');
    expect((await slackApp.engine.settled(other.id)).state).toBe('succeeded');
  });

  it('latestJobFor(): the newest job of a deployment; nothing for a deployment without jobs', async () => {
    const { engine } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    engine.start();
    const j1 = await submit(engine);
    await waitState(engine, j1.id, 'succeeded');
    await sleep(5);
    const j2 = await submit(engine);
    await waitState(engine, j2.id, 'succeeded');
    expect((await engine.latestJobFor('sales'))!.id).toBe(j2.id);
    expect((await engine.latestJobFor('nobody'))).toBeUndefined();
  });
});

describe('refusals when the engine is built or a job submitted', () => {
  const opts = { policy: policy(), buildContext: () => ({ infra: {} as never, resolveSecret: async () => 'x' }) };

  it('every step id needs exactly one handler: missing, unknown and doubled handlers are named', () => {
    const store = openStore({ path: tmpDb() });
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, stepIds: ['a', 'b'], handlers: [ok('a')] }))
      .toThrow('job engine: no handler for step(s) b (the plan\'s steps are a, b); every step needs exactly one handler');
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, stepIds: ['a'], handlers: [ok('a'), ok('z'), ok('y')] }))
      .toThrow('job engine: handler(s) for unknown step(s) z, y (the plan\'s steps are a); every step needs exactly one handler');
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, stepIds: ['a', 'b', 'c'], handlers: [ok('a'), ok('a'), ok('b'), ok('b')] }))
      .toThrow('job engine: no handler for step(s) c; more than one handler for step(s) a, b (the plan\'s steps are a, b, c); every step needs exactly one handler');
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, handlers: [ok('a'), ok('a'), ok('b'), ok('b')] })).toThrow('job engine: more than one handler for step(s) a, b');
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, handlers: [ok('a'), ok('b')] })).not.toThrow();
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, stepIds: ['a'], handlers: [] })).not.toThrow();
    // the default plan's steps are the checklist's
    expect(() => createJobEngine({ store, ...opts, handlers: [ok('a')] })).toThrow(`no handler for step(s) ${STEP_IDS.join(', ')}`);
    expect(() => createJobEngine({ store, ...opts, handlers: STEP_IDS.map((id) => ok(id)) })).not.toThrow();
    // another kind's steps need handlers too
    expect(() => createJobEngine({ store, ...opts, plan: fakePlan, stepIds: ['a'], handlers: [ok('a')], jobKinds: { undo: { plan: fakePlan, stepIds: ['u'] } } }))
      .toThrow('job engine: no handler for step(s) u (the plan\'s steps are a, u)');
  });

  it('submit refuses an unknown kind and a plan with an applicable step nobody handles, starting nothing', async () => {
    const { engine } = track(makeEngine([ok('a'), ok('b')], { jobKinds: { undo: { plan: fakePlan, stepIds: [] }, redo: { plan: fakePlan, stepIds: [] } } }));
    await expect(engine.submit({ spec: fakeSpec(), kind: 'rollback', requestedBy: alice, origin: { kind: 'cli' } }))
      .rejects.toThrow('job engine: unknown job kind rollback; known: setup, undo, redo');
    await expect(submit(engine)).rejects.toThrow('job engine: no handler for step(s) c, d of this plan; nothing was started');
    expect((await engine.latestJobFor('sales'))).toBeUndefined();
    // the step without a handler is not applicable here: the job runs
    engine.start();
    const j = await submit(engine, 'sales', ['c', 'd']);
    expect((await waitState(engine, j.id, 'succeeded')).steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'skipped', 'skipped']);
  });

  it('a job of another kind runs the plan of that kind', async () => {
    const undoPlan = (spec: Parameters<typeof fakePlan>[0]) => ({ ...fakePlan(spec), steps: fakePlan(spec).steps.filter((s) => s.id === 'd' || s.id === 'a').reverse().map((s, i) => ({ ...s, order: i + 1 })) });
    const runs: string[] = [];
    const { engine } = track(makeEngine(['a', 'b', 'c', 'd'].map((s) => recorder(s, runs)), { jobKinds: { undo: { plan: undoPlan, stepIds: ['a', 'd'] } } }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), kind: 'undo', requestedBy: alice, origin: { kind: 'cli' } });
    await waitState(engine, j.id, 'succeeded');
    expect(runs).toEqual(['d', 'a']);
    const setup = await engine.submit({ spec: fakeSpec('other'), kind: 'setup', requestedBy: alice, origin: { kind: 'cli' } });
    await waitState(engine, setup.id, 'succeeded');
    expect(runs).toEqual(['d', 'a', 'a', 'b', 'c', 'd']);
  });
});
