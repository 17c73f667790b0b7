/**
 * Renders one complete Slack setup thread as plain text into docs/slack-thread.md (or the path given):
 * runs the success scenario of test/slack/review.test.ts (real Bolt app, Slack Web API emulator, real engine
 * and steps on the fake Kubernetes API), which writes the thread from the emulator's recorded messages
 * (src/devkit/slack-emulator/thread-text.ts).
 *
 *   node bin/run-ts.mjs scripts/slack-thread.ts [out.md]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const out = resolve(process.argv[2] ?? 'docs/slack-thread.md');
const vitest = resolve('node_modules/.bin/vitest');
if (!existsSync(vitest)) throw new Error('node_modules/.bin/vitest not found: run from the repository root after npm ci');
const r = spawnSync(vitest, ['run', 'test/slack/review.test.ts', '-t', 'mentions every approver'], {
  stdio: 'inherit',
  env: { ...process.env, SLACK_THREAD_DOC: out },
});
if (r.status !== 0 || !existsSync(out)) {
  console.error(`the scenario failed; ${out} was not written`);
  process.exit(r.status || 1);
}
console.log(`wrote ${out}`);
