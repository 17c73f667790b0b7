import { runAckBench } from './ack.ts';
import { setBenchSecretEnv } from './lib/spec.ts';
import { textTable } from './lib/stats.ts';
setBenchSecretEnv();
const r = await runAckBench({ concurrency: Number(process.argv[2] ?? 20), rounds: Number(process.argv[3] ?? 1), jobs: Number(process.argv[4] ?? 2), starts: 1, log: console.log, keep: true });
console.log(textTable(r.rows)); console.log(JSON.stringify(r.detail, null, 1));
