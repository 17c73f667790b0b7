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
