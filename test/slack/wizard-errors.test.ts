/**
 * The wizard's failure paths (found by mutation testing, see TESTING.md): whatever goes wrong after secrets
 * were sealed, the user is told what happened and nothing they typed stays sealed without a job to own it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, REQUESTER, SECRETS, until, type Harness } from './harness.ts';
import { selectInView } from '../../src/devkit/slack-emulator/payloads.ts';
import { GroupResolver } from '../../src/slack/policy.ts';
import type { SubmitInput } from '../../src/jobs/types.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
const NOT_OPERATOR = 'You are not allowed to start setups (RE_BOT_OPERATORS).';
let h: Harness | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

const toldTo = (harness: Harness, user: string, re: RegExp) => harness.emu.ephemerals.find((e) => e.user === user && re.test(e.text ?? ''));
const blockIds = (harness: Harness) => ((harness.emu.topView(REQUESTER)?.view.blocks ?? []) as any[]).map((b) => b.block_id);

/** walks every page but the last (the review), so the test can change the world before the final submit */
async function allButSubmit(harness: Harness): Promise<Array<Record<string, string>>> {
  const pages = wizardPages();
  await harness.wizard(REQUESTER, pages.slice(0, -1));
  return pages.slice(-1);
}

async function allSecretsErased(harness: Harness): Promise<void> {
  expect(harness.vault.values.size).toBe(4);
  await until(() => harness.vault.erased.size === harness.vault.values.size, 3000, 'every sealed secret erased');
  for (const id of harness.vault.values.keys()) expect(() => harness.box.openSecret(id)).toThrow(/erased/);
}

class FailingEngine extends FakeEngine {
  override async submit(_input: SubmitInput): Promise<never> {
    throw new Error('database is locked (SQLITE_BUSY)');
  }
}

describe('wizard: no job started, no secret left sealed', () => {
  it('a submission the engine refuses for another reason than a lock: the user gets that reason, not a lock notice; secrets erased', async () => {
    h = await startHarness({ engine: new FailingEngine(policy) });
    await h.wizard(REQUESTER, wizardPages());
    const told = await until(() => toldTo(h!, REQUESTER, /Setup not started/), 3000, 'failure notice');
    expect(told.text).toBe('Setup not started: database is locked (SQLITE_BUSY)');
    expect(h.emu.ephemerals.some((e) => /is locked by job/.test(e.text ?? ''))).toBe(false);
    await allSecretsErased(h);
  });

  it('an operator removed from RE_BOT_OPERATORS while filling the wizard gets no job at the final submit; secrets erased', async () => {
    let member = true;
    vi.spyOn(GroupResolver.prototype, 'isMember').mockImplementation(async () => member);
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
    const last = await allButSubmit(h);
    member = false;
    await h.page(REQUESTER, last[0]);
    await until(() => toldTo(h!, REQUESTER, /not allowed/), 3000, 'refusal');
    expect(toldTo(h, REQUESTER, /not allowed/)!.text).toBe(NOT_OPERATOR);
    expect(engine.submitted).toHaveLength(0);
    await allSecretsErased(h);
  });

  it('the operator lookup failing at the final submit starts no job, says why, and erases the secrets', async () => {
    let fail = false;
    vi.spyOn(GroupResolver.prototype, 'isMember').mockImplementation(async () => {
      if (fail) throw new Error('could not read the members of user group S0APPROVERS from Slack (ratelimited)');
      return true;
    });
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' } });
    const last = await allButSubmit(h);
    fail = true;
    await h.page(REQUESTER, last[0]);
    const told = await until(() => toldTo(h!, REQUESTER, /Setup not started/), 3000, 'failure notice');
    expect(told.text).toContain('could not read the members of user group S0APPROVERS');
    expect(engine.submitted).toHaveLength(0);
    await allSecretsErased(h);
  });

  it('a token typed again after Back replaces the sealed one, which is erased at once', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 1));
    const idOf = (value: string) => [...h!.vault.values].find(([, v]) => v === value)![0];
    const [apiId, agentId] = [idOf(SECRETS.apiToken), idOf(SECRETS.agentToken)];
    await h.back(REQUESTER);
    await h.page(REQUESTER, { 'deployment.apiToken': '', 'agent.token': 'agent-token-ROTATED-999' });
    expect([...h.vault.erased]).toEqual([agentId]);
    expect(() => h!.box.openSecret(agentId)).toThrow(/erased/);
    expect(h.box.openSecret(apiId)).toBe(SECRETS.apiToken);
  });

  it('an erase the database refuses (closed wizard) does not stop the others, and nothing is left unhandled', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.wizard(REQUESTER, wizardPages().slice(0, 1));
    const [first, second] = [...h.vault.values.keys()];
    const erase = h.box.eraseSecret.bind(h.box);
    vi.spyOn(h.box, 'eraseSecret').mockImplementation((id) => {
      if (id === first) throw new Error('connection terminated unexpectedly');
      erase(id);
    });
    await h.closeWizard(REQUESTER);
    await until(() => h!.vault.erased.has(second), 3000, 'the second secret erased');
    expect(h.vault.erased.has(first)).toBe(false);
    expect(() => h!.box.openSecret(second)).toThrow(/erased/);
  });

  it('sealing failing on a page ends the wizard with a notice instead of an error Slack shows as "We had some trouble connecting"', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.command(REQUESTER, 'setup');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
    vi.spyOn(h.box, 'sealSecret').mockImplementation(() => {
      throw new Error('disk I/O error');
    });
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(ack.response_action).toBe('update');
    expect(JSON.stringify(ack.view)).toContain('Something went wrong: disk I/O error. Run `/re setup` again.');
  });
});

