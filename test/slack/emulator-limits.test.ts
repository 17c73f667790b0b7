import { expect, it } from 'vitest';
import { validateBlocks, validateView } from '../../src/devkit/slack-emulator/limits.ts';

const section = (n: number) => ({ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(n) } });

it('enforces Block Kit limits from slack-platform.md §3–4', () => {
  expect(validateBlocks([section(3000)], 50)).toEqual([]);
  expect(validateBlocks([section(3001)], 50)[0]).toMatch(/less than 3001.*\/blocks\/0\/text\/text/);
  expect(validateBlocks(Array.from({ length: 51 }, () => section(1)), 50)[0]).toMatch(/at most 50/);
  expect(validateBlocks([{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }], 50)).toHaveLength(1);
  const btn = (text: string, value: string) => ({ type: 'actions', elements: [{ type: 'button', action_id: 'a', text: { type: 'plain_text', text }, value }] });
  expect(validateBlocks([btn('b'.repeat(76), 'v')], 50)).toHaveLength(1);
  expect(validateBlocks([btn('ok', 'v'.repeat(2001))], 50)).toHaveLength(1);
});

it('enforces modal limits', () => {
  const view = { type: 'modal', title: { type: 'plain_text', text: 'RE setup' }, blocks: [section(1)] };
  expect(validateView(view)).toEqual([]);
  expect(validateView({ ...view, title: { type: 'plain_text', text: 't'.repeat(25) } })).toHaveLength(1);
  expect(validateView({ ...view, private_metadata: 'm'.repeat(3001) })).toHaveLength(1);
  expect(validateView({ ...view, blocks: Array.from({ length: 101 }, () => section(1)) })[0]).toMatch(/at most 100/);
  expect(validateView({ ...view, blocks: [{ type: 'input', label: { type: 'plain_text', text: 'l' }, element: { type: 'plain_text_input' } }] })[0]).toMatch(/submit is required/);
});

it('applies view_submission acks like Slack: errors must name input blocks, updates must be valid views', async () => {
  const { SlackEmulator } = await import('../../src/devkit/slack-emulator/server.ts');
  const emu = await new SlackEmulator().start();
  try {
    const t = emu.issueTrigger('U1');
    const res = await fetch(`${emu.apiUrl}views.open`, {
      method: 'POST',
      headers: { authorization: 'Bearer xoxb-1', 'content-type': 'application/json' },
      body: JSON.stringify({ trigger_id: t, view: { type: 'modal', title: { type: 'plain_text', text: 'x' }, submit: { type: 'plain_text', text: 'Go' }, blocks: [{ type: 'input', block_id: 'a', label: { type: 'plain_text', text: 'A' }, element: { type: 'plain_text_input', action_id: 'v' } }] } }),
    }).then((r) => r.json() as Promise<any>);
    const id = res.view.id;
    expect(emu.applyViewAck('U1', id, { response_action: 'errors', errors: { a: 'bad' } })).toEqual({ ok: true });
    expect(emu.applyViewAck('U1', id, { response_action: 'errors', errors: { nope: 'bad' } }).ok).toBe(false);
    expect(emu.applyViewAck('U1', id, { response_action: 'update', view: { type: 'modal', title: { type: 'plain_text', text: 't'.repeat(30) } } }).error).toBe('invalid_arguments');
    expect(emu.applyViewAck('U1', id, undefined)).toEqual({ ok: true });
    expect(emu.topView('U1')).toBeUndefined();
    const checks = { type: 'checkboxes', action_id: 'c', options: Array.from({ length: 11 }, (_, i) => ({ text: { type: 'plain_text', text: `o${i}` }, value: `o${i}` })) };
    expect(validateBlocks([{ type: 'input', label: { type: 'plain_text', text: 'l' }, element: checks }], 100)[0]).toMatch(/at most 10/);
  } finally {
    await emu.close();
  }
});
