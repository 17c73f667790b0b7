/**
 * Who may start a setup: RE_BOT_OPERATORS is checked when `/re setup` opens the wizard (with or without a
 * deployment name) and again when the last page is submitted — the open-time check may be skipped when
 * the user-group lookup is slow, and a non-operator must then get no job and lose what they sealed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, REQUESTER, until, type Harness } from './harness.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
const OUTSIDER = 'U0OUTSIDER';
const NOT_OPERATOR = 'You are not allowed to start setups (RE_BOT_OPERATORS).';
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const refusals = (harness: Harness, user: string) => harness.emu.ephemerals.filter((e) => e.user === user && e.text === NOT_OPERATOR);

describe('wizard authorization (RE_BOT_OPERATORS)', () => {
  for (const text of ['setup', 'setup sales-prod']) {
    it(`a non-operator's \`/re ${text}\` opens no wizard and is told why`, async () => {
      h = await startHarness({ engine: new FakeEngine(policy), env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
      await h.command(OUTSIDER, text);
      await until(() => refusals(h!, OUTSIDER).length > 0, 3000, 'refusal');
      expect(h.emu.callsTo('views.open')).toHaveLength(0);
    });

    it(`an operator (through a user group) gets the wizard from \`/re ${text}\``, async () => {
      h = await startHarness({ engine: new FakeEngine(policy), env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
      await h.command(REQUESTER, text);
      await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
      expect(refusals(h, REQUESTER)).toHaveLength(0);
    });
  }

  it('a non-operator who got the wizard because the open-time check was skipped gets no job, and their sealed secrets are erased', async () => {
    const engine = new FakeEngine(policy);
    // a zero budget: the group lookup never answers in time, so the modal opens unchecked
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    await h.wizard(OUTSIDER, wizardPages());
    expect(h.vault.values.size).toBe(4);
    await until(() => refusals(h!, OUTSIDER).length > 0, 3000, 'refusal on submit');
    expect(engine.submitted).toHaveLength(0);
    expect(engine.latestJobFor('sales-prod')).toBeUndefined();
    await until(() => h!.vault.erased.size === 4, 3000, 'erase');
    expect([...h.vault.erased].sort()).toEqual([...h.vault.values.keys()].sort());
    for (const id of h.vault.values.keys()) expect(() => h!.box.openSecret(id)).toThrow(/erased/);
  });

  it('an operator whose open-time check was skipped still gets the job on submit', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    await h.wizard(REQUESTER, wizardPages());
    await until(() => engine.submitted.length === 1, 3000, 'submit');
    expect(h.vault.erased.size).toBe(0);
    expect(refusals(h, REQUESTER)).toHaveLength(0);
  });
});
