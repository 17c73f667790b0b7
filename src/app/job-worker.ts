/**
 * Setup jobs run in a child process (`re-bot worker`), not in the Slack process: a job forks helm and buildah
 * and parses manifests, and on one event loop that work delays acks past Slack's 3 s window (bench/ack.ts).
 * Both processes share the SQLite store; the worker claims jobs with leases as any engine does. This side
 * relays the worker's job events to the Slack process's listeners and nudges the worker when a decision
 * made here (submit, approve, retry, cancel) gives it work, so it need not wait for its next poll.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalJobEngine } from '../jobs/engine.ts';
import type { JobEvent } from '../jobs/types.ts';
import type { Logger } from '../log.ts';
import { workerEnv } from '../infra/child-env.ts';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 're-bot.mjs');

export type ToWorker = { type: 'kick' } | { type: 'cancel'; jobId: string } | { type: 'stop' };
export type FromWorker = { type: 'event'; event: JobEvent } | { type: 'ready'; pid: number };

export interface JobWorker {
  pid(): number | undefined;
  alive(): boolean;
  stop(): Promise<void>;
}

export function startJobWorker(engine: LocalJobEngine, o: { env: NodeJS.ProcessEnv; log: Logger }): JobWorker {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  const send = (m: ToWorker) => {
    if (child?.connected) child.send(m);
  };

  const spawnWorker = () => {
    const c = fork(BIN, ['worker'], { env: workerEnv(o.env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child = c;
    c.on('message', (m: FromWorker) => {
      if (m.type === 'event') engine.relay(m.event);
      else if (m.type === 'ready') {
        restarts = 0;
        o.log.info({ workerPid: m.pid }, 'job worker ready');
      }
    });
    c.on('exit', (code, signal) => {
      if (stopping || child !== c) return;
      // its jobs keep their leases; the next worker reclaims them (dead owner on this host) and resumes them
      const delay = Math.min(30_000, 500 * 2 ** restarts++);
      o.log.error({ code, signal, restartInMs: delay }, 'job worker exited; restarting it');
      setTimeout(() => !stopping && spawnWorker(), delay).unref();
    });
  };
  spawnWorker();

  // decisions taken in this process give the worker something to do now
  const { submit, retry, decide, cancel } = engine;
  const kick = <R>(r: R) => {
    send({ type: 'kick' });
    return r;
  };
  engine.submit = (input) => submit(input).then(kick);
  engine.retry = (jobId, by) => retry(jobId, by).then(kick);
  engine.decide = (approvalId, input) => decide(approvalId, input).then(kick);
  engine.cancel = (jobId, by) =>
    cancel(jobId, by).then((v) => {
      send({ type: 'cancel', jobId });
      return v;
    });

  return {
    pid: () => child?.pid,
    alive: () => Boolean(child?.connected),
    async stop() {
      stopping = true;
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
