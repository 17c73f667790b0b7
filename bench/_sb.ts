import { runSlackBudgetBench } from './slack-budget.ts';
import { setBenchSecretEnv } from './lib/spec.ts';
import { textTable } from './lib/stats.ts';
setBenchSecretEnv();
const r = await runSlackBudgetBench({ jobs: Number(process.argv[2] ?? 5), timeScale: Number(process.argv[3] ?? 20), fault429: 0.1, log: console.log });
console.log(textTable(r.rows)); console.log(JSON.stringify(r.detail, null, 1).slice(0, 3000));
