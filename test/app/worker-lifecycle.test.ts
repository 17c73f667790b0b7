/**
 * The job worker runs only while there is work: forked on the first decision that gives it some (or at start
 * when the store has active jobs), gone after RE_BOT_WORKER_IDLE_SECONDS without any, forked again on
 * demand. Also the bounded in-memory queues of the Slack process (relayed events, ephemeral backlog).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventRelay, startJobWorker, workerIdleSecondsFromEnv, type JobWorker } from '../../src/app/job-worker.ts';
import type { LocalJobEngine } from '../../src/jobs/engine.ts';
import type { JobEvent } from '../../src/jobs/types.ts';
import { Writable } from 'node:stream';
import { createLogger, logger, withLogContext } from '../../src/log.ts';
import { boundedEphemerals } from '../../src/slack/app.ts';
import { BoundedSet } from '../../src/slack/context.ts';
import { openStore } from '../../src/store/db.ts';
import { scratchDir, SECRETS } from '../e2e/support.ts';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** just what startJobWorker wraps: decisions resolve at once */
function stubEngine(decision: { ok: boolean } = { ok: true }) {
  const relayed: JobEvent[] = [];
  const engine = {
    submit: async () => ({ id: 'job_1' }),
    retry: async () => ({ id: 'job_1' }),
    decide: async () => decision,
    cancel: async () => ({ id: 'job_1', state: 'cancelled' }),
    relay: (e: JobEvent) => relayed.push(e),
  } as unknown as LocalJobEngine;
  return { engine, relayed, decision };
}

describe('job worker on demand', () => {
  let worker: JobWorker | undefined;
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });

  const env = () => {
    const dir = scratchDir('worker-life');
    const dbPath = join(dir, 'bot.db');
    openStore({ path: dbPath }).close(); // migrated, no jobs: the worker finds nothing to do
    return { ...process.env, ...SECRETS, RE_BOT_DB: dbPath, RE_BOT_WORKER_IDLE_SECONDS: '0.3', RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: '*' };
  };

  it('is not forked at start without active jobs; a decision forks it; idle, it exits and is not restarted', async () => {
    const { engine } = stubEngine();
    worker = startJobWorker(engine, { env: env(), log: logger(), hasWork: () => false });
    expect(worker.starts()).toBe(0);
    expect(worker.alive()).toBe(false);

    await engine.submit({} as never); // a submit gives it work
    expect(worker.starts()).toBe(1);
    await until(() => worker!.alive(), 30_000, 'the worker to start');
    // nothing active in the store: it exits by itself after 0.3 s, and stays gone
    await until(() => !worker!.alive() && worker!.pid() === undefined, 30_000, 'the idle worker to exit');
    await new Promise((r) => setTimeout(r, 700));
    expect(worker.starts()).toBe(1);

    await engine.retry('job_1', { id: 'U1' }); // on demand again
    expect(worker.starts()).toBe(2);
    await until(() => worker!.alive(), 30_000, 'the second worker');
  }, 90_000);

  it("the worker forked by a request's decision does not log its lines as that request's", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
    const { engine } = stubEngine();
    worker = startJobWorker(engine, { env: env(), log: createLogger({}, sink), hasWork: () => false });
    await withLogContext({ requestId: 'req-that-forked', slackUser: 'U0FIRST' }, () => engine.submit({} as never));
    await until(() => lines.some((l) => l.msg === 'job worker exited: idle'), 30_000, 'the worker to start and exit idle');
    const workerLines = lines.filter((l) => String(l.msg).startsWith('job worker'));
    expect(workerLines.map((l) => l.msg)).toEqual(expect.arrayContaining(['job worker ready', 'job worker exited: idle']));
    for (const l of workerLines) expect(l, String(l.msg)).not.toHaveProperty('requestId');
    for (const l of workerLines) expect(l, String(l.msg)).not.toHaveProperty('slackUser');
  }, 60_000);

  it('a refused decision does not fork it; an accepted one does', async () => {
    const s = stubEngine({ ok: false });
    worker = startJobWorker(s.engine, { env: env(), log: logger(), hasWork: () => false });
    await s.engine.decide('apr_1', {} as never);
    expect(worker.starts()).toBe(0);
    s.decision.ok = true;
    await s.engine.decide('apr_1', {} as never);
    expect(worker.starts()).toBe(1);
  }, 30_000);

  it('is forked at start when the store has active jobs, and again when it exits while work remains', async () => {
    const { engine } = stubEngine();
    let work = true;
    worker = startJobWorker(engine, { env: env(), log: logger(), hasWork: () => work });
    expect(worker.starts()).toBe(1);
    await until(() => worker!.alive(), 30_000, 'the worker to start');
    // the worker sees no jobs in its DB and exits idle; this side still has work (e.g. a submit during the
    // exit): it forks a new one at once
    await until(() => worker!.starts() >= 2, 30_000, 'a new worker');
    work = false;
    await until(() => !worker!.alive() && worker!.pid() === undefined, 30_000, 'the last worker to exit');
    const n = worker.starts();
    await new Promise((r) => setTimeout(r, 700));
    expect(worker.starts()).toBe(n);
  }, 90_000);

  it('a crashed worker is restarted only while there is work', async () => {
    const { engine } = stubEngine();
    let work = false;
    const e = { ...env(), RE_BOT_WORKER_IDLE_SECONDS: '60' };
    worker = startJobWorker(engine, { env: e, log: logger(), hasWork: () => work });
    worker.ensure();
    await until(() => worker!.alive(), 30_000, 'the worker to start');
    process.kill(worker.pid()!, 'SIGKILL');
    await until(() => worker!.pid() === undefined, 10_000, 'the crash to be seen');
    await new Promise((r) => setTimeout(r, 1000));
    expect(worker.starts()).toBe(1); // no work: it starts again on the next job
    work = true;
    worker.ensure();
    await until(() => worker!.alive(), 30_000, 'the worker to start again');
    process.kill(worker.pid()!, 'SIGKILL');
    await until(() => worker!.starts() === 3, 10_000, 'the restart'); // 500 ms backoff
  }, 90_000);

  it('RE_BOT_WORKER_IDLE_SECONDS: default 300, any number ≥ 0, else an error naming the variable', () => {
    expect(workerIdleSecondsFromEnv({})).toBe(300);
    expect(workerIdleSecondsFromEnv({ RE_BOT_WORKER_IDLE_SECONDS: '0' })).toBe(0);
    expect(workerIdleSecondsFromEnv({ RE_BOT_WORKER_IDLE_SECONDS: '1.5' })).toBe(1.5);
    expect(() => workerIdleSecondsFromEnv({ RE_BOT_WORKER_IDLE_SECONDS: 'soon' })).toThrow(/RE_BOT_WORKER_IDLE_SECONDS/);
    expect(() => workerIdleSecondsFromEnv({ RE_BOT_WORKER_IDLE_SECONDS: '-1' })).toThrow(/RE_BOT_WORKER_IDLE_SECONDS/);
  });
});

