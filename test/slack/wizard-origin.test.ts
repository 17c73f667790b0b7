/**
 * Where a job started from the wizard reports, what the lock notice promises, and what the operator finds in
 * the log when a wizard fails (found by mutation testing, see TESTING.md).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, CHANNEL, REQUESTER, until, type Harness } from './harness.ts';
import { viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';
import type { SubmitInput } from '../../src/jobs/types.ts';
import { GroupResolver } from '../../src/slack/policy.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

/** pino's JSON lines, parsed */
const logEntries = (harness: Harness) => harness.logs.flatMap((l) => l.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const logged = (harness: Harness, msg: string) => logEntries(harness).find((e) => e.msg === msg);

describe('wizard: the job’s origin', () => {
  it('a setup started in a channel keeps its progress thread in that channel, with the workspace id for links back', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    await h.wizard(REQUESTER, wizardPages());
    const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
    expect(job.origin).toEqual({ kind: 'slack', channel: CHANNEL, teamId: h.emu.teamId });
    // no DM was opened: the bot can post in the channel the command came from
    expect(h.emu.callsTo('conversations.open')).toHaveLength(0);
  });

  it('a final submission without a team (an org-wide install sends `team: null`) still starts the job, without a team id', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, -1));
    const r = await h.interact({ ...viewSubmission(h.emu, REQUESTER, pages.at(-1)!), team: null });
    expect(r.status).toBe(200);
    const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
    expect(job.origin).toEqual({ kind: 'slack', channel: CHANNEL });
  });
});

describe('wizard: the lock notice', () => {
  it('says after how many hours a job waiting for approval expires (RE_BOT_APPROVAL_TTL_HOURS)', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_APPROVAL_TTL_HOURS: '6' } });
    await h.wizard(REQUESTER, wizardPages());
    await until(async () => (await engine.latestJobFor('sales-prod'))?.state === 'waiting_approval', 5000, 'first job waiting');
    await h.wizard('U0SECOND1', wizardPages());
    const told = await until(() => h!.emu.ephemerals.find((e) => e.user === 'U0SECOND1' && /locked/.test(e.text ?? '')), 3000, 'lock notice');
    expect(told.text).toContain('a job waiting for approval also expires after 6 h (RE_BOT_APPROVAL_TTL_HOURS).');
  });
});

class FailingEngine extends FakeEngine {
  override async submit(_input: SubmitInput): Promise<never> {
    throw new Error('database is locked (SQLITE_BUSY)');
  }
}

describe('wizard: failures the operator finds in the log, with their cause', () => {
  it('Slack refusing to open the modal', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    h.emu.injectFault({ method: 'views.open', kind: 500, count: 1 });
    await h.command(REQUESTER, 'setup');
    const e = await until(() => logged(h!, 'views.open failed'), 3000, 'log line');
    expect(String(e.err)).toMatch(/\S/);
    expect(e.level).toBe(50);
  });

  it('the engine refusing the job', async () => {
    h = await startHarness({ engine: new FailingEngine(policy) });
    await h.wizard(REQUESTER, wizardPages());
    const e = await until(() => logged(h!, 'job submission failed'), 3000, 'log line');
    expect(e.err).toBe('database is locked (SQLITE_BUSY)');
  });

  it('a page that throws while being read, with the page it was', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.command(REQUESTER, 'setup');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
    h.box.sealSecret = () => {
      throw new Error('disk I/O error');
    };
    await h.page(REQUESTER, wizardPages()[0]);
    expect(logged(h, 'wizard page failed')).toMatchObject({ err: 'disk I/O error', page: expect.any(String) });
  });
});

describe('wizard: a user-group lookup that fails after the modal opened', () => {
  it('the first page submit ends the wizard with the lookup’s own reason, not "Slack did not answer"', async () => {
    // fails 100 ms after it starts: the modal opens (budget 0), the page submit then sees the failure
    vi.spyOn(GroupResolver.prototype, 'isMember').mockImplementation(() => new Promise<boolean>((_r, reject) => setTimeout(() => reject(new Error('could not read the members of user group S0APPROVERS (ratelimited)')), 100)));
    h = await startHarness({ engine: new FakeEngine(policy), env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    await h.command(REQUESTER, 'setup');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
    await new Promise((r) => setTimeout(r, 200));
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(ack.response_action).toBe('update');
    const text = JSON.stringify(ack.view);
    expect(text).toContain('could not read the members of user group S0APPROVERS (ratelimited)');
    expect(text).not.toContain('Slack did not answer in time');
    expect(h.vault.values.size).toBe(0);
  });
});
