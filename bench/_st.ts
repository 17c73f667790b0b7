import { runStatusBench } from './status.ts';
import { textTable } from './lib/stats.ts';
const r = await runStatusBench({ deployments: Number(process.argv[2] ?? 200), stepRows: Number(process.argv[3] ?? 20000), samples: 2000, hotShare: 0.01, log: console.log });
console.log(textTable(r.rows)); console.log(JSON.stringify(r.detail, null, 1));
