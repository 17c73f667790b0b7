import { afterEach, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, CHANNEL, until, type Harness } from './harness.ts';
import { parentKey } from '../../src/slack/progress.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('50 concurrent jobs in one channel with 20% injected 429s: every checklist ends correct, nothing posted twice, pacing kept', async () => {
  const engine = new FakeEngine({ approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 });
  const pacingMs = 2;
  h = await startHarness({ engine, pacingMs, retryAfterUnitMs: 5 });
  h.emu.injectFault({ method: '*', kind: 429, fraction: 0.2, retryAfterSec: 1 });
  h.emu.injectFault({ method: 'chat.update', kind: 500, count: 5 });
  const jobs = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      engine.submit({ spec: { deployment: { name: `dep-${i}` } } as unknown as SetupSpec, requestedBy: { id: 'U0REQUESTR' }, origin: { kind: 'slack', channel: CHANNEL } }),
    ),
  );
  await Promise.all(jobs.map((j) => engine.settled(j.id)));
  for (const j of jobs) {
    const a = engine.job(j.id)!.approvals[0];
    expect((await engine.decide(a.id, { by: { id: 'U0APPROVER2' }, decision: 'approve', hash: a.hash })).ok).toBe(true);
  }
  await until(() => jobs.every((j) => engine.job(j.id)!.state === 'succeeded'), 10_000, 'all jobs succeeded');
  await h.rt.outbox.idle(60_000);

  const rejected = h.emu.calls.filter((c) => c.status === 429).length;
  expect(rejected).toBeGreaterThan(20);
  expect(h.emu.parents(CHANNEL)).toHaveLength(50);
  for (const j of jobs) {
    const ts = h.rt.outbox.tsOf(parentKey(j.id))!;
    const blocks = JSON.stringify(h.emu.messages.get(`${CHANNEL}/${ts}`)!.blocks);
    expect(blocks).toContain(`\`${j.deployment}\``);
    expect(blocks).toContain('— succeeded');
    expect((blocks.match(/✅/g) ?? []).length).toBe(8);
    // 8 started + 8 finished + approval + success, each exactly once
    const replies = h.emu.replies(CHANNEL, ts);
    expect(replies).toHaveLength(18);
    expect(new Set(replies.map((r) => r.text)).size).toBe(18);
  }
  // pacing: consecutive writes to the channel never closer than the pacing interval (1 ms timer slack)
  const writes = h.emu.calls.filter((c) => c.method.startsWith('chat.')).map((c) => c.at);
  const gaps = writes.slice(1).map((t, i) => t - writes[i]);
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(pacingMs - 1);
  // coalescing: far fewer chat.update calls than job events
  expect(h.emu.callsTo('chat.update').filter((c) => c.status === 200).length).toBeLessThan(50 * 20);
}, 90_000);
