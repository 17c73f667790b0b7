/**
 * Setup jobs run in a child process (`re-bot worker`), not in the Slack process: a job forks helm and buildah
 * and parses manifests, and on one event loop that work delays acks past Slack's 3 s window (bench/ack.ts).
 * Both processes share the SQLite store; the worker claims jobs with leases as any engine does. This side
 * relays the worker's job events to the Slack process's listeners and nudges the worker when a decision
 * made here (submit, approve, retry, cancel) gives it work, so it need not wait for its next poll.
 *
 * The worker runs only while there is work (≈ 110 MB it would otherwise hold idle): it is forked on the
 * first decision that gives it some (or at start when the store has active jobs), and exits by itself after
 * RE_BOT_WORKER_IDLE_SECONDS (default 300) with no queued, running or waiting job. A worker that exits while
 * the store still has work (a job submitted during its exit, a crash) is forked again, as it is when another
 * process writes a job into the store (checked every 2 s while no worker runs).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalJobEngine } from '../jobs/engine.ts';
import type { JobEvent } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import { workerEnv } from '../infra/child-env.ts';

const HERE = fileURLToPath(import.meta.url);
const BIN = join(dirname(HERE), '..', '..', 'bin', 're-bot.mjs');
/** a Slack process running the TypeScript sources (tests, a dev checkout) forks a worker from the same sources */
const FROM_SOURCE = HERE.endsWith('.ts');

export const DEFAULT_WORKER_IDLE_SECONDS = 300;

export type ToWorker = { type: 'kick' } | { type: 'cancel'; jobId: string } | { type: 'stop' };
/** `idle`: the worker found no work for its idle period and is exiting (not a crash: not restarted) */
export type FromWorker = { type: 'event'; event: JobEvent } | { type: 'ready'; pid: number } | { type: 'idle' };

/**
 * What the worker sends of an event: the approvals' diff text left out (`''`). It is often most of a job
 * view's bytes (a first install's diff holds every rendered manifest), every event carries the job's
 * approvals, and nothing in the Slack process reads it from an event — "View full diff" reads the store.
 * Less to serialise in the worker, to queue on the IPC channel and to parse on the Slack process's loop.
 */
export function relayedEvent(e: JobEvent): JobEvent {
  const lean = <A extends { diffText: string }>(a: A): A => (a.diffText ? { ...a, diffText: '' } : a);
  const job = e.job.approvals.some((a) => a.diffText) ? { ...e.job, approvals: e.job.approvals.map(lean) } : e.job;
  return 'approval' in e ? { ...e, job, approval: lean(e.approval) } : { ...e, job };
}

/**
 * The worker's events, applied to the Slack process's listeners (progress rendering → outbox) a batch at a
 * time, so a burst of events from many jobs never holds the event loop while acks wait. Bounded: a job's
 * `step.progress` lines coalesce (only its newest waits), and past `max` entries the oldest progress line is
 * dropped (counted, logged). State events (step/approval/job) are never dropped: each is a Slack post.
 */
export class EventRelay {
  private q: JobEvent[] = [];
  private scheduled = false;
  dropped = 0;
  constructor(
    private apply: (e: JobEvent) => void,
    private o: { max?: number; batch?: number; onDrop?: (e: JobEvent) => void } = {},
  ) {}
  get length(): number {
    return this.q.length;
  }
  push(e: JobEvent): void {
    if (e.type === 'step.progress') {
      const i = this.q.findIndex((p) => p.type === 'step.progress' && p.job.id === e.job.id);
      if (i >= 0) this.q.splice(i, 1); // superseded: the parent shows only the newest line
    }
    this.q.push(e);
    if (this.q.length > (this.o.max ?? 1000)) {
      const i = this.q.findIndex((p) => p.type === 'step.progress');
      if (i >= 0) {
        const [gone] = this.q.splice(i, 1);
        this.dropped++;
        this.o.onDrop?.(gone);
      }
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }
  private drain(): void {
    this.scheduled = false;
    for (const e of this.q.splice(0, this.o.batch ?? 20)) this.apply(e);
    if (this.q.length && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain()); // let waiting requests (acks) in between batches
    }
  }
}

export interface JobWorker {
  pid(): number | undefined;
  alive(): boolean;
  /** fork the worker if it is not running (a decision gave it work) */
  ensure(): void;
  /** how many times a worker was forked (metrics, tests) */
  starts(): number;
  stop(): Promise<void>;
}

