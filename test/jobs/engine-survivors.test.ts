/**
 * What the worker loop (src/jobs/engine.ts) tells an operator in its log when something outside a step goes
 * wrong: a listener that throws, a job taken back from a worker whose lease ran out, a job that failed outside
 * its step; how soon a caller waiting on `settled()` hears the outcome, and how often an idle worker looks for
 * jobs another process queued; that an engine not running (never started, or stopped) does no worker's duty; and
 * that stop() gives up waiting for a step that ignores the abort after 10 s. Written from the jobs-loop mutation run (TESTING.md): the job's own outcome was asserted, the log
 * line an operator greps for was not.
 */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StepHandler } from '../../src/checklist/types.ts';
import { createLogger, logger, setLogger } from '../../src/log.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import type { JobEngine } from '../../src/jobs/types.ts';
import type { Store } from '../../src/store/db.ts';
import { makeEngine, ok } from './helpers.ts';
import { sleep, stopEnginesAfterEach, submit } from './engine-harness.ts';

const lines: Array<Record<string, unknown>> = [];
const capture = createLogger({}, new Writable({ write: (c, _e, cb) => { for (const l of String(c).split('\n').filter(Boolean)) lines.push(JSON.parse(l)); cb(); } }));
capture.level = 'info';
const previous = logger();
beforeAll(() => setLogger(capture));
afterAll(() => { setLogger(previous); forgetAllSecrets(); });
beforeEach(() => { lines.length = 0; });

const track = stopEnginesAfterEach();
const four = (): StepHandler[] => ['a', 'b', 'c', 'd'].map((s) => ok(s));
const logged = (msg: string) => lines.filter((l) => l.msg === msg);

describe('the worker loop’s log lines', () => {
  it('a listener that throws: a warning with its error, and the job still finishes', async () => {
    const { engine } = track(makeEngine(four()));
    engine.on(() => { throw new Error('listener bug 17'); });
    engine.start();
    const j = await submit(engine);
    expect((await engine.settled(j.id)).state).toBe('succeeded');
    const warned = logged('job event listener failed');
    expect(warned.length).toBeGreaterThan(0);
    expect(warned[0]).toMatchObject({ level: 40, err: 'listener bug 17' });
  });

  it('a job whose worker’s lease ran out is taken back: an info line naming the job and the worker it was taken from', async () => {
    const T = 1_800_000_000_000;
    const { engine, store } = track(makeEngine(four(), { owner: 'thishost:1:new', clock: () => T, leaseMs: 60_000 }));
    const j = await submit(engine);
    store.sqlite.prepare("update jobs set state = 'running', lease_owner = 'otherhost:9:gone', lease_expires_at = ?, started_at = created_at where id = ?").run(T - 1, j.id);
    engine.start();
    expect((await engine.settled(j.id)).state).toBe('succeeded');
    expect(logged('reclaimed job lease')).toEqual([expect.objectContaining({ level: 30, jobId: j.id, previousOwner: 'otherhost:9:gone' })]);
  });

  it('a database error outside the step: an error line naming the job, with the error masked', async () => {
    const secret = 'db-s3cr3t-value-survivor';
    registerSecret(secret);
    const { engine, store } = track(makeEngine(four()));
    store.sqlite.exec(`create trigger fail_b before update of state on job_steps when new.step_id = 'b' and new.state = 'running' begin select raise(abort, 'disk I/O error near ${secret}'); end`);
    engine.start();
    const j = await submit(engine);
    expect((await engine.settled(j.id)).state).toBe('failed');
    store.sqlite.exec('drop trigger fail_b');
    expect(logged('job runner crashed')).toEqual([expect.objectContaining({ level: 50, jobId: j.id, err: 'disk I/O error near [REDACTED]' })]);
    expect(JSON.stringify(lines)).not.toContain(secret);
  });
});

/** a step that runs until `release()` */
function held(id: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => { release = r; });
  const h: StepHandler = { id, run: async () => { await released; return { status: 'succeeded', summary: `${id} done` }; } };
  return { h, release: () => release() };
}
/** lets pending promise callbacks run, but no timer */
const microtasks = async () => { for (let i = 0; i < 5; i++) await Promise.resolve(); };

