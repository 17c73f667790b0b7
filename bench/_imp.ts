import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
const rss = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024);
const t0 = performance.now();
console.log('start', Math.round(performance.now()), 'ms since process start', rss(), 'MB');
for (const m of (process.argv[2] ?? '').split(',')) {
  const t = performance.now();
  await import(m);
  console.log(m.padEnd(40), (performance.now() - t).toFixed(0).padStart(6), 'ms', String(rss()).padStart(5), 'MB');
}
(globalThis as any).gc?.();
console.log('total', (performance.now() - t0).toFixed(0), 'ms', rss(), 'MB', 'heapUsed', Math.round(process.memoryUsage().heapUsed / 1048576), 'MB');
