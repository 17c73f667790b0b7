/** Child processes for the benchmarks: spawn (TypeScript through tsx), RSS, readiness, clean stop. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** performance.now() when spawn() was called */
  spawnedAt: number;
  exited: Promise<number | null>;
  stop(timeoutMs?: number): Promise<void>;
}

/** `node bin/run-ts.mjs <file> …` (or any node script) with stdout/stderr to a log file and an IPC channel. */
export function spawnNode(args: string[], o: { env?: Record<string, string | undefined>; logFile: string; ipc?: boolean }): Child {
  const log = createWriteStream(o.logFile, { flags: 'a' });
  const spawnedAt = performance.now();
  // profiling aid: BENCH_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench …
  const nodeArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, ...args], {
    env: { ...process.env, BENCH_CHILD_NODE_ARGS: undefined, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(o.ipc ? (['ipc'] as const) : [])],
  });
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    pid: proc.pid!,
    spawnedAt,
    exited,
    async stop(timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** resident set size of a process in bytes (VmRSS from /proc/<pid>/status) */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** RSS of a process and its descendants (`re-bot start` forks its job worker): [total, own]. */
export function rssTree(pid: number): [number, number] {
  const own = rssOf(pid);
  let total = own;
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* no children file: count the process alone */
  }
  for (const k of kids) {
    try {
      total += rssTree(k)[0];
    } catch {
      /* exited meanwhile */
    }
  }
  return [total, own];
}

/**
 * RSS of a process tree by what runs: the process itself (`self`), then each descendant's command name (`helm`,
 * `node` = the job worker …), summed; `counts` (optional) gets how many processes of each name were seen
 */
export function rssBreakdown(pid: number, counts: Record<string, number> = {}): Record<string, number> {
  const out: Record<string, number> = { self: rssOf(pid) };
  const walk = (p: number) => {
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return;
    }
    for (const k of kids) {
      try {
        const name = readFileSync(`/proc/${k}/comm`, 'utf8').trim();
        out[name] = (out[name] ?? 0) + rssOf(k);
        counts[name] = (counts[name] ?? 0) + 1;
        walk(k);
      } catch {
        /* exited meanwhile */
      }
    }
  };
  walk(pid);
  return out;
}

/** CPU time of a process's main thread (its event loop) in ms, from /proc/<pid>/schedstat (ns on CPU) */
export function loopCpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

export { freePort } from '../../src/devkit/registry.ts';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until the app answers: GET /readyz 200, or (where /readyz does not exist yet) a signed `/re help`
 * answered 200. Returns how it was detected.
 */
export async function waitReady(base: string, secret: string, child: Child, timeoutMs = 30_000): Promise<{ at: number; via: string }> {
  const end = Date.now() + timeoutMs;
  let readyz: 'unknown' | 'absent' | 'present' = 'unknown';
  while (Date.now() < end) {
    if (child.proc.exitCode !== null) throw new Error(`process exited with code ${child.proc.exitCode} before it was ready`);
    try {
      if (readyz !== 'absent') {
        const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) return { at: performance.now(), via: 'GET /readyz 200' };
        if (r.status === 404) readyz = 'absent';
        else readyz = 'present';
      }
      if (readyz === 'absent') {
        const s = signRequest(secret, slashCommandBody({ command: '/re', text: 'help', user_id: 'U0READY', channel_id: 'C0READY', team_id: 'T0123ABCD', trigger_id: '1.2.3', response_url: 'http://127.0.0.1:1/none' }));
        const r = await fetch(`${base}/slack/events`, { method: 'POST', body: s.body, headers: s.headers, signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) return { at: performance.now(), via: 'signed /re help 200' };
      }
    } catch {
      // not listening yet
    }
    await sleep(10);
  }
  throw new Error(`not ready within ${timeoutMs} ms`);
}
