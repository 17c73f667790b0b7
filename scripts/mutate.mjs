#!/usr/bin/env node
/**
 * `npm run mutate [-- --mutate <file>[:<from>-<to>][,…]] [<other stryker options>]`
 *
 * Runs StrykerJS once per group of safety-critical modules, each against only the tests of that group.
 * One run over everything would be far slower: redact() is called by nearly every test, so with per-test
 * coverage each of its mutants would rerun all of them. Prints, at the end, the score and the time per group.
 * HTML reports: reports/mutation/<group>.html (JSON next to it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const JOB_TESTS = ['test/jobs/queue.test.ts', 'test/jobs/lease.test.ts', 'test/jobs/engine.test.ts', 'test/jobs/engine-safety.test.ts'];

export const GROUPS = [
  { name: 'redact', files: ['src/redact.ts'], tests: ['test/unit/redact.test.ts', 'test/unit/redact-index.test.ts', 'test/unit/redact-gaps.test.ts'] },
  { name: 'crypto', files: ['src/store/crypto.ts'], tests: ['test/store/store.test.ts', 'test/store/sweep.test.ts', 'test/store/sweep-details.test.ts'] },
  // the job engine in two groups, so each finishes in reasonable time: the durable state (queue, leases,
  // approvals and votes) and the loop that runs steps (engine, runner)
  { name: 'jobs-state', files: ['src/jobs/queue.ts', 'src/jobs/lease.ts', 'src/jobs/approvals.ts'], tests: [...JOB_TESTS, 'test/jobs/queue-state.test.ts', 'test/jobs/approvals-votes.test.ts', 'test/jobs/lease-alive.test.ts'] },
  { name: 'jobs-loop', files: ['src/jobs/engine.ts', 'src/jobs/runner.ts'], tests: [...JOB_TESTS, 'test/jobs/engine-loop.test.ts', 'test/jobs/runner-steps.test.ts', 'test/jobs/engine-survivors.test.ts'] },
  { name: 'slack-policy', files: ['src/slack/policy.ts', 'src/slack/wizard-handlers.ts'], tests: ['test/slack/policy.test.ts', 'test/slack/policy-cache.test.ts', 'test/slack/wizard-auth.test.ts', 'test/slack/wizard-operator.test.ts', 'test/slack/wizard-errors.test.ts', 'test/slack/wizard.test.ts', 'test/slack/wizard-origin.test.ts'] },
  { name: 'outbox', files: ['src/slack/outbox.ts', 'src/slack/outbox-store.ts'], tests: ['test/slack/outbox-pacing.test.ts', 'test/slack/outbox-retry.test.ts', 'test/slack/outbox-lifecycle.test.ts', 'test/slack/outbox-rows.test.ts', 'test/slack/outbox.test.ts', 'test/slack/outbox-store.test.ts', 'test/slack/outbox-writer.test.ts'] },
  { name: 'infra-argv', files: ['src/infra/helm.ts', 'src/infra/images.ts'], tests: ['test/infra/helm.test.ts', 'test/infra/helm-argv.test.ts', 'test/infra/helm-text.test.ts', 'test/infra/images-argv.test.ts', 'test/infra/images-errors.test.ts', 'test/infra/helm-survivors.test.ts'] },
];

const args = process.argv.slice(2);
const at = args.indexOf('--mutate');
let only;
if (at >= 0) {
  only = args[at + 1]?.split(',').map((f) => f.trim()).filter(Boolean);
  args.splice(at, 2);
}
// `--mutate src/jobs/engine.ts:327-381` (a line range) is passed on as is
const fileOf = (spec) => spec.replace(/:\d+(-\d+)?$/, '');
const groups = GROUPS.map((g) => ({ ...g, files: only ? only.filter((o) => g.files.includes(fileOf(o))) : g.files })).filter((g) => g.files.length);
const unknown = (only ?? []).filter((f) => !GROUPS.some((g) => g.files.includes(fileOf(f))));
if (unknown.length) {
  console.error(`mutate: not a safety module: ${unknown.join(', ')} (known: ${GROUPS.flatMap((g) => g.files).join(', ')})`);
  process.exit(2);
}

const results = [];
for (const g of groups) {
  const t0 = Date.now();
  console.log(`\n=== mutate ${g.name}: ${g.files.join(', ')} (tests: ${g.tests.filter((t) => existsSync(t)).join(', ')})`);
  const r = spawnSync('npx', ['stryker', 'run', '--mutate', g.files.join(','), ...args], {
    stdio: 'inherit',
    env: { ...process.env, MUTATION_GROUP: g.name, MUTATION_TESTS: g.tests.filter((t) => existsSync(t)).join(',') },
  });
  const seconds = Math.round((Date.now() - t0) / 1000);
  const json = `reports/mutation/${g.name}.json`;
  let score = 'n/a';
  let counts = '';
  if (r.status === 0 && existsSync(json)) {
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const all = Object.values(report.files).flatMap((f) => f.mutants);
    const n = (s) => all.filter((m) => m.status === s).length;
    const detected = n('Killed') + n('Timeout');
    const valid = detected + n('Survived') + n('NoCoverage');
    score = valid ? `${((100 * detected) / valid).toFixed(2)}%` : 'n/a';
    counts = `killed ${n('Killed')}, timeout ${n('Timeout')}, survived ${n('Survived')}, no coverage ${n('NoCoverage')}, ignored ${n('Ignored')}`;
  }
  results.push({ group: g.name, score, time: `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`, counts, exit: r.status });
}
console.log('\nMutation score per group:');
console.table(results);
process.exit(results.some((x) => x.exit !== 0) ? 1 : 0);
