/** The outbox's persistence contract, for both stores (SQLite in production, memory in Socket Mode tests). */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import { MemoryOutboxStore, SqliteOutboxStore, type OutboxStore } from '../../src/slack/outbox-store.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import Database from 'better-sqlite3';

afterEach(() => forgetAllSecrets());

const stores: Array<[string, () => OutboxStore]> = [
  ['sqlite', () => new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite)],
  ['memory', () => new MemoryOutboxStore()],
];

for (const [name, make] of stores) {
  describe(`outbox store (${name})`, () => {
    it('a post is inserted once: the same key again changes nothing, even its args', async () => {
      const s = make();
      const before = Date.now();
      await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'first' } });
      await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'second' } });
      expect(await s.get('p')).toMatchObject({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'first' }, state: 'pending', attempts: 0, notBefore: 0 });
      expect((await s.get('p'))!.ref).toBeUndefined();
      expect(await s.head('p')).toEqual({ state: 'pending', ts: undefined, channel: 'C1' });
      expect(await s.get('nope')).toBeUndefined();
      expect(await s.head('nope')).toBeUndefined();
      expect(await s.pendingCount()).toBe(1);
      expect(await s.oldestPendingAt()).toBeGreaterThanOrEqual(before);
    });

    it('an update is coalesced: last args win; a sent one becomes pending again; one in flight is re-sent after', async () => {
      const s = make();
      await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v1' } });
      await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v2' } });
      const u = (await s.get('p#update'))!;
      expect(u).toMatchObject({ args: { text: 'v2' }, state: 'pending', ref: 'p' });
      await s.markSending(u.id, 'me');
      await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v3' } });
      expect((await s.head('p#update'))!.state).toBe('sending');
      await s.markSent(u.id, undefined, 'me');
      expect(await s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v3' } }); // v3 still has to go out
      await s.markSending(u.id, 'me');
      await s.markSent(u.id, undefined, 'me');
      expect((await s.head('p#update'))!.state).toBe('sent');
      expect(await s.pendingCount()).toBe(0);
      expect(await s.oldestPendingAt()).toBeUndefined();
      await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v4' } });
      expect(await s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v4' } });
      await s.markFailed(u.id, 'boom', 'me');
      await s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v5' } });
      expect((await s.head('p#update'))!.state).toBe('pending');
    });

    it('sending counts an attempt; sent records the ts once; a retry waits and a 429 gives the attempt back', async () => {
      const s = make();
      await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'x' } });
      const id = (await s.get('p'))!.id;
      await s.markSending(id, 'me');
      expect(await s.get('p')).toMatchObject({ state: 'sending', attempts: 1 });
      expect(await s.pendingCount()).toBe(1); // in flight counts as not done
      await s.markRetry(id, 5_000, 'http 503', 'me');
      expect(await s.get('p')).toMatchObject({ state: 'pending', attempts: 1, notBefore: 5_000, error: 'http 503' });
      expect((await s.due(4_999, 'me')).map((e) => e.key)).toEqual([]);
      expect((await s.due(5_000, 'me')).map((e) => e.key)).toEqual(['p']);
      await s.markSending(id, 'me');
      await s.markRetry(id, 6_000, 'ratelimited', 'me', true);
      expect(await s.get('p')).toMatchObject({ attempts: 1, error: 'ratelimited' });
      await s.markSending(id, 'me');
      await s.markSent(id, '1700000000.000100', 'me');
      expect(await s.head('p')).toEqual({ state: 'sent', ts: '1700000000.000100', channel: 'C1' });
      await s.markSent(id, undefined, 'me'); // an update-style mark without ts keeps the recorded one
      expect((await s.head('p'))!.ts).toBe('1700000000.000100');
      expect(await s.due(10_000, 'me')).toEqual([]);
      await s.upsert({ key: 'e', kind: 'ephemeral', channel: 'C1', args: { text: 'y', user: 'U1' } });
      await s.markFailed((await s.get('e'))!.id, 'user_not_in_channel', 'me');
      expect(await s.get('e')).toMatchObject({ state: 'failed', error: 'user_not_in_channel' });
      expect(await s.pendingCount()).toBe(0);
    });

    it('due: oldest first, each channel’s first pending post, due updates and ephemerals', async () => {
      const s = make();
      await s.upsert({ key: 'a1', kind: 'post', channel: 'CA', args: {} });
      await s.upsert({ key: 'b1', kind: 'post', channel: 'CB', args: {} });
      await s.upsert({ key: 'a2', kind: 'post', channel: 'CA', ref: 'a1', args: {} });
      await s.upsert({ key: 'u', kind: 'update', channel: 'CA', ref: 'a1', args: {} });
      await s.upsert({ key: 'e', kind: 'ephemeral', channel: 'CA', args: { user: 'U1' } });
      const keys = (await s.due(Date.now(), 'me')).map((e) => e.key);
      expect(keys.filter((k) => k !== 'a2')).toEqual(['a1', 'b1', 'u', 'e']);
      expect(keys.indexOf('a1')).toBe(0);
      const ids = (await s.due(Date.now(), 'me')).map((e) => e.id);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    });

    it('after a crash: in-flight updates are re-sent, posts (parents and replies) are to be looked up in Slack first, ephemerals are not re-sent', async () => {
      const s = make();
      const rows = [
        { key: 'parent', kind: 'post' as const, channel: 'C1', args: {} },
        { key: 'reply', kind: 'post' as const, channel: 'C1', ref: 'parent', args: {} },
        { key: 'parent#update', kind: 'update' as const, channel: 'C1', ref: 'parent', args: {} },
        { key: 'eph', kind: 'ephemeral' as const, channel: 'C1', args: { user: 'U1' } },
        { key: 'idle', kind: 'post' as const, channel: 'C2', args: {} },
      ];
      for (const r of rows) await s.upsert(r);
      for (const r of rows.slice(0, 4)) await s.markSending((await s.get(r.key))!.id, 'me');
      expect(await s.recoverInFlight('me')).toBe(4);
      expect(Object.fromEntries(await Promise.all(rows.map(async (r) => [r.key, (await s.head(r.key))!.state])))).toEqual({ parent: 'pending', reply: 'pending', 'parent#update': 'pending', eph: 'unknown', idle: 'pending' });
      expect(Object.fromEntries(await Promise.all(rows.map(async (r) => [r.key, (await s.get(r.key))!.verify ?? false])))).toEqual({ parent: true, reply: true, 'parent#update': false, eph: false, idle: false });
      expect(await s.recoverInFlight('me')).toBe(0);
      expect(await s.pendingCount()).toBe(4);
      // sent: the flag is gone; a recovered post that could not be looked up is given up as unknown, only from sending
      const reply = (await s.get('reply'))!;
      expect(await s.markUnknown(reply.id, 'lookup failed', 'me')).toBe(false);
      await s.markSending(reply.id, 'me');
      expect(await s.markUnknown(reply.id, 'lookup failed: missing_scope', 'me')).toBe(true);
      expect(await s.get('reply')).toMatchObject({ state: 'unknown', error: 'lookup failed: missing_scope' });
      const parent = (await s.get('parent'))!;
      await s.markSending(parent.id, 'me');
      await s.markSent(parent.id, '1800000000.000001', 'me');
      expect((await s.get('parent'))!.verify).toBeUndefined();
    });

    it('after taking a channel: only the rows in flight in that channel are recovered, not those of channels still sending', async () => {
      const s = make();
      for (const [key, channel] of [['a', 'CA'], ['b', 'CB']]) await s.upsert({ key, kind: 'post', channel, args: {} });
      for (const key of ['a', 'b']) await s.markSending((await s.get(key))!.id, 'me');
      expect(await s.recoverInFlight('me', ['CB'])).toBe(1);
      expect((await s.head('a'))!.state).toBe('sending');
      expect((await s.head('b'))!.state).toBe('pending');
    });

    it('one process holds every channel with due rows; a dropped ephemeral is failed only while still pending', async () => {
      const s = make();
      await s.upsert({ key: 'p', kind: 'post', channel: 'CB', args: {} });
      await s.upsert({ key: 'e', kind: 'ephemeral', channel: 'CA', args: { user: 'U1' } });
      await s.upsert({ key: 'later', kind: 'post', channel: 'CC', args: {} });
      await s.markSending((await s.get('later'))!.id, 'me');
      await s.markRetry((await s.get('later'))!.id, Date.now() + 60_000, 'http 503', 'me');
      expect(await s.takeChannels({ owner: 'me', leaseMs: 10_000, max: 10 })).toEqual(['CA', 'CB']);
      expect(await s.takeChannels({ owner: 'me', leaseMs: 10_000, max: 1 })).toEqual(['CA']);
      expect(await s.renewChannel({ channel: 'CA', owner: 'me', leaseMs: 10_000 })).toBe(true);
      const e = (await s.get('e'))!;
      expect(await s.dropPending(e.id, 'dropped: ephemeral backlog full')).toBe(true);
      expect(await s.get('e')).toMatchObject({ state: 'failed', error: 'dropped: ephemeral backlog full' });
      const p = (await s.get('p'))!;
      await s.markSending(p.id, 'me');
      expect(await s.dropPending(p.id, 'dropped')).toBe(false); // in flight: left to its sender
      expect((await s.head('p'))!.state).toBe('sending');
    });
  });
}

describe('outbox store (sqlite) specifics', () => {
  it('never stores a registered secret in the args', async () => {
    registerSecret('xoxp-like-secret-value-123');
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    await s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'token xoxp-like-secret-value-123 leaked?' } });
    expect((await s.get('p'))!.args).toEqual({ text: 'token [REDACTED] leaked?' });
  });

  it('refuses a database without the migrations', async () => {
    expect(() => new SqliteOutboxStore(new Database(':memory:'))).toThrow(/slack_outbox table missing/);
  });

  it('due() offers only the first pending post of a channel (later ones wait behind it)', async () => {
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    await s.upsert({ key: 'a1', kind: 'post', channel: 'CA', args: {} });
    await s.upsert({ key: 'a2', kind: 'post', channel: 'CA', args: {} });
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual(['a1']);
    await s.markRetry((await s.get('a1'))!.id, Date.now() + 60_000, 'wait', 'me');
    expect((await s.due(Date.now(), 'me')).map((e) => e.key)).toEqual([]); // a2 keeps its place behind a1
  });
});
