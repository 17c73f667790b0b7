/**
 * Keeps the benchmarks from rotting: runs `npm run bench -- --smoke` (small counts, the same code paths as
 * the full run) and checks it finishes and prints every figure. No timing is asserted: a missed target
 * never fails this test; a benchmark that breaks (throws, or its sanity checks fail) does.
 */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

const FIGURES = [
  '/re status reply p50', '/re status reply p99',
  '/re status p50', '/re status p99', 'button click p50', 'button click p99',
  'idle RSS', 'RSS under the ack load', 'start → ready',
  'Job overhead', 'posts per job', 'peak messages per second', '429s received', 'final checklists exact',
];

it('npm run bench -- --smoke runs every benchmark and prints the table', () => {
  const r = spawnSync(process.execPath, ['bin/run-ts.mjs', 'bench/run.ts', '--smoke'], { encoding: 'utf8', timeout: 170_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status, out).toBe(0);
  for (const f of FIGURES) expect(out, f).toContain(f);
  expect(out).not.toContain('BROKEN');
}, 180_000);
