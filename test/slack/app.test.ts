import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, viewSubmission, GOOD_WIZARD, CHANNEL, until, type Harness } from './harness.ts';
import { slackSignature, signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';
import { parentKey } from '../../src/slack/progress.ts';

const policy = { approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const REQUESTER = 'U0REQUESTR';
const APPROVER = 'U0APPROVER2';

async function runWizard(harness: Harness, overrides: Record<string, string> = {}) {
  const r = await harness.command(REQUESTER, 'setup sales-prod');
  expect(r.status).toBe(200);
  await until(() => harness.emu.topView(REQUESTER), 3000, 'modal');
  return harness.interact(viewSubmission(harness.emu, REQUESTER, { ...GOOD_WIZARD, ...overrides }));
}

function parentText(harness: Harness, jobId: string): string {
  const ts = harness.rt.outbox.tsOf(parentKey(jobId))!;
  const m = harness.emu.messages.get(`${CHANNEL}/${ts}`)!;
  return JSON.stringify(m.blocks);
}

describe('signing', () => {
  it('matches Slack’s published worked example', () => {
    const v = JSON.parse(readFileSync(new URL('../../../shared/data/slack/fixtures/signature_test_vector.json', import.meta.url), 'utf8'));
    expect(slackSignature(v.signing_secret, v.x_slack_request_timestamp, v.body)).toBe(v.x_slack_signature);
  });

  it('rejects a forged signature and a stale timestamp with 401 before any handler runs', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const body = slashCommandBody({ command: '/re', text: 'help', user_id: REQUESTER, channel_id: CHANNEL, team_id: 'T0123ABCD', trigger_id: h.emu.issueTrigger(REQUESTER) });
    const forged = signRequest('wrong-secret-xyz', body);
    expect((await h.raw(forged.body, forged.headers)).status).toBe(401);
    const stale = signRequest('test-signing-secret-123', body, Math.floor(Date.now() / 1000) - 301);
    expect((await h.raw(stale.body, stale.headers)).status).toBe(401);
    const good = signRequest('test-signing-secret-123', body);
    const ok = await h.raw(good.body, good.headers);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).text).toContain('/re setup');
  });
});

describe('commands', () => {
  it('/re help and a garbled command answer with help and the closest command', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const help = await h.command(REQUESTER, 'help');
    expect(JSON.parse(help.body).text).toContain('/re status <deployment>');
    const typo = await h.command(REQUESTER, 'stauts sales-prod');
    expect(JSON.parse(typo.body).text).toMatch(/Did you mean `\/re status`/);
  });

  it('/re setup opens the wizard within the trigger window; an invalid submission gets inline errors', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.command(REQUESTER, 'setup sales-prod');
    const open = await until(() => h!.emu.callsTo('views.open')[0], 3000, 'views.open');
    expect(open.response.ok).toBe(true);
    const r = await h.interact(viewSubmission(h.emu, REQUESTER, { ...GOOD_WIZARD, namespace: 'Not_A_DNS_Name', agent_image: 'repo/agent:latest' }));
    const body = JSON.parse(r.body);
    expect(body.response_action).toBe('errors');
    expect(Object.keys(body.errors).sort()).toEqual(['agent_image', 'namespace']);
    expect(body.errors.agent_image).toMatch(/latest/);
  });

  it('an expired trigger cannot open a modal (the emulator enforces 3 s, single use)', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const t = h.emu.issueTrigger(REQUESTER);
    const view = { type: 'modal', title: { type: 'plain_text', text: 'x' }, blocks: [] };
    const first = await h.rt.client.views.open({ trigger_id: t, view: view as any });
    expect(first.ok).toBe(true);
    await expect(h.rt.client.views.open({ trigger_id: t, view: view as any })).rejects.toThrow(/exchanged_trigger_id/);
  });
});

