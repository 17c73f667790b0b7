/**
 * N real `re-bot start` processes (HTTP mode, each on its own 127.0.0.1 port, each forking its own job worker as
 * in production) sharing one database, one Slack Web API emulator and one fake Kubernetes API. Each replica
 * runs in its own process group, so `kill9()` takes down what a dying pod takes down: the Slack process, the
 * job worker and their helm children. `restart()` starts it again on the same port (a pod coming back behind
 * the same Service).
 *
 * Used by test/e2e/chaos.test.ts and bench/pg-jobs.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { freePort } from '../support/postgres.ts';
import { join } from 'node:path';

export interface ReplicaSetOptions {
  count: number;
  /** env every replica gets on top of process.env (Slack, database, secret key, kubeconfig, …) */
  env: Record<string, string | undefined>;
  /** where each replica's log goes (`replica-<i>.log`, appended across restarts) */
  dir: string;
  /** repository root (bin/re-bot.mjs) */
  root: string;
  readyTimeoutMs?: number;
}

export interface Replica {
  index: number;
  port: number;
  /** http://127.0.0.1:<port>/slack/events */
  url: string;
  /** how many times this replica has been started (1 = first start) */
  starts: number;
  pid(): number | undefined;
  /** started, answering /readyz, not killed since */
  alive(): boolean;
  /** SIGKILL to the whole process group: Slack process, job worker, helm children */
  kill9(): Promise<void>;
  /** kill9 (if running), then start again on the same port and wait for /readyz */
  restart(): Promise<void>;
  /** SIGTERM and wait (the graceful stop); SIGKILL of the group after timeoutMs */
  stop(timeoutMs?: number): Promise<void>;
  log(): string;
}

export interface ReplicaSet {
  replicas: Replica[];
  random(): Replica;
  /** a random replica that is up (waits for one when all are restarting) */
  randomAlive(): Promise<Replica>;
  stopAll(): Promise<void>;
}

export { freePort };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitReady(port: number, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`re-bot start on port ${port} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(logFile)}`);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`re-bot start on port ${port} not ready within ${timeoutMs} ms:\n${tail(logFile)}`);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function makeReplica(index: number, o: ReplicaSetOptions): Promise<Replica> {
  const port = await freePort();
  const logFile = join(o.dir, `replica-${index}.log`);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // answering /readyz since its last start (a replica starting up takes no requests, as behind a Service)
  let ready = false;

  const spawnIt = async () => {
    const fd = openSync(logFile, 'a');
    child = spawn(process.execPath, ['bin/re-bot.mjs', 'start'], {
      cwd: o.root,
      env: { ...process.env, ...o.env, PORT: String(port), RE_BOT_HTTP_PORT: undefined, SLACK_APP_TOKEN: undefined, RE_BOT_SLACK_MODE: 'http' },
      stdio: ['ignore', fd, fd],
      // its own process group: kill(-pid) is the pod dying
      detached: true,
    });
    closeSync(fd);
    const c = child;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    r.starts++;
    await waitReady(port, c, logFile, o.readyTimeoutMs ?? 60_000);
    ready = true;
  };

  const kill9 = async () => {
    const c = child;
    ready = false;
    if (!c?.pid) return;
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
    // the group's other members (worker, helm) die with the signal; wait until none is left
    const end = Date.now() + 10_000;
    while (groupAlive(c.pid) && Date.now() < end) await sleep(20);
    child = undefined;
  };

  const r: Replica = {
    index,
    port,
    url: `http://127.0.0.1:${port}/slack/events`,
    starts: 0,
    pid: () => child?.pid,
    alive: () => ready && !!child && child.exitCode === null && child.signalCode === null,
    kill9,
    async restart() {
      await kill9();
      await spawnIt();
    },
    async stop(timeoutMs = 20_000) {
      const c = child;
      ready = false;
      if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
      c.kill('SIGTERM');
      const t = setTimeout(() => {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, timeoutMs);
      await exited;
      clearTimeout(t);
      // nothing of the group may outlive the test
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        // gone
      }
      child = undefined;
    },
    log: () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
  await spawnIt();
  return r;
}

/** Starts `count` replicas one after the other (each ready before the next starts). */
export async function startReplicas(o: ReplicaSetOptions): Promise<ReplicaSet> {
  const replicas: Replica[] = [];
  const stopAll = async () => {
    await Promise.all(replicas.map((r) => r.stop().catch(() => undefined)));
  };
  try {
    for (let i = 0; i < o.count; i++) replicas.push(await makeReplica(i, o));
  } catch (err) {
    await stopAll();
    throw err;
  }
  const random = () => replicas[Math.floor(Math.random() * replicas.length)];
  return {
    replicas,
    random,
    async randomAlive() {
      for (;;) {
        const up = replicas.filter((r) => r.alive());
        if (up.length) return up[Math.floor(Math.random() * up.length)];
        await sleep(50);
      }
    },
    stopAll,
  };
}
