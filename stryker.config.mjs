// @ts-check
/**
 * Mutation testing of the safety-critical modules (see TESTING.md). Not part of `npm test`.
 * Run through scripts/mutate.mjs, which runs Stryker once per module group with only that group's tests:
 *   npm run mutate                             every group (long: see TESTING.md for timings)
 *   npm run mutate -- --mutate src/redact.ts   one module, the quick loop
 */
import { resolve } from 'node:path';

// the sandbox copy leaves out .tools (118 MB, and a symlink in worktrees): point the helm tests at the real one
process.env.RE_BOT_HELM ??= resolve('.tools/bin/helm');

const group = process.env.MUTATION_GROUP ?? 'index';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutate.config.ts', related: true },
  mutate: [
    'src/redact.ts',
    'src/store/crypto.ts',
    'src/jobs/queue.ts',
    'src/jobs/lease.ts',
    'src/jobs/approvals.ts',
    'src/jobs/engine.ts',
    'src/jobs/runner.ts',
    'src/slack/policy.ts',
    'src/slack/wizard-handlers.ts',
    'src/slack/outbox.ts',
    'src/slack/outbox-store.ts',
    'src/infra/helm.ts',
    'src/infra/images.ts',
  ],
  // static mutants (module-level constants such as the redaction patterns) need a fresh module graph
  // per mutant: in a trial they took 92% of the run time. They are reported as "ignored".
  ignoreStatic: true,
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 15_000,
  timeoutFactor: 2,
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: `reports/mutation/${group}.html` },
  jsonReporter: { fileName: `reports/mutation/${group}.json` },
  clearTextReporter: { allowColor: false, logTests: false },
  thresholds: { high: 90, low: 80, break: null },
  ignorePatterns: ['/.tools', '/data', '/out', '/.demo', '/reports', '/bench', '/examples', '/manifests', '*.db', '*.db-wal', '*.db-shm'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
