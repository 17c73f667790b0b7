/**
 * Run by test/app/heap.test.ts in its own node process: ≈ 20 MB of live data and a stream of short-lived
 * objects that survive a few turns (as in-flight requests do), then prints the old generation's peak size
 * in MB. `lean` as the first argument applies the Slack process's heap setting first.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { leanSlackProcessHeap } from '../../src/app/heap.ts';

if (process.argv[2] === 'lean') leanSlackProcessHeap();
const live = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
const inFlight: unknown[][] = [];
let peakOld = 0;
for (let turn = 0; turn < 400; turn++) {
  inFlight.push(Array.from({ length: 5000 }, (_, i) => ({ a: i, b: `y${i}.${turn}`, c: [i, i + 1] })));
  if (inFlight.length > 20) inFlight.shift();
  await new Promise((r) => setImmediate(r));
  peakOld = Math.max(peakOld, getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_size);
}
process.stdout.write(`${JSON.stringify({ peakOldMb: peakOld / 2 ** 20, live: live.length })}\n`);
