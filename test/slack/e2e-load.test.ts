/**
 * Issue 5 "Done when", load: 50 concurrent jobs in one channel with 20% injected 429s (plus a few 5xx),
 * through the real Bolt app, the outbox, and the REAL job engine of src/app/wire.ts (createRuntime: SQLite
 * on disk, leases, approvals, retries, cancel; the engine and the outbox write the same DB file through two
 * connections, as in production).
 *
 * Why stub step handlers: 50 real setups are 50 real `helm upgrade --install` runs plus pod waits and test
 * DAG runs, minutes on the 2 shared CI cores, and the subject here is the Slack side under load (posting,
 * pacing, 429 holds, idempotency, the parent checklist reflecting the engine), not helm. The stubs keep the
 * real step ids (so the real plan, titles, execution order and skips apply) and go through the real
 * engine's contract: progress lines, `requireApproval` inside `agents`, StepFailure with a log tail. The
 * real steps against the fake cluster are covered by e2e-setup.test.ts.
 */
import { afterEach, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/wire.ts';
import { StepFailure, type StepHandler } from '../../src/checklist/types.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { approvalKey, failureKey } from '../../src/slack/progress.ts';
import type { JobView } from '../../src/jobs/types.ts';
import type { Infra } from '../../src/infra/types.ts';
import { sampleSpec } from '../support/fake-engine.ts';
import { APPROVER, CHANNEL, REQUESTER, startHarness, until, type Harness } from './harness.ts';
import { scratch } from './e2e-support.ts';
import { join } from 'node:path';
import { jobView } from '../../src/jobs/views.ts';

type Outcome = 'succeeded' | 'rejected' | 'cancelled' | 'retried' | 'failed';
/** what happens to job i: most succeed, every tenth-ish is rejected, cancelled, retried after a failure, or fails for good */
const outcomeOf = (i: number): Outcome => (['succeeded', 'rejected', 'succeeded', 'succeeded', 'cancelled', 'succeeded', 'succeeded', 'retried', 'succeeded', 'failed'] as const)[i % 10];
const N = 50;

let h: Harness | undefined;
let rt: Runtime | undefined;
afterEach(async () => {
  await h?.rt.stop();
  h?.store.close();
  await h?.emu.close();
  await rt?.close();
  h = rt = undefined;
});

function stubHandlers(failOnce: Set<string>): StepHandler[] {
  const tick = () => new Promise((r) => setTimeout(r, 1 + Math.floor(Math.random() * 8)));
  return STEP_IDS.map((id) => ({
    id,
    async run(ctx) {
      const name = ctx.spec.deployment.name;
      const i = Number(name.split('-').at(-1));
      ctx.progress(`${id}: working`);
      await tick();
      if (id === 'xcom-backend' && outcomeOf(i) === 'failed') throw new StepFailure(`bucket ${name}-xcom: AccessDenied`, { logTail: 'PutObject AccessDenied\nrequest id 42' });
      if (id === 'verify' && failOnce.delete(name)) throw new StepFailure('test DAG run failed (hello_remote_agent=failed)', { logTail: 'Task exited with return code 1' });
      if (id === 'agents') {
        const grant = await ctx.requireApproval({ title: `helm upgrade --install astro-agent (agents for ${name})`, hash: `h-${ctx.plan.valuesHash}`, diffText: '+ image: agent:1.2.3', changedKeys: ['image'], facts: { chart: ctx.plan.chart } });
        ctx.progress('helm upgrade --install');
        await tick();
        return { status: 'succeeded', summary: `revision 1 (approved by ${grant.approvedBy.join(', ')})`, output: { helmRevision: 1 } };
      }
      return { status: id === 'logging' ? 'warned' : 'succeeded', summary: `${id} ok`, ...(id === 'logging' ? { warnings: ['logging.mode is none'] } : {}) };
    },
  }));
}

function lines(h: Harness, ts: string): string[] {
  const blocks = h.emu.messages.get(`${CHANNEL}/${ts}`)!.blocks as any[];
  return String(blocks.find((b) => b.block_id === 'steps').text.text).split('\n');
}

it('50 concurrent real-engine jobs in one channel, 20% 429s: one parent each, every parent shows the true final state, posts within steps + 4', async () => {
  const dbPath = join(scratch('load'), 'bot.db');
  const failOnce = new Set(Array.from({ length: N }, (_, i) => i).filter((i) => outcomeOf(i) === 'retried').map((i) => `load-${i}`));
  // the stubs touch no adapter: no kubeconfig, helm or Astro client is built for them
  rt = await createRuntime({ dbPath, handlers: stubHandlers(failOnce), infraFor: async () => ({}) as Infra, policy: { approvers: [APPROVER], required: 1, allowSelfApproval: false }, concurrency: 8, pollMs: 20 });
  const runtime = rt;
  h = await startHarness({ engine: runtime.engine, dbPath, env: { RE_BOT_APPROVERS: APPROVER }, pacingMs: 2, retryAfterUnitMs: 5, status: runtime.status, lastSpec: runtime.lastSpec, deployments: runtime.deployments });
  const { emu } = h;
  const harness = h;
  emu.injectFault({ method: '*', kind: 429, fraction: 0.2, retryAfterSec: 1 });
  emu.injectFault({ method: 'chat.update', kind: 500, count: 5 });
  emu.injectFault({ method: 'chat.postMessage', kind: 503, count: 3 });
  runtime.engine.start();

  const jobs = await Promise.all(Array.from({ length: N }, (_, i) => runtime.engine.submit({ spec: sampleSpec(`load-${i}`), requestedBy: { id: REQUESTER }, origin: { kind: 'slack', channel: CHANNEL } })));
  const v = (j: JobView) => jobView(runtime.store!, j.id)!;
  const idx = (j: JobView) => Number(j.deployment.split('-').at(-1));

  // every job either waits for its approval (its request posted in its thread) or failed before it
  await until(() => jobs.every((j) => ['waiting_approval', 'failed'].includes(v(j).state)), 30_000, 'all jobs at their approval');
  const waiting = jobs.filter((j) => v(j).state === 'waiting_approval');
  expect(waiting).toHaveLength(jobs.filter((j) => outcomeOf(idx(j)) !== 'failed').length);
  const approvalTs = (j: JobView) => harness.tsOf(approvalKey(j.id, v(j).approvals[0].id));
  await until(() => waiting.every(approvalTs), 60_000, 'every approval request posted');

  // the users act, all at once: approve, reject, or the requester cancels
  // a rejection asks for a reason in a modal: the approver rejects one after the other (one modal at a time,
  // like a person) while the other clicks and commands land
  const rejections = (async () => {
    for (const j of waiting.filter((x) => outcomeOf(idx(x)) === 'rejected')) await harness.reject(APPROVER, approvalTs(j)!, `not ${j.deployment}`);
  })();
  await Promise.all([rejections, ...waiting.map((j) => {
    const o = outcomeOf(idx(j));
    if (o === 'cancelled') return harness.command(REQUESTER, `cancel ${j.id}`);
    if (o === 'rejected') return undefined;
    return harness.press(APPROVER, approvalTs(j)!, 're_approve');
  })]);
  // the failed-once jobs: the requester presses Retry on the failure reply
  const retried = jobs.filter((j) => outcomeOf(idx(j)) === 'retried');
  await until(() => retried.every((j) => v(j).state === 'failed' && harness.tsOf(failureKey(j.id, 1))), 30_000, 'retry candidates failed and reported');
  await Promise.all(retried.map((j) => harness.press(REQUESTER, harness.tsOf(failureKey(j.id, 1))!, 're_retry')));

  const expected: Record<Outcome, string> = { succeeded: 'succeeded', retried: 'succeeded', rejected: 'failed', failed: 'failed', cancelled: 'cancelled' };
  await until(() => jobs.every((j) => v(j).state === expected[outcomeOf(idx(j))] && (outcomeOf(idx(j)) !== 'retried' || v(j).attempt === 2)), 30_000, 'every job in its final state');
  await harness.rt.outbox.idle(60_000);

  expect(emu.calls.filter((c) => c.status === 429).length).toBeGreaterThan(20);
  // no duplicate parent: exactly one top-level message per job, each naming its job
  const parents = emu.parents(CHANNEL);
  expect(parents).toHaveLength(N);
  for (const j of jobs) {
    const mine = parents.filter((p) => String(p.text).includes(j.id));
    expect(mine, j.deployment).toHaveLength(1);
    expect(mine[0].ts).toBe(harness.parentTs(j.id));
  }
  for (const j of jobs) {
    const final = v(j);
    const ts = harness.parentTs(j.id)!;
    const parent = emu.messages.get(`${CHANNEL}/${ts}`)!;
    // the parent shows the job's true final state, step by step
    expect(JSON.stringify(parent.blocks), j.deployment).toContain(`\`${j.deployment}\` — ${final.state}`);
    expect(JSON.stringify(parent.blocks)).toContain(`attempt ${final.attempt}`);
    const shown = lines(harness, ts);
    expect(shown, j.deployment).toHaveLength(STEP_IDS.length);
    for (const s of final.steps) expect(shown[s.number - 1], `${j.deployment} step ${s.stepId}`).toMatch(new RegExp(`^\\S+ ${s.number}\\. .* — ${s.state.replace(/_/g, ' ')}( \\(|$)`));
    if (final.state === 'succeeded') expect(final.steps.every((s) => ['succeeded', 'warned', 'skipped'].includes(s.state))).toBe(true);

    // posts per job: parent + thread replies, each logical message once, within the steps + 4 budget
    const replies = emu.replies(CHANNEL, ts);
    expect(replies.length + 1, j.deployment).toBeLessThanOrEqual(STEP_IDS.length + 4);
    expect(new Set(replies.map((r) => r.text)).size, `${j.deployment}: a reply posted twice`).toBe(replies.length);
    const o = outcomeOf(idx(j));
    const text = JSON.stringify(replies.map((r) => r.blocks));
    if (o === 'failed' || o === 'rejected' || o === 'retried') expect(replies.filter((r) => r.replyBroadcast && (r.blocks as any[])?.[0]?.block_id === 'failure'), j.deployment).toHaveLength(1);
    if (o === 'rejected') expect(text).toContain(`Rejected by <@${APPROVER}>`);
    if (o === 'cancelled') expect(text).toContain('cancelled');
    if (o === 'retried') expect(text).toContain(`Retried by <@${REQUESTER}> — attempt 2`);
    if (o === 'succeeded' || o === 'retried') expect(text).toContain(`Approved by <@${APPROVER}>`);
  }
  // the store agrees: `/re status` of one of each kind
  for (const i of [0, 1, 4, 7, 9]) {
    const st = (await harness.command(REQUESTER, `status load-${i}`)).json.text as string;
    expect(st).toContain(`*${expected[outcomeOf(i)]}*`);
  }
}, 180_000); // no time is asserted: speed lives in bench/ (bench/slack-budget.ts)
