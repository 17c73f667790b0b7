/**
 * Who may start a setup: RE_BOT_OPERATORS is checked when `/re setup` opens the wizard (with or without a
 * deployment name) and again when the last page is submitted — the open-time check may be skipped when
 * the user-group lookup is slow, and a non-operator must then get no job and lose what they sealed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, REQUESTER, until, type Harness } from './harness.ts';
import { pressInView, selectInView, viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';

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
    // the first page (which carries the tokens) waits for the lookup and ends the wizard: no later page is shown
    await h.wizard(OUTSIDER, wizardPages().slice(0, 1));
    await until(() => refusals(h!, OUTSIDER).length > 0 || JSON.stringify(h!.emu.topView(OUTSIDER)?.view ?? {}).includes('not allowed'), 3000, 'refusal on submit');
    expect(engine.submitted).toHaveLength(0);
    expect((await engine.latestJobFor('sales-prod'))).toBeUndefined();
    // nothing the outsider typed stays sealed
    await until(() => h!.vault.erased.size === h!.vault.values.size, 3000, 'erase');
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

  it('another user replaying the requester’s wizard (submission, Back, provider choice) changes nothing', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 1));
    const as = (payload: any) => ({ ...payload, user: { ...payload.user, id: OUTSIDER, username: OUTSIDER, name: OUTSIDER } });
    const updates = h.emu.callsTo('views.update').length;
    const r = await h.interact(as(viewSubmission(h.emu, REQUESTER, {})));
    expect(r.json.response_action).toBe('update');
    expect(JSON.stringify(r.json.view)).toContain('expired');
    await h.interact(as(pressInView(h.emu, REQUESTER, 're_wiz_back')));
    await h.interact(as(selectInView(h.emu, REQUESTER, 'secretsBackend.provider', 'hashicorp-vault')));
    await new Promise((res) => setTimeout(res, 200));
    expect(h.emu.callsTo('views.update')).toHaveLength(updates);
    // the requester's session is intact: they finish the wizard and get the job
    for (const p of pages.slice(1)) await h.page(REQUESTER, p);
    await until(() => engine.submitted.length === 1, 3000, 'submit');
  });
});

describe('wizard: what happens to sealed secrets when no job starts', () => {
  it('a setup of a deployment another job holds is refused naming the holder; its secrets are erased, the holder’s kept', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    await h.wizard(REQUESTER, wizardPages());
    await until(async () => (await engine.latestJobFor('sales-prod'))?.state === 'waiting_approval', 5000, 'first job waiting');
    const firstSecrets = new Set(h.vault.values.keys());
    await h.wizard('U0SECOND1', wizardPages());
    const told = await until(() => h!.emu.ephemerals.find((e) => e.user === 'U0SECOND1' && /locked/.test(e.text ?? '')), 3000, 'lock notice');
    expect(told.text).toContain('`sales-prod` is locked by job `job-1`');
    expect(told.text).toContain(`<@${REQUESTER}>`);
    expect(told.text).toContain('waiting approval since');
    expect(told.text).toContain('your secrets were discarded');
    expect(engine.submitted).toHaveLength(1);
    const secondSecrets = [...h.vault.values.keys()].filter((id) => !firstSecrets.has(id));
    expect(secondSecrets).toHaveLength(4);
    await until(() => h!.vault.erased.size === 4, 3000, 'erase');
    expect([...h.vault.erased].sort()).toEqual(secondSecrets.sort());
  });

  it('when Slack refuses to open the modal the user is told to run /re setup again', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    h.emu.injectFault({ method: 'views.open', kind: 500, count: 1 });
    await h.command(REQUESTER, 'setup');
    const told = await until(() => h!.emu.ephemerals.find((e) => e.user === REQUESTER && /Could not open the setup wizard/.test(e.text ?? '')), 3000, 'notice');
    expect(told.text).toContain('Run `/re setup` again.');
    await h.wizard(REQUESTER, []);
  });
});