describe('job lifecycle in Slack', () => {
  it('wizard → job → approval by a second user → success → /re status; secrets never leave the vault', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, deployments: () => ['sales-prod'] });
    const sub = await runWizard(h);
    expect(sub.status).toBe(200);
    expect(sub.body).toBe('');
    const job = await until(() => engine.latestJobFor('sales-prod'), 3000, 'job');
    expect(job.requestedBy).toBe(REQUESTER);
    await engine.settled(job.id);
    await h.rt.outbox.idle();
    const approval = engine.job(job.id)!.approvals[0];
    // requester cannot approve their own request; a non-approver is refused with an ephemeral
    await h.click(REQUESTER, 're_approve', `${approval.id}|${approval.hash}`);
    await h.click('U0RANDOM01', 're_approve', `${approval.id}|${approval.hash}`);
    await until(() => h!.emu.ephemerals.length >= 2, 3000, 'refusals');
    expect(h.emu.ephemerals.map((e) => e.user).sort()).toEqual(['U0RANDOM01', REQUESTER].sort());
    expect(h.emu.ephemerals.find((e) => e.user === REQUESTER)!.text).toMatch(/own request/);
    expect(engine.audit.map((a) => a.result).sort()).toEqual(['not_approver', 'self_approval']);
    expect(engine.job(job.id)!.state).toBe('waiting_approval');

    await h.click(APPROVER, 're_approve', `${approval.id}|${approval.hash}`);
    await until(() => engine.job(job.id)!.state === 'succeeded', 5000, 'success');
    await h.rt.outbox.idle();

    // one parent message, final checklist all green, approval buttons replaced by who decided
    const parents = h.emu.parents(CHANNEL);
    expect(parents).toHaveLength(1);
    expect(parentText(h, job.id)).toContain('succeeded');
    expect((parentText(h, job.id).match(/✅/g) ?? []).length).toBe(8);
    const replies = h.emu.replies(CHANNEL, parents[0].ts);
    const approvalMsg = replies.find((m) => String(JSON.stringify(m.blocks)).includes('approval_head'))!;
    expect(JSON.stringify(approvalMsg.blocks)).not.toContain('re_approve');
    expect(JSON.stringify(approvalMsg.blocks)).toContain(`Approved by <@${APPROVER}>`);
    expect(replies.some((m) => m.text?.includes('succeeded'))).toBe(true);

    const status = await h.command('U0SOMEONE1', 'status sales-prod');
    const st = JSON.parse(status.body).text;
    expect(st).toContain(job.id);
    expect(st).toContain('succeeded');
    expect(st).toContain(`approved by <@${APPROVER}>`);
    const unknown = await h.command('U0SOMEONE1', 'status sales-prd');
    expect(JSON.parse(unknown.body).text).toMatch(/Unknown deployment .*Closest known: `sales-prod`/);

    // secrets: sealed, referenced by id, never in a Slack payload, the DB file, or logs
    expect((h.db.prepare('SELECT COUNT(*) AS n FROM slack_outbox').get() as { n: number }).n).toBeGreaterThan(10);
    const secrets = [GOOD_WIZARD.api_token, GOOD_WIZARD.agent_token];
    expect([...h.vault.values.values()].sort()).toEqual([...secrets].sort());
    const sealed = h.db.prepare('SELECT id, ciphertext FROM sealed_secrets').all() as Array<{ id: string; ciphertext: string }>;
    expect(sealed.map((r) => r.id).sort()).toEqual([...h.vault.values.keys()].sort());
    expect(sealed.every((r) => r.ciphertext.length > 0)).toBe(true);
    const payloads = h.emu.allPayloadText();
    const logs = h.logs.join('\n');
    const dbBytes = [h.dbPath, `${h.dbPath}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'latin1')).join('');
    expect(dbBytes).toContain('job:'); // the outbox rows really are in these files
    for (const s of secrets) {
      expect(payloads).not.toContain(s);
      expect(logs).not.toContain(s);
      expect(dbBytes).not.toContain(s);
    }
  });

  it('a failure posts a broadcast reply with @mention, Retry and Cancel; Retry then succeeds', async () => {
    const engine = new FakeEngine({ ...policy, approvers: [] });
    engine.failOnce.add('agents');
    h = await startHarness({ engine });
    await runWizard(h);
    const job = await until(() => engine.latestJobFor('sales-prod'), 3000, 'job');
    await engine.settled(job.id);
    const a = engine.job(job.id)!.approvals[0];
    await h.click(APPROVER, 're_approve', `${a.id}|${a.hash}`);
    await until(() => engine.job(job.id)!.state === 'failed', 3000, 'failure');
    await h.rt.outbox.idle();
    const parent = h.emu.parents(CHANNEL)[0];
    const failure = h.emu.replies(CHANNEL, parent.ts).find((m) => m.replyBroadcast)!;
    expect(failure).toBeDefined();
    const fb = JSON.stringify(failure.blocks);
    expect(fb).toContain(`<@${REQUESTER}>`);
    expect(fb).toContain('Agents ready');
    expect(fb).toContain('context deadline exceeded');
    expect(fb).toContain('re_retry');
    expect(fb).toContain('re_cancel');
    await h.click(REQUESTER, 're_retry', job.id);
    await until(() => engine.job(job.id)!.state === 'succeeded', 3000, 'retry success');
    await h.rt.outbox.idle();
    expect(h.emu.parents(CHANNEL)).toHaveLength(1);
    expect(parentText(h, job.id)).toContain('attempt 2');
    expect((parentText(h, job.id).match(/✅/g) ?? []).length).toBe(8);
  });

  it('a restart mid-job continues the same thread and updates the same parent message', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    await runWizard(h);
    const job = await until(() => engine.latestJobFor('sales-prod'), 3000, 'job');
    await engine.settled(job.id);
    await h.rt.outbox.idle();
    const parentTs = h.rt.outbox.tsOf(parentKey(job.id));
    const emu = h.emu;
    const dbPath = h.dbPath;
    const a = engine.job(job.id)!.approvals[0];
    await h.rt.stop();
    h.db.close();
    // new app instance, same DB, same engine (the real engine would reload the job from the store)
    h = await startHarness({ engine, emu, dbPath });
    const click = await h.click(APPROVER, 're_approve', `${a.id}|${a.hash}`);
    expect(click.status).toBe(200);
    await until(() => engine.audit.length > 0, 3000, 'decision');
    expect(engine.audit).toEqual([{ user: APPROVER, approvalId: a.id, result: 'approve' }]);
    await until(() => engine.job(job.id)!.state === 'succeeded', 3000, 'success');
    await h.rt.outbox.idle();
    expect(h.rt.outbox.tsOf(parentKey(job.id))).toBe(parentTs);
    expect(emu.parents(CHANNEL)).toHaveLength(1);
    expect(emu.messages.get(`${CHANNEL}/${parentTs}`)!.blocks!.length).toBeGreaterThan(0);
    expect(JSON.stringify(emu.messages.get(`${CHANNEL}/${parentTs}`)!.blocks)).toContain('succeeded');
    expect(emu.replies(CHANNEL, parentTs!).some((m) => m.text?.includes('succeeded'))).toBe(true);
    await emu.close();
  });
});
