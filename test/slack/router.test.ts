/**
 * src/slack/router.ts: one Bolt listener per kind of request. What a user sees: a button or view re-bot has
 * no handler for (a link button, a modal of an older version) is acked at once instead of hanging for Slack's
 * 3 s window and showing a warning; every handler still gets its own requests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SlackRouter } from '../../src/slack/router.ts';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, REQUESTER, type Harness } from './harness.ts';

const policy = { approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('Slack request routing', () => {
  it('acks a click and a view submission nobody handles at once, posting nothing', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const before = h.emu.calls.length;
    const t0 = performance.now();
    const click = await h.click(REQUESTER, 'docs_link', 'https://example.com');
    const view = await h.interact({
      type: 'view_submission', user: { id: REQUESTER, name: REQUESTER, team_id: h.emu.teamId }, api_app_id: 'A0123APPID', token: 'x',
      team: { id: h.emu.teamId, domain: 'acme' }, trigger_id: h.emu.issueTrigger(REQUESTER),
      view: { id: 'V0OLD', type: 'modal', callback_id: 'an_old_modal', private_metadata: '', state: { values: {} }, hash: 'h', title: { type: 'plain_text', text: 'x' } },
    });
    expect([click.status, click.body, view.status, view.body]).toEqual([200, '', 200, '']);
    expect(performance.now() - t0).toBeLessThan(2500);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.emu.calls.slice(before).map((c) => c.method)).toEqual([]);
    expect(h.logs.join('\n')).not.toMatch(/unhandled|not acknowledged/i);
  });

  it('registers one Bolt listener per kind of request, however many buttons and views re-bot has', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    // command, block actions, view submissions, closed views
    expect(((h.rt.app as any).listeners as unknown[]).length).toBe(4);
  });

  it('refuses a second handler for the same id', () => {
    const r = new SlackRouter();
    r.action('re_approve', async () => undefined);
    r.view({ callback_id: 're_setup', type: 'view_closed' }, async () => undefined);
    r.view('re_setup', async () => undefined);
    expect(() => r.action('re_approve', async () => undefined)).toThrow('action re_approve has two handlers');
    expect(() => r.view({ callback_id: 're_setup', type: 'view_submission' }, async () => undefined)).toThrow('view_submission re_setup has two handlers');
  });
});
