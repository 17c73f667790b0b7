/**
 * What the outbox stores and offers: the rows hold no secret (args, errors), what due() offers when
 * priority posts, back-offs and several channels mix, how much of a backlog one poll takes, and how old the
 * oldest pending write is (the outbox age the bot reports).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import { MemoryOutboxStore, SqliteOutboxStore } from '../../src/slack/outbox.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import { STORES, T0, at, fakeOutbox, stopNow, useFakeClock } from './outbox-fakes.ts';

beforeEach(() => useFakeClock());
afterEach(() => {
  forgetAllSecrets();
  vi.useRealTimers();
});

const SECRET = 'xoxp-1234567890-abcdefghijkl';

describe('outbox rows', () => {
  it('no column of a row holds a registered secret: not the args, not the error Slack answered, not the log', async () => {
    registerSecret(SECRET);
    const db = openStore({ path: ':memory:' }).sqlite;
    const { outbox, slack, logs } = fakeOutbox({ store: new SqliteOutboxStore(db), pacingMs: 10, pollMs: 10 });
    slack.fail('chat.postMessage', new Error(`invalid_auth for ${SECRET}`));
    outbox.post('p', 'C1', { text: `token ${SECRET}`, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: SECRET } }] });
    outbox.post('q', 'C1', { text: 'fine' });
    outbox.update('q', 'C1', { text: `edited ${SECRET}` });
    outbox.ephemeral('e', 'C1', 'U1', { text: `yours: ${SECRET}` });
    outbox.start();
    await at(1000);
    await stopNow(outbox);
    const rows = db.prepare('SELECT * FROM slack_outbox ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(4);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    expect(JSON.stringify(logs)).not.toContain(SECRET);
    expect(JSON.parse(rows[0].args as string)).toEqual({ text: 'token [REDACTED]', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '[REDACTED]' } }] });
    expect(rows[0]).toMatchObject({ key: 'p', kind: 'post', channel: 'C1', ref: null, state: 'failed', error: 'invalid_auth for [REDACTED]', priority: 0, enqueued_at: T0 });
    expect(rows[2]).toMatchObject({ key: 'q#update', kind: 'update', ref: 'q', state: 'sent' });
    expect(JSON.parse(rows[3].args as string)).toEqual({ text: 'yours: [REDACTED]', user: 'U1' });
    // what reached Slack is what was stored
    expect(slack.calls.map((c) => c.args.text)).toEqual(['token [REDACTED]', 'yours: [REDACTED]', 'fine', 'edited [REDACTED]']);
  });

  it('a row read back has exactly the fields written, absent ones undefined (never null)', async () => {
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'x' }, priority: 3 });
    expect(await s.get('p')).toStrictEqual({ id: 1, key: 'p', kind: 'post', channel: 'C1', ref: undefined, args: { text: 'x' }, state: 'pending', ts: undefined, attempts: 0, notBefore: 0, error: undefined, enqueuedAt: T0 });
    await s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    expect((await s.get('r'))!.ref).toBe('p');
  });
});

describe('due() with priority posts and several channels (sqlite)', () => {
  const sqlite = () => new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
  const sent = async (s: SqliteOutboxStore, key: string, ts: string) => {
    await s.markSending((await s.get(key))!.id, 'me');
    await s.markSent((await s.get(key))!.id, ts, 'me');
  };

  it('each channel offers its highest-priority post whose parent is posted, else its oldest post; oldest first overall', async () => {
    const s = sqlite();
    await s.upsert({ key: 'e', kind: 'ephemeral', channel: 'C9', args: { user: 'U1' } });
    await s.upsert({ key: 'p1', kind: 'post', channel: 'C1', args: {} });
    await sent(s, 'p1', '1.1');
    await s.upsert({ key: 'r1', kind: 'post', channel: 'C1', ref: 'p1', args: {} });
    await s.upsert({ key: 'x', kind: 'post', channel: 'C2', args: {} });
    await s.upsert({ key: 'low', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 1 });
    await s.upsert({ key: 'high', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 2 });
    await s.upsert({ key: 'high2', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 2 });
    await s.upsert({ key: 'p3', kind: 'post', channel: 'C3', args: {} });
    await s.upsert({ key: 'a3', kind: 'post', channel: 'C3', ref: 'p3', args: {}, priority: 5 }); // its parent is not posted yet
    const now = Date.now();
    expect((await s.due(now, 'me')).map((e) => e.key)).toEqual(['e', 'x', 'high', 'p3']);
    await sent(s, 'high', '1.2');
    expect((await s.due(now, 'me')).map((e) => e.key)).toEqual(['e', 'x', 'high2', 'p3']);
  });

  it('a priority post is offered even while its channel’s oldest post waits out a back-off, once', async () => {
    const s = sqlite();
    await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: {} });
    await sent(s, 'p', '1.1');
    await s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    await s.markRetry((await s.get('r'))!.id, Date.now() + 60_000, 'http 503', 'me');
    await s.upsert({ key: 'approve', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 1 });
    await s.upsert({ key: 'top', kind: 'post', channel: 'C2', args: {}, priority: 1 });
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual(['approve', 'top']);
  });

  it('one poll takes at most 200 updates and 8 ephemerals, oldest first; the rest wait for the next', async () => {
    const s = sqlite();
    for (let i = 0; i < 205; i++) await s.upsert({ key: `m${i}#update`, kind: 'update', channel: 'C1', ref: `m${i}`, args: {} });
    for (let i = 0; i < 10; i++) await s.upsert({ key: `e${i}`, kind: 'ephemeral', channel: 'C1', args: { user: `U${i}` } });
    const due = await s.due(Date.now(), 'me');
    expect(due.filter((e) => e.kind === 'update').map((e) => e.key)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}#update`));
    expect(due.filter((e) => e.kind === 'ephemeral').map((e) => e.key)).toEqual(Array.from({ length: 8 }, (_, i) => `e${i}`));
    expect(await s.pendingCount()).toBe(215);
  });
});

describe('due() order (memory store)', () => {
  it('a priority post goes first only once its parent is posted; a priority post without parent goes first at once', async () => {
    const s = new MemoryOutboxStore();
    await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: {} });
    await s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    await s.upsert({ key: 'a', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 1 });
    await s.upsert({ key: 'b', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 2 });
    await s.upsert({ key: 'u', kind: 'update', channel: 'C1', ref: 'p', args: {}, priority: 9 } as any);
    await s.upsert({ key: 'top', kind: 'post', channel: 'C2', args: {}, priority: 1 });
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual(['top', 'p', 'r', 'a', 'b', 'u']);
    await s.markSending((await s.get('p'))!.id, 'me');
    await s.markSent((await s.get('p'))!.id, '1.1', 'me');
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual(['b', 'a', 'top', 'r', 'u']);
  });
});

for (const [name, make] of STORES) {
  it(`an update coalesced while pending goes out once; one coalesced while in flight goes out again (${name} store)`, async () => {
    const s = make();
    await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v1' } });
    await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v2' } });
    const id = (await s.get('p#update'))!.id;
    await s.markSending(id, 'me');
    await s.markSent(id, undefined, 'me');
    expect((await s.head('p#update'))!.state).toBe('sent');
    await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v3' } });
    await s.markSending(id, 'me');
    await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v4' } });
    await s.markSent(id, undefined, 'me');
    expect(await s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v4' } });
  });

  it(`a priority reply whose parent was never queued is offered in its turn, not first (${name} store)`, async () => {
    const s = make();
    await s.upsert({ key: 'x', kind: 'post', channel: 'C1', args: {} });
    await s.upsert({ key: 'orphan', kind: 'post', channel: 'C2', ref: 'missing', args: {}, priority: 1 });
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual(['x', 'orphan']);
  });

  it(`oldestPendingAt: when the oldest unfinished write was queued, or became pending again (${name} store)`, async () => {
    const s = make();
    await s.upsert({ key: 'a', kind: 'post', channel: 'C1', args: {} });
    await at(1000);
    await s.upsert({ key: 'b', kind: 'post', channel: 'C1', args: {} });
    await s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: {} });
    expect(await s.oldestPendingAt()).toBe(T0);
    await s.markSending((await s.get('a'))!.id, 'me');
    expect(await s.oldestPendingAt()).toBe(T0); // in flight is not done
    await s.markSent((await s.get('a'))!.id, '1.1', 'me');
    expect(await s.oldestPendingAt()).toBe(T0 + 1000);
    for (const k of ['b', 'b#update']) {
      await s.markSending((await s.get(k))!.id, 'me');
      await s.markSent((await s.get(k))!.id, k === 'b' ? '1.2' : undefined, 'me');
    }
    expect(await s.oldestPendingAt()).toBeUndefined();
    await at(3000);
    await s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'again' } });
    expect(await s.oldestPendingAt()).toBe(T0 + 3000);
    await s.markFailed((await s.get('b#update'))!.id, 'x', 'me');
    await at(4000);
    await s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'once more' } });
    expect(await s.oldestPendingAt()).toBe(T0 + 4000);
    await at(5000);
    await s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'coalesced' } });
    expect(await s.oldestPendingAt()).toBe(T0 + 4000); // coalescing into a pending update keeps its age
    expect(await s.get('b#update')).toMatchObject({ state: 'pending', args: { text: 'coalesced' } });
  });
}