describe('settled(): the caller hears the outcome at once, not at the next database poll (200 ms)', () => {
  it('a job already finished: answered before any timer could fire', async () => {
    const { engine } = track(makeEngine(four()));
    engine.start();
    const j = await submit(engine);
    await engine.settled(j.id);
    const first = await Promise.race([engine.settled(j.id), new Promise((r) => setImmediate(() => r('a timer later')))]);
    expect(first).toMatchObject({ id: j.id, state: 'succeeded' });
  });

  it('a job finishing in this engine: answered by the job’s own final event', async () => {
    const b = held('b');
    const { engine } = track(makeEngine([ok('a'), b.h, ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    let answer: unknown = 'nothing yet';
    void engine.settled(j.id).then((v) => { answer = v; });
    const atFinish: unknown[] = [];
    // registered after settled()'s own listener: runs right after it, in the same event
    engine.on((e) => { if (e.type === 'job.succeeded') void microtasks().then(() => atFinish.push(answer)); });
    b.release();
    await vi.waitFor(() => expect(atFinish).toHaveLength(1), { timeout: 5000, interval: 5 });
    expect(atFinish[0]).toMatchObject({ id: j.id, state: 'succeeded' });
  });
});

describe('an idle worker looks for jobs queued by another process every 500 ms by default', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('a job written by another process is not claimed before the poll, and is claimed at it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { engine: worker, store } = track(makeEngine(four(), { pollMs: undefined }));
    worker.start();
    await new Promise((r) => setImmediate(r)); // start()'s own look finds nothing
    const slackProcess = makeEngine([], { path: store.path }).engine; // submits only, never kicks the worker
    const j = await submit(slackProcess);
    await vi.advanceTimersByTimeAsync(499);
    await new Promise((r) => setImmediate(r));
    expect((await worker.job(j.id))!.state).toBe('queued');
    await vi.advanceTimersByTimeAsync(1);
    await new Promise((r) => setImmediate(r));
    expect((await worker.job(j.id))!.state).not.toBe('queued');
  });
});

describe('an engine that is not running leaves other workers’ jobs alone', () => {
  const T = 1_800_000_000_000;
  /** a job whose worker crashed: running, lease expired an hour ago, owner on another host */
  async function crashedJob(engine: JobEngine, store: Store) {
    const j = await submit(engine);
    store.sqlite.prepare("update jobs set state = 'running', lease_owner = 'otherhost:9:gone', lease_expires_at = ?, started_at = created_at where id = ?").run(T - 3_600_000, j.id);
    return j.id;
  }
  const holder = (store: Store, id: string) => store.sqlite.prepare('select state, lease_owner as owner from jobs where id = ?').get(id);

  it('an engine that only submits (the Slack process, never started) does not take back a job whose lease ran out', async () => {
    const { engine, store } = track(makeEngine([], { clock: () => T }));
    const id = await crashedJob(engine, store);
    await submit(engine, 'another'); // a submit kicks the loop, which only a started engine runs
    await sleep(50);
    expect(holder(store, id)).toEqual({ state: 'running', owner: 'otherhost:9:gone' });
  });

  it('a stopped engine (also one started twice) no longer polls: a job whose lease runs out afterwards is left for the running workers', async () => {
    for (const twice of [false, true]) {
      const { engine, store } = track(makeEngine(four(), { clock: () => T, pollMs: 10 }));
      engine.start();
      if (twice) engine.start();
      await sleep(20); // start()'s own first look has run
      await engine.stop();
      const id = await crashedJob(engine, store);
      await sleep(80); // eight polls, had the timer been left running
      expect(holder(store, id)).toEqual({ state: 'running', owner: 'otherhost:9:gone' });
    }
  });
});

describe('stop() and a step that ignores the abort', () => {
  afterEach(() => { vi.useRealTimers(); });

  it('stop() waits for the step, but returns after 10 s if it never ends', async () => {
    let started = false;
    const stubborn: StepHandler = { id: 'b', run: () => { started = true; return new Promise(() => {}); } };
    const { engine, store } = makeEngine([ok('a'), stubborn, ok('c'), ok('d')]);
    engine.start();
    const j = await submit(engine);
    await vi.waitFor(() => expect(started).toBe(true), { timeout: 5000, interval: 5 });
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout'] });
    let stopped = false;
    void engine.stop().then(() => { stopped = true; });
    await vi.advanceTimersByTimeAsync(9_980);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(stopped).toBe(true);
    // the job is left to any worker at once
    expect(store.sqlite.prepare('select lease_expires_at as expires from jobs where id = ?').get(j.id)).toEqual({ expires: 0 });
  });
});
