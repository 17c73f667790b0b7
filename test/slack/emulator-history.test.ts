/**
 * The Slack emulator's reads, as the outbox's lookup of a post left in flight uses them (src/slack/outbox-verify.ts):
 * conversations.history (top-level messages and broadcast replies, newest first) and conversations.replies (the
 * parent, then the thread oldest first), `oldest`, `limit` and cursors, message metadata only when
 * `include_all_metadata` asks for it, and `missing_scope` when the emulator is given the token's scopes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebClient } from '@slack/web-api';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';

let emu: SlackEmulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(scopes?: string[]) {
  emu = await new SlackEmulator({ scopes }).start();
  const client = new WebClient('xoxb-t', { slackApiUrl: emu.apiUrl, retryConfig: { retries: 0 } });
  return { emu, client };
}
const meta = (key: string) => ({ event_type: 're_bot_outbox', event_payload: { key } });

describe('slack emulator: conversations.history and conversations.replies', () => {
  it('history: top-level messages and broadcast replies, newest first, metadata only with include_all_metadata; reads post nothing', async () => {
    const { emu, client } = await start();
    const p1 = await client.chat.postMessage({ channel: 'C1', text: 'first', metadata: meta('a') });
    await client.chat.postMessage({ channel: 'C1', text: 'in thread', thread_ts: p1.ts!, metadata: meta('r') });
    await client.chat.postMessage({ channel: 'C1', text: 'broadcast', thread_ts: p1.ts!, reply_broadcast: true });
    await client.chat.postMessage({ channel: 'C1', text: 'second' });
    await client.chat.postMessage({ channel: 'C2', text: 'elsewhere' });
    const plain = await client.conversations.history({ channel: 'C1' });
    expect(plain.messages!.map((m) => m.text)).toEqual(['second', 'broadcast', 'first']);
    expect(plain.messages!.some((m) => 'metadata' in m)).toBe(false);
    expect(plain.messages![1]).toMatchObject({ subtype: 'thread_broadcast', thread_ts: p1.ts });
    const withMeta = await client.conversations.history({ channel: 'C1', include_all_metadata: true });
    expect(withMeta.messages!.find((m) => m.ts === p1.ts)!.metadata).toEqual(meta('a'));
    expect(emu.posts.get('C1')).toHaveLength(4);
  });

  it('ts are wall-clock seconds, increasing; oldest excludes what came before; limit and cursor page through', async () => {
    const { client } = await start();
    const before = Date.now() / 1000;
    const ts: string[] = [];
    for (let i = 0; i < 5; i++) ts.push((await client.chat.postMessage({ channel: 'C1', text: `m${i}` })).ts!);
    expect(Number(ts[0])).toBeGreaterThanOrEqual(Math.floor(before));
    expect(Number(ts[0])).toBeLessThan(before + 60);
    expect([...ts].sort((a, b) => Number(a) - Number(b))).toEqual(ts);
    expect(new Set(ts).size).toBe(5);
    const since = await client.conversations.history({ channel: 'C1', oldest: ts[1] });
    expect(since.messages!.map((m) => m.text)).toEqual(['m4', 'm3', 'm2']);
    const inclusive = await client.conversations.history({ channel: 'C1', oldest: ts[1], inclusive: true });
    expect(inclusive.messages!.map((m) => m.text)).toEqual(['m4', 'm3', 'm2', 'm1']);
    const page1 = await client.conversations.history({ channel: 'C1', limit: 2 });
    expect(page1.messages!.map((m) => m.text)).toEqual(['m4', 'm3']);
    expect(page1.has_more).toBe(true);
    const page2 = await client.conversations.history({ channel: 'C1', limit: 2, cursor: page1.response_metadata!.next_cursor });
    const page3 = await client.conversations.history({ channel: 'C1', limit: 2, cursor: page2.response_metadata!.next_cursor });
    expect([...page2.messages!, ...page3.messages!].map((m) => m.text)).toEqual(['m2', 'm1', 'm0']);
    expect(page3.has_more).toBe(false);
    expect(page3.response_metadata!.next_cursor).toBe('');
  });

  it('replies: the parent then the thread oldest first, oldest applied to the replies, metadata when asked; an unknown thread is thread_not_found', async () => {
    const { client } = await start();
    const p = await client.chat.postMessage({ channel: 'C1', text: 'parent', metadata: meta('p') });
    const r1 = await client.chat.postMessage({ channel: 'C1', text: 'r1', thread_ts: p.ts!, metadata: meta('r1') });
    await client.chat.postMessage({ channel: 'C1', text: 'r2', thread_ts: p.ts!, metadata: meta('r2') });
    await client.chat.postMessage({ channel: 'C1', text: 'not in the thread' });
    const all = await client.conversations.replies({ channel: 'C1', ts: p.ts!, include_all_metadata: true });
    expect(all.messages!.map((m) => [m.text, (m.metadata?.event_payload as { key?: string } | undefined)?.key])).toEqual([['parent', 'p'], ['r1', 'r1'], ['r2', 'r2']]);
    const later = await client.conversations.replies({ channel: 'C1', ts: p.ts!, oldest: r1.ts! });
    expect(later.messages!.map((m) => [m.text, m.metadata])).toEqual([['parent', undefined], ['r2', undefined]]);
    await expect(client.conversations.replies({ channel: 'C1', ts: '1.000001' })).rejects.toMatchObject({ data: { error: 'thread_not_found' } });
  });

  it('with the token’s scopes given, a read without the channel type’s history scope is missing_scope naming it', async () => {
    const { client } = await start(['chat:write', 'im:history']);
    await expect(client.conversations.history({ channel: 'C1' })).rejects.toMatchObject({ data: { error: 'missing_scope', needed: 'channels:history', provided: 'chat:write,im:history' } });
    await expect(client.conversations.history({ channel: 'G1' })).rejects.toMatchObject({ data: { error: 'missing_scope', needed: 'groups:history' } });
    expect((await client.conversations.history({ channel: 'D1' })).ok).toBe(true);
  });
});
