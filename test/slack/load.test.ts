import { afterEach, expect, it } from 'vitest';
import { FakeEngine, sampleSpec } from '../support/fake-engine.ts';
import { startHarness, CHANNEL, until, type Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('50 concurrent jobs in one channel with 20% injected 429s: every checklist ends correct, nothing posted twice, posts paced', async () => {
  const engine = new FakeEngine({ approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 });
  const pacingMs = 2;
  h = await startHarness({ engine, pacingMs, retryAfterUnitMs: 5 });
  h.emu.injectFault({ method: '*', kind: 429, fraction: 0.2, retryAfterSec: 1 });
  h.emu.injectFault({ method: 'chat.update', kind: 500, count: 5 });
  h.emu.injectFault({ method: 'chat.postMessage', kind: 503, count: 3 });
  const jobs = await Promise.all(
    Array.from({ length: 50 }, (_, i) => engine.submit({ spec: sampleSpec(`dep-${i}`), requestedBy: { id: 'U0REQUESTR' }, origin: { kind: 'slack', channel: CHANNEL } })),
  );
  await Promise.all(jobs.map((j) => engine.settled(j.id)));
  for (const j of jobs) {
    const a = (await engine.job(j.id))!.approvals[0];
    expect((await engine.decide(a.id, { by: { id: 'U0APPROVER2' }, decision: 'approve', hash: a.hash })).ok).toBe(true);
  }
  await until(async () => (await Promise.all(jobs.map((j) => engine.job(j.id)))).every((v) => v!.state === 'succeeded'), 10_000, 'all jobs succeeded');
  await h.rt.outbox.idle(60_000);

  expect(h.emu.calls.filter((c) => c.status === 429).length).toBeGreaterThan(20);
  expect(h.emu.parents(CHANNEL)).toHaveLength(50);
  for (const j of jobs) {
    const ts = h.parentTs(j.id)!;
    const blocks = JSON.stringify(h.emu.messages.get(`${CHANNEL}/${ts}`)!.blocks);
    expect(blocks).toContain(`\`${j.deployment}\``);
    expect(blocks).toContain('— succeeded');
    expect((blocks.match(/✅/g) ?? []).length).toBe(6);
    expect((blocks.match(/⏭️/g) ?? []).length).toBe(2);
    // one result per step that ran (6) + approval + success, each exactly once; within the steps + 4 budget
    const replies = h.emu.replies(CHANNEL, ts);
    expect(replies).toHaveLength(8);
    expect(new Set(replies.map((r) => r.text)).size).toBe(8);
    expect(JSON.stringify(replies.find((r) => String(r.text).includes('to approve helm upgrade'))!.blocks)).toContain('Approved by <@U0APPROVER2>');
  }
  // pacing: consecutive chat.postMessage attempts in the channel never closer than the pacing interval (1 ms timer slack)
  const posts = h.emu.callsTo('chat.postMessage').map((c) => c.at);
  const gaps = posts.slice(1).map((t, i) => t - posts[i]);
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(pacingMs - 1);
  // coalescing: far fewer chat.update calls than job events (≈ 25 per job)
  expect(h.emu.callsTo('chat.update').filter((c) => c.status === 200).length).toBeLessThan(50 * 12);
}, 90_000);
