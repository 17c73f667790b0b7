/**
 * V8 heap settings of re-bot's two processes. Under load (bench/ack.ts: 20 setup jobs, bursts of 200 Slack
 * requests) both hold several times their live heap, almost all of it garbage V8 has not collected yet: with
 * its defaults it runs no full GC until the old generation reaches a first limit of ≈ 80–130 MB, and keeps a
 * 32 MB young generation. None of these settings caps a heap (no out-of-memory exit at any size): they only
 * make V8 collect sooner. Measured: BENCHMARKS.md, "Memory under load: what holds it".
 */
import { setFlagsFromString } from 'node:v8';

/**
 * The job worker (forked with these): V8's memory-over-speed mode, a 2 MB semi-space, a 32 MB first
 * old-generation limit, and an old generation that grows by 30 % of what survives each full GC. Live heap with
 * 20 jobs ≈ 45 MB plus 14 MB of @kubernetes/client-node module source; RSS ≈ 240 MB with the defaults, ≈ 165 MB
 * with the last three, ≈ 150 MB with all four (the 20 jobs took no longer: the worker waits on helm and the
 * cluster, not on its own JavaScript).
 */
export const WORKER_HEAP_FLAGS = ['--optimize-for-size', '--max-semi-space-size=2', '--initial-old-space-size=32', '--heap-growing-percent=30'];

/**
 * The Slack process's own launch flag, on node's command line where it runs (`ENTRYPOINT` of the Dockerfile,
 * the shebang of bin/re-bot.mjs for `npx re-bot start`; bench/ack.ts starts it the same way): V8 sizes the young
 * generation when the process starts, and no setting at run time changes it. A 4 MB semi-space instead of 16 MB:
 * under bursts of 200 requests the Slack process held ≈ 140 MB for ≈ 30 MB of live data, a quarter of it the
 * young generation (BENCHMARKS.md).
 */
export const SLACK_PROCESS_NODE_FLAGS = ['--max-semi-space-size=4'];

/**
 * The worker's node options: the heap settings, then this process's own (loader hooks, profiling flags, and
 * heap flags given to `re-bot start` on its command line, which so win over ours) except the Slack process's
 * own launch flags, which are not meant for the worker.
 */
export function workerExecArgv(parent: readonly string[]): string[] {
  return [...WORKER_HEAP_FLAGS, ...parent.filter((a) => !SLACK_PROCESS_NODE_FLAGS.includes(a))];
}

/**
 * The Slack process sets its heap growth at run time (the young generation and the first limit are fixed once
 * node has started; node refuses this flag in NODE_OPTIONS): an old generation that grows by 30 % of what
 * survives a full GC. Live heap under the bursts ≈ 30 MB; RSS ≈ 190–220 MB with the defaults.
 * A `--heap-growing-percent` given on node's command line is kept.
 */
export function leanSlackProcessHeap(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return;
  setFlagsFromString('--heap-growing-percent=30');
}
