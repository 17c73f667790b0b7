import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerSecret } from '../../src/redact.ts';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, CHANNEL, REQUESTER, APPROVER, until, type Harness } from './harness.ts';
import { slackSignature, signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';
import type { JobEngine } from '../../src/jobs/types.ts';

const policy = { approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const blocksOf = (harness: Harness, ts: string) => JSON.stringify(harness.emu.messages.get(`${CHANNEL}/${ts}`)?.blocks);
const threadOf = (harness: Harness, jobId: string) => harness.emu.replies(CHANNEL, harness.parentTs(jobId)!);
const approvalTs = (harness: Harness, jobId: string) => threadOf(harness, jobId).find((m) => JSON.stringify(m.blocks).includes('approval_head'))!.ts;

/** wizard → job waiting for approval; returns the job id */
async function jobWaitingForApproval(harness: Harness, engine: JobEngine): Promise<string> {
  const last = await harness.wizard(REQUESTER, wizardPages());
  expect(last).toEqual({});
  const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
  await engine.settled(job.id);
  await harness.rt.outbox.idle();
  return job.id;
}

describe('signing', () => {
  it('matches Slack’s published worked example', () => {
    const v = JSON.parse(readFileSync(new URL('../fixtures/slack/signature_test_vector.json', import.meta.url), 'utf8'));
    expect(slackSignature(v.signing_secret, v.x_slack_request_timestamp, v.body)).toBe(v.x_slack_signature);
  });

  it('rejects a forged signature and a stale timestamp with 401 before any handler runs', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const body = slashCommandBody({ command: '/re', text: 'setup sales-prod', user_id: REQUESTER, channel_id: CHANNEL, team_id: 'T0123ABCD', trigger_id: h.emu.issueTrigger(REQUESTER) });
    const forged = signRequest('wrong-secret-xyz', body);
    expect((await h.raw(forged.body, forged.headers)).status).toBe(401);
    const stale = signRequest('test-signing-secret-123', body, Math.floor(Date.now() / 1000) - 301);
    expect((await h.raw(stale.body, stale.headers)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 50));
    expect(h.emu.callsTo('views.open')).toHaveLength(0); // no handler ran
    const good = signRequest('test-signing-secret-123', slashCommandBody({ command: '/re', text: 'help', user_id: REQUESTER, channel_id: CHANNEL, team_id: 'T0123ABCD' }));
    const ok = await h.raw(good.body, good.headers);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).text).toContain('/re setup');
  });
});

describe('errors escaping a listener', () => {
  it('are logged through the redacting logger, not printed raw by Bolt', async () => {
    const leaked = 'listener-leaked-secret-7Qz';
    registerSecret(leaked);
    const consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m).mockImplementation(() => undefined));
    try {
      h = await startHarness({ engine: new FakeEngine(policy) });
      h.rt.app.use(async () => {
        throw new Error(`could not reach https://user:${leaked}@git.example.com (token ${leaked})`);
      });
      await h.command(REQUESTER, 'help');
      const line = await until(() => h!.logs.find((l) => l.includes('a Slack listener failed')), 3000, 'the error log line');
      expect(line).toContain('could not reach');
      expect(line).not.toContain(leaked);
      expect(h.logs.join('')).not.toContain(leaked);
      const printed = consoleSpies.flatMap((s) => s.mock.calls).map((c) => c.map((x) => (x instanceof Error ? x.message : String(x))).join(' ')).join('\n');
      expect(printed).not.toContain(leaked);
    } finally {
      for (const s of consoleSpies) s.mockRestore();
    }
  });
});

