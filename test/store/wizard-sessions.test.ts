/**
 * Wizard sessions in the database (src/store/wizard-sessions.ts, src/store/pg/wizard-sessions.ts) on both
 * dialects: expiry, delete (returning the row, so its sealed ids can be erased), sweep; and through
 * WizardSessions, a page with a typed token stored as a sealed id only.
 */
import { expect, it } from 'vitest';
import { submitPage, WizardSessions } from '../../src/slack/wizard.ts';
import type { WizardSessionRow } from '../../src/slack/wizard-store.ts';
import { SECRETS, wizardPages } from '../slack/harness.ts';
import { describeEachDialect } from '../support/dialects.ts';

const HOUR = 3600_000;
/** the repository clock is real time plus the test's ticks (0 when a test starts) */
const row = (key: string, ttlMs = 2 * HOUR, session = '{"values":{}}'): WizardSessionRow => {
  const now = Date.now();
  return { key, user: 'U1', channel: 'C1', createdAt: new Date(now).toISOString(), expiresAt: now + ttlMs, session };
};
/** a submitted page as Slack sends `view.state.values` (text inputs) */
const stateOf = (values: Record<string, string>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { a: { type: 'plain_text_input', value: v } }]));

describeEachDialect('wizard sessions', (store) => {
  it('put and get round-trip a row; a second put replaces it; past its expiry it is gone for get, not for delete', async () => {
    const s = store();
    const r = row('k1');
    await s.repo.wizards.put(r);
    expect(await s.repo.wizards.get('k1')).toEqual(r);
    await s.repo.wizards.put({ ...r, session: '{"values":{"a":"b"}}' });
    expect((await s.repo.wizards.get('k1'))?.session).toBe('{"values":{"a":"b"}}');
    expect(await s.repo.wizards.get('nope')).toBeUndefined();

    s.tick(2 * HOUR + 1);
    expect(await s.repo.wizards.get('k1')).toBeUndefined();
    expect((await s.repo.wizards.delete('k1'))?.session).toBe('{"values":{"a":"b"}}');
    expect(await s.repo.wizards.delete('k1')).toBeUndefined();
  });

  it('sweep deletes the expired rows only', async () => {
    const s = store();
    await s.repo.wizards.put(row('short', HOUR));
    await s.repo.wizards.put(row('long', 3 * HOUR));
    expect(await s.repo.wizards.sweep()).toBe(0);
    s.tick(HOUR + 1);
    expect(await s.repo.wizards.sweep()).toBe(1);
    expect(await s.repo.wizards.delete('short')).toBeUndefined();
    expect(await s.repo.wizards.get('long')).toBeDefined();
  });

  it('a page with typed tokens is stored with their sealed ids, never the tokens; delete returns the ids to erase', async () => {
    const s = store();
    const sessions = new WizardSessions(s.repo.wizards);
    const created = await sessions.create({ channel: 'C1', user: 'U1' });
    const session = (await sessions.get(created.key))!;
    const outcome = await submitPage(session, 'target', stateOf(wizardPages()[0]), (v, purpose) => s.repo.secrets.seal(v, purpose));
    expect(outcome).toEqual({ kind: 'page', page: 'secrets' });
    await sessions.save(session);

    const again = (await sessions.get(created.key))!;
    expect(again.values['deployment.id']).toBe('clx0abc123');
    const ids = Object.values(again.secrets.sealed);
    expect(ids).toHaveLength(2);
    expect(await Promise.all(ids.map((id) => s.repo.secrets.open(id)))).toEqual(expect.arrayContaining([SECRETS.apiToken, SECRETS.agentToken]));
    const everything = await s.everyRowAsText();
    expect(everything).toContain(created.key);
    for (const secret of [SECRETS.apiToken, SECRETS.agentToken]) expect(everything).not.toContain(secret);

    expect((await sessions.delete(created.key)).sort()).toEqual(ids.sort());
    expect(await sessions.get(created.key)).toBeUndefined();
    expect(await sessions.delete(created.key)).toEqual([]);
  });
});
