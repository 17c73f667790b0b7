/**
 * Vitest config for `npm run mutate` (StrykerJS): only the tests of the safety-critical modules.
 * Tests that spawn a child process running src/ (crash.test.ts, e2e) are left out: mutants are switched
 * on inside the test process only, so those would run every mutant's code unmutated, slowly.
 */
import { defineConfig } from 'vitest/config';

export const MUTATION_TESTS = [
  'test/unit/redact.test.ts',
  'test/unit/redact-index.test.ts',
  'test/store/store.test.ts',
  'test/jobs/queue.test.ts',
  'test/jobs/lease.test.ts',
  'test/jobs/engine.test.ts',
  'test/jobs/engine-safety.test.ts',
  'test/slack/policy.test.ts',
  'test/slack/wizard.test.ts',
  'test/slack/wizard-auth.test.ts',
  'test/slack/wizard-operator.test.ts',
  'test/slack/wizard-errors.test.ts',
  'test/slack/wizard-origin.test.ts',
  'test/slack/outbox.test.ts',
  'test/slack/outbox-store.test.ts',
  'test/infra/helm.test.ts',
  'test/infra/helm-argv.test.ts',
  'test/infra/images-argv.test.ts',
];

export default defineConfig({
  test: {
    // scripts/mutate.mjs narrows this to the tests of the module group being mutated
    include: process.env.MUTATION_TESTS ? process.env.MUTATION_TESTS.split(',') : MUTATION_TESTS,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
