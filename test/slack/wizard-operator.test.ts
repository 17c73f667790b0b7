/**
 * Issue 13: a failed user-group lookup must not let a non-operator get secrets sealed. The wizard fails closed
 * before anything is sealed and says the lookup failed (not "not an operator", which would be false for a
 * real operator hit by a 429).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, until, wizardPages, REQUESTER, type Harness } from './harness.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
const OUTSIDER = 'U0OUTSIDER';
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const sealedRows = (x: Harness) => (x.store.sqlite.prepare('SELECT COUNT(*) AS n FROM sealed_secrets').get() as { n: number }).n;

describe('setup wizard: operator check fails closed', () => {
  it('a rate-limited user-group lookup at /re setup refuses with "could not check", opens no wizard, seals nothing', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
    h.emu.injectFault({ method: 'usergroups.users.list', kind: 429, count: 1, retryAfterSec: 1 });
    await h.command(OUTSIDER, 'setup sales-prod');
    const told = await until(() => h!.emu.ephemerals.find((e) => e.user === OUTSIDER), 3000, 'refusal');
    expect(told.text).toMatch(/could not check that you may start setups/);
    expect(told.text).toMatch(/user group S0APPROVERS/);
    expect(told.text).not.toMatch(/not allowed/);
    expect(h.emu.callsTo('views.open')).toHaveLength(0);
    expect(sealedRows(h)).toBe(0);

    // once Slack answers again, the same command opens the wizard for an operator
    await h.command(REQUESTER, 'setup sales-prod');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal for an operator');
  });

  it('a lookup still running when the wizard opened and then failing: the first page is refused before its secrets are sealed', async () => {
    const engine = new FakeEngine(policy);
    // budget 0: the wizard opens before the lookup answers (a cold cache under load)
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    h.emu.injectFault({ method: 'usergroups.users.list', kind: 429, count: 1, retryAfterSec: 1 });
    await h.command(OUTSIDER, 'setup');
    await until(() => h!.emu.topView(OUTSIDER), 3000, 'the wizard modal');
    const ack = await h.page(OUTSIDER, wizardPages()[0]);
    expect(ack.response_action).toBe('update');
    const notice = JSON.stringify(ack.view);
    expect(notice).toMatch(/could not check that you may start setups/);
    expect(notice).not.toMatch(/not allowed/);
    expect(h.vault.values.size).toBe(0);
    expect(sealedRows(h)).toBe(0);
    expect(engine.submitted).toHaveLength(0);
  });

  it('a non-operator whose lookup answers late is refused on the first page, nothing sealed', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    await h.command(OUTSIDER, 'setup');
    await until(() => h!.emu.topView(OUTSIDER), 3000, 'the wizard modal');
    const ack = await h.page(OUTSIDER, wizardPages()[0]);
    expect(JSON.stringify(ack.view)).toMatch(/not allowed to start setups/);
    expect(sealedRows(h)).toBe(0);
  });

  it('an operator’s yes is kept with the session: after a restart the pages do not ask Slack again, the final submit does', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 2));
    expect(h.emu.callsTo('usergroups.users.list')).toHaveLength(1);
    h = await h.restart(); // a cold user-group cache and no check in memory
    for (const p of pages.slice(2, -1)) await h.page(REQUESTER, p);
    expect(h.emu.callsTo('usergroups.users.list')).toHaveLength(1);
    await h.page(REQUESTER, pages.at(-1)!);
    await until(() => engine.submitted.length === 1, 3000, 'the job');
    expect(h.emu.callsTo('usergroups.users.list')).toHaveLength(2);
  });
});
