import { runOverheadBench } from './overhead.ts';
import { setBenchSecretEnv } from './lib/spec.ts';
import { textTable } from './lib/stats.ts';
setBenchSecretEnv();
const r = await runOverheadBench({ jobs: Number(process.argv[2] ?? 1), log: console.log });
console.log(textTable(r.rows)); console.log(JSON.stringify(r.detail, null, 1).slice(0, 3000));
