/**
 * A process-wide bound on the helm / buildah / skopeo / docker / podman processes running at once. Each helm
 * run is a ≈ 50 MB process: 20 concurrent setup jobs held ≈ 1 GB of helm children (bench/ack.ts), more than
 * the jobs' own worker. Runs beyond the bound wait (first come, first served) for a slot; a wait longer than
 * the call's timeout fails the call, its abort signal ends the wait, and the step running it shows it as progress.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { logger } from '../log.ts';
import { RedactedError } from '../redact.ts';

/**
 * Measured with `npm run bench -- --only ack` (20 concurrent setup jobs, 2 cores): unbounded, 13 helm processes
 * ran at once (671 MB); 4 slots held the helm share to 212 MB, 2 slots to 99 MB, and the 20 jobs finished no
 * later than unbounded (helm is CPU-bound: more processes than cores only queue in the kernel instead of here).
 * With the default RE_BOT_CONCURRENCY (2 jobs) nothing ever waits. One slot (≈ 50 MB of helm instead of ≈ 110)
 * takes the whole bench under 400 MB (356 MB), but the 20 jobs took 29–44 % longer in two of three paired runs,
 * and against a real cluster helm mostly waits on the API server: one slot would serialise those waits. See
 * BENCHMARKS.md, "Memory under load: what holds it".
 */
export const DEFAULT_MAX_CHILD_PROCESSES = 2;

/** RE_BOT_MAX_CHILD_PROCESSES: helm/image-tool processes running at once in one process (default 2) */
export function maxChildProcessesFromEnv(env: Record<string, string | undefined>): number {
  const raw = env.RE_BOT_MAX_CHILD_PROCESSES;
  if (raw === undefined || raw === '') return DEFAULT_MAX_CHILD_PROCESSES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`RE_BOT_MAX_CHILD_PROCESSES: expected a positive integer (helm/image-tool processes at once), got "${raw}"`);
  return n;
}

export interface SlotOptions {
  signal?: AbortSignal;
  /** the call's deadline: waiting longer than this fails the call with code 'timeout' */
  timeoutMs?: number;
}

/** Who waits (a job's step, set by the job runtime in src/app/wire.ts): told while it waits, named in the log. */
export interface SlotWaitReporter {
  progress(message: string): void;
  fields?: Record<string, unknown>;
}
const reporters = new AsyncLocalStorage<SlotWaitReporter>();

/** Runs fn so that a child-process slot wait anywhere inside it is reported through `reporter`. */
export function reportSlotWaits<T>(reporter: SlotWaitReporter, fn: () => T): T {
  return reporters.run(reporter, fn);
}

/** The adapter with every method call run under reportSlotWaits (a step's helm / image adapter). */
export function reportingSlotWaits<T>(adapter: T, reporter: SlotWaitReporter): T {
  if (!adapter || typeof adapter !== 'object') return adapter;
  return new Proxy(adapter, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (...args: unknown[]) => reportSlotWaits(reporter, () => v.apply(target, args)) : v;
    },
  });
}

export class ChildSlots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly max: number) {}

  get active(): number {
    return this.running;
  }
  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a slot; returns its release (call it once the process has exited). `label` names the run ("helm upgrade --install"). */
  async acquire(label: string, o: SlotOptions = {}): Promise<() => void> {
    if (o.signal?.aborted) throw new RedactedError(`${label} cancelled`, 'cancelled');
    // a released slot passes straight to the first waiter, so a free slot means nobody waits
    if (this.running < this.max) {
      this.running++;
      return this.releaser();
    }
    const reporter = reporters.getStore();
    const startedAt = Date.now();
    reporter?.progress(`waiting for a free slot to run ${label}: ${this.max} helm/image-tool processes running, ${this.waiting.length} run(s) ahead (RE_BOT_MAX_CHILD_PROCESSES)`);
    logger().info({ ...reporter?.fields, label, max: this.max, ahead: this.waiting.length }, 'waiting for a child-process slot');
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      };
      const grant = () => {
        cleanup();
        resolve();
      };
      const fail = (err: Error) => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        cleanup();
        reject(err);
      };
      const onAbort = () => fail(new RedactedError(`${label} cancelled while waiting for a free child-process slot`, 'cancelled'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.timeoutMs !== undefined) {
        const secs = Math.round(o.timeoutMs / 1000);
        timer = setTimeout(() => fail(new RedactedError(`${label} timed out after ${secs}s waiting for a free child-process slot (${this.max} at once: RE_BOT_MAX_CHILD_PROCESSES)`, 'timeout')), o.timeoutMs);
      }
      this.waiting.push(grant);
    });
    reporter?.progress(`running ${label} (waited ${((Date.now() - startedAt) / 1000).toFixed(1)} s for a free slot)`);
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(); // the slot passes to the next waiter
      else this.running--;
    };
  }
}

let shared: ChildSlots | undefined;

/**
 * Waits for one of this process's child-process slots (RE_BOT_MAX_CHILD_PROCESSES); returns its release.
 * The adapters call it right before spawning and release when the process has exited.
 */
export function childSlot(label: string, o: SlotOptions = {}): Promise<() => void> {
  shared ??= new ChildSlots(maxChildProcessesFromEnv(process.env));
  return shared.acquire(label, o);
}