describe('commands', () => {
  it('/re help, an empty /re and a garbled command answer with help and the closest command', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    expect((await h.command(REQUESTER, 'help')).json.text).toContain('/re status <deployment>');
    expect((await h.command(REQUESTER, '')).json.text).toContain('/re history <deployment>');
    const typo = await h.command(REQUESTER, 'stauts sales-prod');
    expect(typo.json.text).toMatch(/Did you mean `\/re status`/);
    expect(typo.json.text).toContain('/re setup [deployment]');
    expect((await h.command(REQUESTER, 'RETRY')).json).toBeUndefined(); // acked, usage comes as an ephemeral
    await until(() => h!.emu.ephemerals.some((e) => e.text?.includes('Usage: `/re retry <deployment or job>`')), 3000, 'usage');
  });

  it('a non-operator cannot open the wizard; operators resolve through user groups', async () => {
    h = await startHarness({ engine: new FakeEngine(policy), env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
    await h.command('U0OUTSIDER', 'setup sales-prod');
    await until(() => h!.emu.ephemerals.find((e) => e.user === 'U0OUTSIDER'), 3000, 'refusal');
    expect(h.emu.callsTo('views.open')).toHaveLength(0);
    await h.command(REQUESTER, 'setup sales-prod');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal for an operator');
  });

  it('/re status of an unknown deployment names the closest known ones; /re history lists jobs', async () => {
    h = await startHarness({ engine: new FakeEngine(policy), deployments: () => ['sales-prod', 'sales-dev', 'billing'], history: () => [{ id: 'job-9', state: 'succeeded', createdAt: '2026-01-01T00:00:00Z', requestedBy: REQUESTER }] });
    expect((await h.command(REQUESTER, 'status sales-prd')).json.text).toMatch(/Unknown deployment `sales-prd`\. Closest known: `sales-prod`, `sales-dev`/);
    expect((await h.command(REQUESTER, 'history sales-prod')).json.text).toContain('`job-9` succeeded');
  });

  it('/re status answers from the stored report: steps, requester, approvers, chart, client image, hash, Helm revision, lock', async () => {
    const report = {
      deployment: 'sales-prod',
      job: { id: 'job_42', state: 'waiting_approval' as const, attempt: 2, requestedBy: REQUESTER, createdAt: '2026-01-01T00:00:00Z' },
      steps: [{ stepId: 'prerequisites', number: 1, title: 'Prerequisites', state: 'succeeded' as const, durationMs: 1500 }, { stepId: 'agents', number: 2, title: 'Agents', state: 'waiting_approval' as const }],
      approvals: [{ title: 'helm upgrade', state: 'approved', hash: 'abc', approvedBy: [APPROVER] }],
      chart: 'https://helm.astronomer.io/astro-remote-execution-agent 2.3.3',
      valuesHash: 'a'.repeat(64),
      clientImage: 'registry.example.com/team/client:deploy-1',
      helmRevision: 7,
      lock: { jobId: 'job_42', requestedBy: REQUESTER, since: '2026-01-01T00:00:05Z', state: 'waiting_approval' as const },
    };
    h = await startHarness({ engine: new FakeEngine(policy), status: (name) => (name === 'sales-prod' ? report : undefined), deployments: () => ['sales-prod'] });
    const st = (await h.command(REQUESTER, 'status sales-prod')).json;
    for (const s of ['job_42', 'waiting approval', 'attempt 2', `<@${REQUESTER}>`, `approved by <@${APPROVER}>`, '2. Agents — waiting approval', '(1.5 s)', 'astro-remote-execution-agent 2.3.3', 'registry.example.com/team/client:deploy-1', 'a'.repeat(64), 'Helm revision: 7', 'held by job `job_42`']) expect(st.text).toContain(s);
    expect(st.blocks.length).toBeGreaterThan(0);
  });
});

describe('job lifecycle in Slack', () => {
  it('wizard → job → refusals → approval by a second user → success → /re status', async () => {
    const engine = new FakeEngine(policy);
    const audit: string[] = [];
    h = await startHarness({ engine, deployments: () => ['sales-prod'], audit: (e) => audit.push(`${e.actor}:${e.action}:${e.result}`) });
    const jobId = await jobWaitingForApproval(h, engine);
    expect(engine.submitted[0].secretsBackend).toMatchObject({ provider: 'aws-secrets-manager', region: 'us-east-1' });
    const ts = approvalTs(h, jobId);
    expect(blocksOf(h, ts)).toContain('0 of 1 approvals');

    // the requester cannot approve their own request; a non-approver is refused; both get an ephemeral
    await h.press(REQUESTER, ts, 're_approve');
    await h.press('U0RANDOM01', ts, 're_approve');
    await until(() => h!.emu.ephemerals.length >= 2, 3000, 'refusals');
    expect(h.emu.ephemerals.find((e) => e.user === REQUESTER)!.text).toMatch(/own request/);
    expect(h.emu.ephemerals.find((e) => e.user === 'U0RANDOM01')!.text).toMatch(/not an approver/);
    expect(engine.audit.map((a) => a.result).sort()).toEqual(['not_approver', 'self_approval']);
    // clicking again: acked, but answered (and audited) once per user and request, not once per click
    for (let i = 0; i < 3; i++) expect((await h.press('U0RANDOM01', ts, 're_approve')).status).toBe(200);
    await h.rt.outbox.idle();
    expect(h.emu.ephemerals.filter((e) => e.user === 'U0RANDOM01')).toHaveLength(1);
    expect(engine.audit).toHaveLength(2);
    expect((await engine.job(jobId))!.state).toBe('waiting_approval');
    // retry/cancel by someone who is neither requester nor operator: refused and audited
    await h.command('U0RANDOM01', `cancel ${jobId}`);
    await until(() => audit.length > 0, 3000, 'audit');
    expect(audit).toEqual([`U0RANDOM01:job.cancel.refused:not_allowed`]);

    await h.press(APPROVER, ts, 're_approve');
    await until(async () => (await engine.job(jobId))!.state === 'succeeded', 5000, 'success');
    await h.rt.outbox.idle();

    const parents = h.emu.parents(CHANNEL);
    expect(parents).toHaveLength(1);
    const parent = blocksOf(h, parents[0].ts);
    expect(parent).toContain('— succeeded');
    expect(parent).toContain(`<@${REQUESTER}>`);
    for (const t of ['Prerequisites', 'Agents (namespace, Secrets, Helm release)', 'Secrets backend', 'XCom backend', 'DAG sources', 'Verify']) expect(parent).toContain(t);
    expect((parent.match(/✅/g) ?? []).length + (parent.match(/⏭️/g) ?? []).length).toBe(8);
    const approval = blocksOf(h, ts);
    expect(approval).not.toContain('re_approve');
    expect(approval).toMatch(new RegExp(`Approved by <@${APPROVER}> <!date\\^\\d+`));
    const thread = threadOf(h, jobId);
    expect(thread.some((m) => m.text?.includes('succeeded'))).toBe(true);
    // post budget: parent + one result per step + approval + final ≤ steps + 4
    expect(thread.length + 1).toBeLessThanOrEqual(12);

    const st = (await h.command('U0SOMEONE1', 'status sales-prod')).json;
    expect(st.text).toContain(jobId);
    expect(st.text).toContain('succeeded');
    expect(st.text).toContain(`approved by <@${APPROVER}>`);
    expect(st.text).toMatch(/Values hash: `[0-9a-f]{64}`/);
    expect(st.text).toContain('Helm revision: 1');
    expect(st.text).toContain('Lock: free');
  });

  it('a rate-limited user-group lookup does not turn a real approver into a refused non-approver', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const jobId = await jobWaitingForApproval(h, engine);
    const ts = approvalTs(h, jobId);
    h.emu.injectFault({ method: 'usergroups.users.list', kind: 429, count: 1, retryAfterSec: 1 });
    await h.press(APPROVER, ts, 're_approve');
    const told = await until(() => h!.emu.ephemerals.find((e) => e.user === APPROVER), 3000, 'ephemeral');
    expect(told.text).toMatch(/could not be recorded.*user group S0APPROVERS/);
    expect(engine.audit).toEqual([]); // no false "not an approver" refusal in the audit
    expect((await engine.job(jobId))!.state).toBe('waiting_approval');
    await h.press(APPROVER, ts, 're_approve');
    await until(async () => (await engine.job(jobId))!.state === 'succeeded', 5000, 'success');
  });

  it('a failure posts a broadcast reply with @mention, step, reason, log tail, Retry and Cancel; Retry then succeeds', async () => {
    const engine = new FakeEngine({ ...policy, approvers: [] });
    engine.failOnce.add('verify');
    h = await startHarness({ engine });
    const jobId = await jobWaitingForApproval(h, engine);
    await h.press(APPROVER, approvalTs(h, jobId), 're_approve');
    await until(async () => (await engine.job(jobId))!.state === 'failed', 3000, 'failure');
    await h.rt.outbox.idle();
    const failure = threadOf(h, jobId).find((m) => m.replyBroadcast && (m.blocks as any[])?.[0]?.block_id === 'failure')!;
    const fb = JSON.stringify(failure.blocks);
    for (const s of [`<@${REQUESTER}>`, '8. Verify', 'timed out waiting for the condition', 'context deadline exceeded', 're_retry', 're_cancel']) expect(fb).toContain(s);
    expect(blocksOf(h, h.parentTs(jobId)!)).toContain('— failed');

    // only the requester or an operator may retry: a random user is refused
    await h.press('U0RANDOM01', failure.ts, 're_retry');
    await until(() => h!.emu.ephemerals.some((e) => e.user === 'U0RANDOM01'), 3000, 'refusal');
    expect((await engine.job(jobId))!.state).toBe('failed');

    await h.press(REQUESTER, failure.ts, 're_retry');
    await until(async () => (await engine.job(jobId))!.state === 'succeeded', 3000, 'retry success');
    await h.rt.outbox.idle();
    expect(h.emu.parents(CHANNEL)).toHaveLength(1);
    const parent = blocksOf(h, h.parentTs(jobId)!);
    expect(parent).toContain('attempt 2');
    expect(parent).toContain('— succeeded');
    const settled = blocksOf(h, failure.ts);
    expect(settled).not.toContain('re_retry');
    expect(settled).toContain(`Retried by <@${REQUESTER}> — attempt 2`);
  });

  it('a rejection fails the job with a failure reply, and the buttons show who rejected', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const jobId = await jobWaitingForApproval(h, engine);
    const ts = approvalTs(h, jobId);
    await h.reject(APPROVER, ts, 'the namespace should be astro-agents');
    await until(async () => (await engine.job(jobId))!.state === 'failed', 3000, 'rejected');
    await h.rt.outbox.idle();
    expect(blocksOf(h, ts)).toContain(`Rejected by <@${APPROVER}>`);
    const failure = threadOf(h, jobId).find((m) => m.replyBroadcast && (m.blocks as any[])?.[0]?.block_id === 'failure')!;
    expect(JSON.stringify(failure.blocks)).toContain(`rejected by <@${APPROVER}>`);
    // Cancel on an already failed job closes the reply (the engine keeps the job failed)
    await h.press(REQUESTER, failure.ts, 're_cancel');
    await until(() => !blocksOf(h!, failure.ts).includes('re_retry'), 3000, 'closed failure');
    expect(blocksOf(h, failure.ts)).toContain(`Closed by <@${REQUESTER}>`);
  });

  it('a second setup of a locked deployment is refused with the lock holder', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const jobId = await jobWaitingForApproval(h, engine);
    await h.wizard(REQUESTER, wizardPages());
    const msg = await until(() => h!.emu.ephemerals.find((e) => e.text?.includes('is locked')), 3000, 'lock refusal');
    expect(msg.text).toContain(jobId);
    // its freshly sealed secrets are erased: nothing will ever use them
    expect(h.vault.erased.size).toBe(4);
  });

  it('a restart mid-job continues the same thread and updates the same parent message', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const jobId = await jobWaitingForApproval(h, engine);
    const parentTs = h.parentTs(jobId);
    const ts = approvalTs(h, jobId);
    h = await h.restart();
    expect((await h.press(APPROVER, ts, 're_approve')).status).toBe(200);
    await until(async () => (await engine.job(jobId))!.state === 'succeeded', 3000, 'success');
    await h.rt.outbox.idle();
    expect(h.parentTs(jobId)).toBe(parentTs);
    expect(h.emu.parents(CHANNEL)).toHaveLength(1);
    expect(blocksOf(h, parentTs!)).toContain('— succeeded');
    expect(blocksOf(h, ts)).toContain(`Approved by <@${APPROVER}>`);
    expect(h.emu.replies(CHANNEL, parentTs!).some((m) => m.text?.includes('succeeded'))).toBe(true);
  });
});