describe('wizard: the database failing with its session', () => {
  it('storing a page fails: the user is told, and the tokens sealed on that page are erased (nothing stored refers to them)', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.wizard(REQUESTER, []);
    vi.spyOn(h.wizardStore, 'put').mockRejectedValue(new Error('database is locked'));
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(JSON.stringify(ack.view)).toContain('Something went wrong: database is locked. Run `/re setup` again.');
    expect(h.vault.values.size).toBe(2);
    await until(() => h!.vault.erased.size === 2, 3000, 'the page’s secrets erased');
    expect(h.logs.join('')).toContain('could not store the wizard page');
  });

  it('storing a new session fails: no modal opens and the user is told why', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    vi.spyOn(h.wizardStore, 'put').mockRejectedValue(new Error('connection terminated unexpectedly'));
    await h.command(REQUESTER, 'setup');
    const told = await until(() => toldTo(h!, REQUESTER, /Could not open the setup wizard/), 3000, 'the notice');
    expect(told.text).toContain('connection terminated unexpectedly');
    expect(h.emu.callsTo('views.open')).toHaveLength(0);
  });

  it('reading the session fails: the page answers with a notice, not an error Slack shows as "We had some trouble connecting"', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.wizard(REQUESTER, []);
    vi.spyOn(h.wizardStore, 'get').mockRejectedValue(new Error('connection terminated unexpectedly'));
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(JSON.stringify(ack.view)).toContain('Something went wrong: connection terminated unexpectedly.');
    expect(h.vault.values.size).toBe(0);
  });
});

describe('wizard: operator lookup that never answers', () => {
  it('a page submitted while the lookup is still running 2 s later ends the wizard saying Slack did not answer; nothing sealed', async () => {
    vi.spyOn(GroupResolver.prototype, 'isMember').mockImplementation(() => new Promise<boolean>(() => undefined));
    const engine = new FakeEngine(policy);
    // budget 0: the modal opens before the lookup answers (it never will)
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, operatorCheckBudgetMs: 0 });
    await h.command(REQUESTER, 'setup');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
    const t0 = Date.now();
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(ack.response_action).toBe('update');
    expect(JSON.stringify(ack.view)).toContain('Slack did not answer in time');
    expect(h.vault.values.size).toBe(0);
    expect(engine.submitted).toHaveLength(0);
  });
});

describe('wizard: provider choice re-render', () => {
  it('shows the chosen provider’s fields from the action itself, even when the view state still carries the old choice', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.wizard(REQUESTER, wizardPages().slice(0, 1));
    expect(blockIds(h)).not.toContain('secretsBackend.url');
    const payload = selectInView(h.emu, REQUESTER, 'secretsBackend.provider', 'hashicorp-vault');
    // Slack may deliver the action before the state reflects it: the state says the old provider
    const stale = selectInView(h.emu, REQUESTER, 'secretsBackend.provider', 'aws-secrets-manager');
    payload.view.state = stale.view.state;
    const before = h.emu.callsTo('views.update').length;
    await h.interact(payload);
    await until(() => h!.emu.callsTo('views.update').length > before, 3000, 'views.update');
    expect(blockIds(h)).toEqual(expect.arrayContaining(['secretsBackend.url', 'secretsBackend.authType']));
  });

  it('a failed views.update (Slack 500) is logged and the wizard still finishes', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 1));
    h.emu.injectFault({ method: 'views.update', kind: 500, count: 1 });
    await h.interact(selectInView(h.emu, REQUESTER, 'secretsBackend.provider', 'hashicorp-vault'));
    await until(() => h!.logs.some((l) => l.includes('wizard views.update failed')), 3000, 'warning');
    for (const p of pages.slice(1)) await h.page(REQUESTER, p);
    await until(() => engine.submitted.length === 1, 3000, 'submit');
  });
});
