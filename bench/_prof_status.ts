import { runStatusBench } from './status.ts';
await runStatusBench({ deployments: 500, stepRows: 40000, samples: 30000, hotShare: 0.01, log: console.log });
