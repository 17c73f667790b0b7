import { runAckBench } from './ack.ts';
import { setBenchSecretEnv } from './lib/spec.ts';
import { textTable } from './lib/stats.ts';
setBenchSecretEnv();
process.env.BENCH_CHILD_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${process.argv[2]}`;
const r = await runAckBench({ concurrency: 200, rounds: 3, jobs: Number(process.argv[3] ?? 4), starts: 1, log: console.log });
console.log(textTable(r.rows));
console.log(JSON.stringify((r.detail as any).starts), (r.detail as any).bareIdleRss);
