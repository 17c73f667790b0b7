/**
 * A refused approval click is answered once per user, request and button (src/slack/job-actions.ts): which
 * refusals are remembered for good, which only for a while, and what is never silenced.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BoundedSet } from '../../src/slack/context.ts';
import { FakeEngine } from '../support/fake-engine.ts';
import { pressInMessage } from '../../src/devkit/slack-emulator/payloads.ts';
import { startHarness, wizardPages, CHANNEL, REQUESTER, until, type Harness } from './harness.ts';

const policy = { approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
const STRANGER = 'U0RANDOM01';
let h: Harness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

async function waitingApproval(harness: Harness, engine: FakeEngine): Promise<{ jobId: string; ts: string }> {
  expect(await harness.wizard(REQUESTER, wizardPages())).toEqual({});
  const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
  await engine.settled(job.id);
  await harness.rt.outbox.idle();
  const ts = harness.emu.replies(CHANNEL, harness.parentTs(job.id)!).find((m) => JSON.stringify(m.blocks).includes('approval_head'))!.ts;
  return { jobId: job.id, ts };
}

const toldTo = (harness: Harness, user: string) => harness.emu.ephemerals.filter((e) => e.user === user).map((e) => e.text);

describe('refused approval clicks', () => {
  it('a refused Approve does not silence the Reject the same user then types a reason for', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const { jobId, ts } = await waitingApproval(h, engine);
    await h.press(STRANGER, ts, 're_approve');
    await until(() => toldTo(h!, STRANGER).length === 1, 3000, 'the approval refusal');
    await h.reject(STRANGER, ts, 'looks wrong to me');
    const told = await until(() => (toldTo(h!, STRANGER).length === 2 ? toldTo(h!, STRANGER) : undefined), 3000, 'the rejection refusal');
    expect(told[1]).toMatch(/^Your rejection was not recorded: you are not an approver/);
    expect(engine.audit.map((a) => a.result)).toEqual(['not_approver', 'not_approver']);
    expect((await engine.job(jobId))!.state).toBe('waiting_approval');
  });

  it('"not an approver" is remembered for a while, not for good: once added to the approver group, the user can approve', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const { jobId, ts } = await waitingApproval(h, engine);
    await h.press(STRANGER, ts, 're_approve');
    await until(() => toldTo(h!, STRANGER).length === 1, 3000, 'the refusal');
    // a repeat right away is only acked
    expect((await h.press(STRANGER, ts, 're_approve')).status).toBe(200);
    await h.rt.outbox.idle();
    expect(engine.audit).toHaveLength(1);

    // the user joins the approver group; once the directory's cached membership and the refusal are forgotten,
    // the same click is decided again
    h.emu.usergroups.S0APPROVERS.push(STRANGER);
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 11 * 60_000);
    await h.press(STRANGER, ts, 're_approve');
    await until(async () => (await engine.job(jobId))!.state === 'succeeded', 5000, 'the approval');
    expect(engine.audit.map((a) => a.result)).toEqual(['not_approver', 'approve']);
  });

  it('a refusal is answered through the click\'s response_url (no outbox row, no Web API call); through the outbox when that post fails', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const { ts } = await waitingApproval(h, engine);
    const ephemeralCalls = () => h!.emu.calls.filter((c) => c.method === 'chat.postEphemeral').length;
    const ephemeralRows = () => (h!.store.sqlite.prepare(`SELECT COUNT(*) AS n FROM slack_outbox WHERE kind = 'ephemeral'`).get() as { n: number }).n;
    const before = [ephemeralRows(), ephemeralCalls()];
    await h.press(STRANGER, ts, 're_approve');
    const told = await until(() => (toldTo(h!, STRANGER).length === 1 ? toldTo(h!, STRANGER) : undefined), 3000, 'the refusal');
    expect(told[0]).toMatch(/^Your approval was not recorded: you are not an approver/);
    const answer = h.emu.calls.find((c) => c.method === 'response_url' && String(c.args.text).startsWith('Your approval was not recorded'));
    expect(answer?.args).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    await h.rt.outbox.idle();
    expect([ephemeralRows(), ephemeralCalls()]).toEqual(before);

    // a response_url nobody answers: the same answer arrives through chat.postEphemeral
    const other = 'U0RANDOM02';
    const payload = pressInMessage(h.emu, other, CHANNEL, ts, 're_approve');
    payload.response_url = 'http://127.0.0.1:1/gone';
    await h.interact(payload);
    const viaOutbox = await until(() => h!.emu.calls.find((c) => c.method === 'chat.postEphemeral' && c.args.user === other), 5000, 'the fallback answer');
    expect(String(viaOutbox.args.text)).toMatch(/^Your approval was not recorded: you are not an approver/);
    expect(toldTo(h, other)).toHaveLength(1);
  });

  it('final refusals are remembered for good (within the bound); "not an approver" for its lifetime', () => {
    let t = 1_000_000;
    const s = new BoundedSet(10, () => t);
    s.add('decided');
    s.add('stranger', 60_000);
    t += 59_999;
    expect([s.has('decided'), s.has('stranger')]).toEqual([true, true]);
    t += 1;
    expect([s.has('decided'), s.has('stranger'), s.size]).toEqual([true, false, 1]);
    t += 365 * 86_400_000;
    expect(s.has('decided')).toBe(true);
  });
});
