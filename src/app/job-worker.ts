/**
 * Setup jobs run in a child process (`re-bot worker`), not in the Slack process: a job forks helm and buildah
 * and parses manifests, and on one event loop that work delays acks past Slack's 3 s window (bench/ack.ts).
 * Both processes share the SQLite store; the worker claims jobs with leases as any engine does. The worker
 * renders its jobs' progress into the shared Slack outbox itself (enqueue-only: this process is the one
 * sender, and wakes its outbox when the worker says it wrote rows); it relays a lean copy of each state event
 * to this process's other listeners (logs, metrics), and this side nudges the worker when a decision made
 * here (submit, approve, retry, cancel) gives it work, so it need not wait for its next poll.
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
import { withoutLogContext, type Logger } from '../log.ts';
import { workerEnv } from '../infra/child-env.ts';
import { workerExecArgv } from './heap.ts';
import { renderedElsewhere } from '../slack/progress.ts';

const HERE = fileURLToPath(import.meta.url);
const BIN = join(dirname(HERE), '..', '..', 'bin', 're-bot.mjs');
/** a Slack process running the TypeScript sources (tests, a dev checkout) forks a worker from the same sources */
const FROM_SOURCE = HERE.endsWith('.ts');

export const DEFAULT_WORKER_IDLE_SECONDS = 300;

export type ToWorker = { type: 'kick' } | { type: 'cancel'; jobId: string } | { type: 'stop' };
/**
 * `idle`: the worker found no work for its idle period and is exiting (not a crash: not restarted).
 * `outbox`: the worker wrote Slack outbox rows (no payload: they are in the store).
 */
export type FromWorker = { type: 'event'; event: JobEvent } | { type: 'ready'; pid: number } | { type: 'idle' } | { type: 'outbox' };

/**
 * What the worker sends of an event, now that it renders Slack progress itself: nothing of a progress line,
 * and of a state event only what the Slack process's remaining listeners read (log line, step-duration
 * metric, the job id for the listeners that read the store): the job view without its other steps, its
 * approvals and any step output, and the event's approval without its diff text. A full view (every step's
 * output, every approval with its diff of all rendered manifests) was most of the IPC bytes and of the
 * Slack process's parsing.
 */
export function relayedEvent(e: JobEvent): JobEvent | undefined {
  if (e.type === 'step.progress') return undefined;
  const stepId = 'stepId' in e ? e.stepId : undefined;
  const steps = e.job.steps.filter((s) => s.stepId === stepId).map(({ output: _output, ...s }) => s);
  const job = { ...e.job, steps, approvals: [] };
  return 'approval' in e ? { ...e, job, approval: { ...e.approval, diffText: '' } } : { ...e, job };
}

/**
 * Coalesces the worker's "I wrote outbox rows" into at most one message per `minGapMs` (the last write of a
 * burst is always followed by one): each message makes the sender look at the store at once.
 */
export function outboxNudger(send: () => void, minGapMs = 20): () => void {
  let last = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    timer = undefined;
    last = Date.now();
    send();
  };
  return () => {
    if (timer) return;
    timer = setTimeout(fire, Math.max(0, last + minGapMs - Date.now()));
  };
}

/**
 * The worker's events, applied to the Slack process's listeners (logs, metrics; not progress rendering, the
 * worker did that) a batch at a time, so a burst of events from many jobs never holds the event loop while
 * acks wait. Bounded: a job's `step.progress` lines coalesce (only its newest waits), and past `max` entries
 * the oldest progress line is dropped (counted, logged). State events (step/approval/job) are never dropped.
 * (The worker sends no progress lines any more: the bound is a safety net.)
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
  /** true when the store has queued, running or waiting jobs: fork now, and again if the worker exits (PostgreSQL: a promise) */
  hasWork: () => boolean | Promise<boolean>;
  /** a progress line dropped from the full relay queue */
  onDrop?: () => void;
  /** the worker wrote Slack outbox rows: wake the sender */
  onOutbox?: () => void;
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
  const relay = new EventRelay((e) => engine.relay(renderedElsewhere(e)), {
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
  /** calls `then` with the answer: at once for SQLite's synchronous check, when it arrives for PostgreSQL's */
  const withWork = (then: (work: boolean) => void): void => {
    let r: boolean | Promise<boolean>;
    try {
      r = o.hasWork();
    } catch {
      return then(true); // cannot tell (DB busy or unreachable): a worker that finds nothing exits again
    }
    if (typeof r === 'boolean') return then(r);
    r.then(then, () => then(true));
  };

  const spawnWorker = () => withoutLogContext(() => {
    if (stopping || child) return;
    if (restartTimer) clearTimeout(restartTimer);
    restartTimer = undefined;
    forks++;
    const c = fork(BIN, ['worker'], { env, execArgv: workerExecArgv(process.execArgv), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child = c;
    let idleExit = false;
    c.on('message', (m: FromWorker) => {
      if (m.type === 'event') relay.push(m.event);
      else if (m.type === 'outbox') o.onOutbox?.();
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
        withWork((w) => w && spawnWorker());
        return;
      }
      // its jobs keep their leases; the next worker reclaims them (dead owner on this host, or an expired lease)
      withWork((w) => {
        if (stopping || child || restartTimer) return;
        if (!w) return o.log.error({ code, signal }, 'job worker exited; no jobs are active, it starts again on the next one');
        const delay = Math.min(30_000, 500 * 2 ** restarts++);
        o.log.error({ code, signal, restartInMs: delay }, 'job worker exited; restarting it');
        restartTimer = setTimeout(spawnWorker, delay);
        restartTimer.unref();
      });
    });
  });
  // active jobs from before a restart (running with a dead owner, queued, waiting for approval): resume them
  withWork((w) => w && spawnWorker());
  // and jobs this process did not submit (another process or replica writing the same store): one EXISTS query
  let watching = false;
  const watch = setInterval(() => {
    if (child || restartTimer || stopping || watching) return;
    watching = true;
    withWork((w) => {
      watching = false;
      if (w) spawnWorker();
    });
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