const ev = (type: string, jobId: string, extra: Record<string, unknown> = {}) => ({ type, job: { id: jobId }, ...extra }) as unknown as JobEvent;
const tick = () => new Promise((r) => setImmediate(r));

describe('bounded in-memory queues', () => {
  it('the event relay applies events in batches, in order, coalescing a job’s progress lines', async () => {
    const applied: JobEvent[] = [];
    const relay = new EventRelay((e) => applied.push(e), { batch: 2 });
    relay.push(ev('step.started', 'a'));
    relay.push(ev('step.progress', 'a', { message: '1' }));
    relay.push(ev('step.progress', 'b', { message: 'b1' }));
    relay.push(ev('step.progress', 'a', { message: '2' })); // supersedes '1'
    relay.push(ev('step.finished', 'a'));
    expect(applied).toHaveLength(0); // never inside the caller (the IPC message handler)
    await tick();
    expect(applied).toHaveLength(2); // one batch, then the event loop gets a turn
    while (relay.length) await tick();
    expect(applied.map((e) => `${e.type}:${e.job.id}:${(e as { message?: string }).message ?? ''}`)).toEqual([
      'step.started:a:', 'step.progress:b:b1', 'step.progress:a:2', 'step.finished:a:',
    ]);
  });

  it('the event relay drops the oldest progress line past its bound, never a state event', async () => {
    const applied: JobEvent[] = [];
    const dropped: JobEvent[] = [];
    const relay = new EventRelay((e) => applied.push(e), { max: 5, onDrop: (e) => dropped.push(e) });
    for (let i = 0; i < 10; i++) relay.push(ev('step.progress', `job${i}`));
    for (let i = 0; i < 5; i++) relay.push(ev('step.finished', `job${i}`));
    expect(relay.length).toBe(5);
    expect(relay.dropped).toBe(10);
    expect(dropped.map((e) => e.job.id)).toEqual(Array.from({ length: 10 }, (_, i) => `job${i}`));
    relay.push(ev('job.succeeded', 'job0')); // no progress line left to drop: state events are kept
    expect(relay.length).toBe(6);
    while (relay.length) await tick();
    expect(applied.map((e) => e.type)).toEqual([...Array(5).fill('step.finished'), 'job.succeeded']);
  });

  it('the ephemeral backlog keeps at most N pending answers, dropping the oldest pending one', async () => {
    const rows = new Map<string, { id: number; state: string }>();
    let id = 0;
    const failed: Array<[number, string]> = [];
    const store = {
      get: async (k: string) => rows.get(k) && { ...rows.get(k)! },
      dropPending: async (i: number, err: string) => {
        failed.push([i, err]);
        for (const r of rows.values()) if (r.id === i) r.state = 'failed';
        return true;
      },
    };
    const outbox = { ephemeral: (k: string) => void rows.set(k, { id: ++id, state: 'pending' }) };
    const drops: string[] = [];
    const metrics = { dropped: { inc: (l: { queue: string }) => drops.push(l.queue) } };
    const tell = boundedEphemerals(outbox as never, { outboxStore: store as never, ephemeralBacklog: 3, metrics: metrics as never }, logger());
    tell('C1', 'U1', 'one');
    rows.get([...rows.keys()][0])!.state = 'sent'; // already sent: not counted, not dropped
    for (const t of ['two', 'three', 'four', 'five']) tell('C1', 'U1', t);
    await new Promise((r) => setImmediate(r)); // the drop happens after the answer was queued
    expect(failed.map(([i]) => i)).toEqual([2]); // 'two', the oldest still pending
    expect(failed[0][1]).toMatch(/backlog full/);
    expect([...rows.values()].filter((r) => r.state === 'pending')).toHaveLength(3);
    expect(drops).toEqual(['ephemeral']);
  });

  it('the refused-click memory forgets its oldest entries past its bound', () => {
    const s = new BoundedSet(2);
    s.add('a');
    s.add('b');
    s.add('c');
    expect([s.has('a'), s.has('b'), s.has('c'), s.size]).toEqual([false, true, true, 2]);
  });
});
