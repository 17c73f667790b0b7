/**
 * The Slack app against the REAL job engine and store (step handlers stubbed, no Kubernetes): checks the
 * event contract (ids, approvals, failures, retries, status from the store) and shows how to wire it.
 */
import { afterEach, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createJobEngine } from '../../src/jobs/engine.ts';
import { statusReport } from '../../src/jobs/status.ts';
import { StepFailure, type StepHandler } from '../../src/checklist/types.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { deployments } from '../../src/store/schema.ts';
import { exportAudit } from '../../src/store/audit.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import type { Store } from '../../src/store/db.ts';
import { startHarness, wizardPages, APPROVER, CHANNEL, REQUESTER, until, type Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.engine.stop();
  await h?.close();
  h = undefined;
});

function stubHandlers(failOnce: Set<string>): StepHandler[] {
  return STEP_IDS.map((id) => ({
    id,
    async run(ctx) {
      ctx.progress(`working on ${id}`);
      if (id === 'agents') {
        const grant = await ctx.requireApproval({ title: 'helm upgrade --install astro-agent', hash: `h-${ctx.plan.valuesHash}`, diffText: '+ image: agent:1.2.3', changedKeys: ['image'], facts: { chart: ctx.plan.chart } });
        return { status: 'succeeded', summary: `installed (approved by ${grant.approvedBy.join(', ')})`, output: { helmRevision: 3 } };
      }
      if (failOnce.delete(id)) throw new StepFailure('pods not ready', { logTail: 'CrashLoopBackOff\nlast line' });
      return { status: 'succeeded', summary: `${id} ok` };
    },
  }));
}

async function realHarness(failOnce = new Set<string>()): Promise<Harness> {
  let store!: Store;
  const harness = await startHarness({
    engine: (env) => {
      store = env.store;
      return createJobEngine({
        store: env.store,
        handlers: stubHandlers(failOnce),
        buildContext: () => ({ infra: {} as never, resolveSecret: async () => 'unused' }),
        policy: { approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 },
        pollMs: 20,
      });
    },
    status: (name) => statusReport(store, name),
    lastSpec: (name) => store.db.select().from(deployments).where(eq(deployments.name, name)).get()?.lastSpec as SetupSpec | undefined,
    deployments: () => store.db.select({ name: deployments.name }).from(deployments).all().map((r) => r.name),
  });
  harness.engine.start();
  return harness;
}

it('real engine: wizard → approval → failure → Retry → success, status from the store, audit of refusals', async () => {
  h = await realHarness(new Set(['verify']));
  await h.wizard(REQUESTER, wizardPages());
  const job = await until(async () => (await h!.engine.latestJobFor('sales-prod')), 3000, 'job');
  await until(async () => (await h!.engine.job(job.id))!.state === 'waiting_approval', 5000, 'approval');
  await h.rt.outbox.idle();
  const parentTs = h.parentTs(job.id)!;
  const approval = h.emu.replies(CHANNEL, parentTs).find((m) => JSON.stringify(m.blocks).includes('re_approve'))!;
  await h.press(REQUESTER, approval.ts, 're_approve');
  await until(() => h!.emu.ephemerals.some((e) => e.user === REQUESTER), 3000, 'self-approval refusal');
  expect(exportAudit(h.store, { jobId: job.id }).some((a) => a.action === 'approval.refused' && a.result === 'self_approval')).toBe(true);

  await h.press(APPROVER, approval.ts, 're_approve');
  await until(async () => (await h!.engine.job(job.id))!.state === 'failed', 5000, 'failure');
  await h.rt.outbox.idle();
  const failure = h.emu.replies(CHANNEL, parentTs).find((m) => m.replyBroadcast && (m.blocks as any[])?.[0]?.block_id === 'failure')!;
  expect(JSON.stringify(failure.blocks)).toContain('CrashLoopBackOff');
  await h.press(REQUESTER, failure.ts, 're_retry');
  await until(async () => (await h!.engine.job(job.id))!.state === 'succeeded', 5000, 'success');
  await h.rt.outbox.idle();

  expect(h.emu.parents(CHANNEL)).toHaveLength(1);
  const parent = JSON.stringify(h.emu.messages.get(`${CHANNEL}/${parentTs}`)!.blocks);
  expect(parent).toContain('— succeeded');
  expect(parent).toContain('attempt 2');
  const thread = h.emu.replies(CHANNEL, parentTs);
  // parent + results + approval + failure + final: within steps + 4
  expect(thread.length + 1).toBeLessThanOrEqual(12);
  expect(JSON.stringify(h.emu.messages.get(`${CHANNEL}/${approval.ts}`)!.blocks)).toContain(`Approved by <@${APPROVER}>`);

  const st = (await h.command(REQUESTER, 'status sales-prod')).json.text;
  for (const s of [job.id, 'succeeded', `approved by <@${APPROVER}>`, 'Helm revision: 3', 'Lock: free']) expect(st).toContain(s);

  // the next /re setup of the deployment is prefilled from the spec the engine stored
  await h.wizard(REQUESTER, [], 'sales-prod');
  const blocks = h.emu.topView(REQUESTER)!.view.blocks as any[];
  expect(blocks.find((b) => b.block_id === 'deployment.id').element.initial_value).toBe('clx0abc123');
  expect(blocks.find((b) => b.block_id === 'agent.token').element.initial_value).toBeUndefined();
});