export interface JobWorkerOptions {
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** true when the store has queued, running or waiting jobs: fork now, and again if the worker exits */
  hasWork: () => boolean;
  /** a progress line dropped from the full relay queue */
  onDrop?: () => void;
  /** relay queue bound (default 1000) */
  relayMax?: number;
  /** how often to look for active jobs while no worker runs (default 2000 ms) */
  watchMs?: number;
}

export function startJobWorker(engine: LocalJobEngine, o: JobWorkerOptions): JobWorker {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let forks = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let lastDropLog = 0;
  const relay = new EventRelay((e) => engine.relay(e), {
    max: o.relayMax,
    onDrop: (e) => {
      o.onDrop?.();
      if (Date.now() - lastDropLog > 10_000) {
        lastDropLog = Date.now();
        o.log.warn({ jobId: e.job.id, dropped: relay.dropped }, 'job event relay full: dropped the oldest progress line');
      }
    },
  });
  const env = { ...workerEnv(o.env), ...(FROM_SOURCE ? { RE_BOT_FROM_SOURCE: '1' } : {}) };
  const hasWork = () => {
    try {
      return o.hasWork();
    } catch {
      return true; // cannot tell (DB busy): a worker that finds nothing exits again
    }
  };

  const spawnWorker = () => {
    if (stopping || child) return;
    if (restartTimer) clearTimeout(restartTimer);
    restartTimer = undefined;
    forks++;
    const c = fork(BIN, ['worker'], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child = c;
    let idleExit = false;
    c.on('message', (m: FromWorker) => {
      if (m.type === 'event') relay.push(m.event);
      else if (m.type === 'idle') idleExit = true;
      else if (m.type === 'ready') {
        restarts = 0;
        o.log.info({ workerPid: m.pid }, 'job worker ready');
      }
    });
    c.on('exit', (code, signal) => {
      if (child !== c) return;
      child = undefined;
      if (stopping) return;
      if (idleExit) {
        o.log.info({ code }, 'job worker exited: idle');
        // a decision taken while it was exiting: its kick went to the exiting worker
        if (hasWork()) spawnWorker();
        return;
      }
      // its jobs keep their leases; the next worker reclaims them (dead owner on this host) and resumes them
      if (!hasWork()) {
        o.log.error({ code, signal }, 'job worker exited; no jobs are active, it starts again on the next one');
        return;
      }
      const delay = Math.min(30_000, 500 * 2 ** restarts++);
      o.log.error({ code, signal, restartInMs: delay }, 'job worker exited; restarting it');
      restartTimer = setTimeout(spawnWorker, delay);
      restartTimer.unref();
    });
  };
  // active jobs from before a restart (running with a dead owner, queued, waiting for approval): resume them
  if (hasWork()) spawnWorker();
  // and jobs this process did not submit (another process writing the same store): one indexed EXISTS query
  const watch = setInterval(() => {
    if (!child && !restartTimer && !stopping && hasWork()) spawnWorker();
  }, o.watchMs ?? 2000);
  watch.unref();

  const send = (m: ToWorker) => {
    if (child?.connected) child.send(m);
  };
  // decisions taken in this process give the worker something to do now: fork it, or wake it
  const { submit, retry, decide, cancel } = engine;
  const kick = <R>(r: R) => {
    if (child) send({ type: 'kick' });
    else if (!restartTimer) spawnWorker(); // a fresh worker ticks at once
    return r;
  };
  engine.submit = (input) => submit(input).then(kick);
  engine.retry = (jobId, by) => retry(jobId, by).then(kick);
  // a refused click changes nothing: it must not fork a worker
  engine.decide = (approvalId, input) => decide(approvalId, input).then((r) => (r.ok ? kick(r) : r));
  engine.cancel = (jobId, by) =>
    cancel(jobId, by).then((v) => {
      send({ type: 'cancel', jobId });
      return v;
    });

  return {
    pid: () => child?.pid,
    alive: () => Boolean(child?.connected),
    ensure: () => void kick(undefined),
    starts: () => forks,
    async stop() {
      stopping = true;
      clearInterval(watch);
      if (restartTimer) clearTimeout(restartTimer);
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      send({ type: 'stop' });
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** RE_BOT_WORKER_IDLE_SECONDS: seconds without active jobs before the worker exits (0: at once) */
export function workerIdleSecondsFromEnv(env: Record<string, string | undefined>): number {
  const raw = env.RE_BOT_WORKER_IDLE_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_WORKER_IDLE_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`RE_BOT_WORKER_IDLE_SECONDS: expected a number of seconds ≥ 0, got "${raw}"`);
  return n;
}

/** the SQL both sides use for "the worker has work" */
export const ACTIVE_JOBS_SQL = `SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('queued', 'running', 'waiting_approval')) AS active`;
