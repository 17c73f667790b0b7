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
    it('a post is inserted once: the same key again changes nothing, even its args', () => {
      const s = make();
      const before = Date.now();
      s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'first' } });
      s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'second' } });
      expect(s.get('p')).toMatchObject({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'first' }, state: 'pending', attempts: 0, notBefore: 0 });
      expect(s.get('p')!.ref).toBeUndefined();
      expect(s.head('p')).toEqual({ state: 'pending', ts: undefined, channel: 'C1' });
      expect(s.get('nope')).toBeUndefined();
      expect(s.head('nope')).toBeUndefined();
      expect(s.pendingCount()).toBe(1);
      expect(s.oldestPendingAt()).toBeGreaterThanOrEqual(before);
    });

    it('an update is coalesced: last args win; a sent one becomes pending again; one in flight is re-sent after', () => {
      const s = make();
      s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v1' } });
      s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v2' } });
      const u = s.get('p#update')!;
      expect(u).toMatchObject({ args: { text: 'v2' }, state: 'pending', ref: 'p' });
      s.markSending(u.id);
      s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v3' } });
      expect(s.head('p#update')!.state).toBe('sending');
      s.markSent(u.id);
      expect(s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v3' } }); // v3 still has to go out
      s.markSending(u.id);
      s.markSent(u.id);
      expect(s.head('p#update')!.state).toBe('sent');
      expect(s.pendingCount()).toBe(0);
      expect(s.oldestPendingAt()).toBeUndefined();
      s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v4' } });
      expect(s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v4' } });
      s.markFailed(u.id, 'boom');
      s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v5' } });
      expect(s.head('p#update')!.state).toBe('pending');
    });

    it('sending counts an attempt; sent records the ts once; a retry waits and a 429 gives the attempt back', () => {
      const s = make();
      s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'x' } });
      const id = s.get('p')!.id;
      s.markSending(id);
      expect(s.get('p')).toMatchObject({ state: 'sending', attempts: 1 });
      expect(s.pendingCount()).toBe(1); // in flight counts as not done
      s.markRetry(id, 5_000, 'http 503');
      expect(s.get('p')).toMatchObject({ state: 'pending', attempts: 1, notBefore: 5_000, error: 'http 503' });
      expect(s.due(4_999).map((e) => e.key)).toEqual([]);
      expect(s.due(5_000).map((e) => e.key)).toEqual(['p']);
      s.markSending(id);
      s.markRetry(id, 6_000, 'ratelimited', true);
      expect(s.get('p')).toMatchObject({ attempts: 1, error: 'ratelimited' });
      s.markSending(id);
      s.markSent(id, '1700000000.000100');
      expect(s.head('p')).toEqual({ state: 'sent', ts: '1700000000.000100', channel: 'C1' });
      s.markSent(id); // an update-style mark without ts keeps the recorded one
      expect(s.head('p')!.ts).toBe('1700000000.000100');
      expect(s.due(10_000)).toEqual([]);
      s.upsert({ key: 'e', kind: 'ephemeral', channel: 'C1', args: { text: 'y', user: 'U1' } });
      s.markFailed(s.get('e')!.id, 'user_not_in_channel');
      expect(s.get('e')).toMatchObject({ state: 'failed', error: 'user_not_in_channel' });
      expect(s.pendingCount()).toBe(0);
    });

    it('due: oldest first, each channel’s first pending post, due updates and ephemerals', () => {
      const s = make();
      s.upsert({ key: 'a1', kind: 'post', channel: 'CA', args: {} });
      s.upsert({ key: 'b1', kind: 'post', channel: 'CB', args: {} });
      s.upsert({ key: 'a2', kind: 'post', channel: 'CA', ref: 'a1', args: {} });
      s.upsert({ key: 'u', kind: 'update', channel: 'CA', ref: 'a1', args: {} });
      s.upsert({ key: 'e', kind: 'ephemeral', channel: 'CA', args: { user: 'U1' } });
      const keys = s.due(Date.now()).map((e) => e.key);
      expect(keys.filter((k) => k !== 'a2')).toEqual(['a1', 'b1', 'u', 'e']);
      expect(keys.indexOf('a1')).toBe(0);
      const ids = s.due(Date.now()).map((e) => e.id);
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);
    });

    it('after a crash: in-flight updates and thread parents are re-sent, replies and ephemerals are not', () => {
      const s = make();
      const rows = [
        { key: 'parent', kind: 'post' as const, channel: 'C1', args: {} },
        { key: 'reply', kind: 'post' as const, channel: 'C1', ref: 'parent', args: {} },
        { key: 'parent#update', kind: 'update' as const, channel: 'C1', ref: 'parent', args: {} },
        { key: 'eph', kind: 'ephemeral' as const, channel: 'C1', args: { user: 'U1' } },
        { key: 'idle', kind: 'post' as const, channel: 'C2', args: {} },
      ];
      for (const r of rows) s.upsert(r);
      for (const r of rows.slice(0, 4)) s.markSending(s.get(r.key)!.id);
      expect(s.recoverInFlight()).toBe(4);
      expect(Object.fromEntries(rows.map((r) => [r.key, s.head(r.key)!.state]))).toEqual({ parent: 'pending', reply: 'unknown', 'parent#update': 'pending', eph: 'unknown', idle: 'pending' });
      expect(s.recoverInFlight()).toBe(0);
      expect(s.pendingCount()).toBe(3);
    });
  });
}

describe('outbox store (sqlite) specifics', () => {
  it('never stores a registered secret in the args', () => {
    registerSecret('xoxp-like-secret-value-123');
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'token xoxp-like-secret-value-123 leaked?' } });
    expect(s.get('p')!.args).toEqual({ text: 'token [REDACTED] leaked?' });
  });

  it('refuses a database without the migrations', () => {
    expect(() => new SqliteOutboxStore(new Database(':memory:'))).toThrow(/slack_outbox table missing/);
  });

  it('due() offers only the first pending post of a channel (later ones wait behind it)', () => {
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    s.upsert({ key: 'a1', kind: 'post', channel: 'CA', args: {} });
    s.upsert({ key: 'a2', kind: 'post', channel: 'CA', args: {} });
    expect(s.due(Date.now()).map((e) => e.key)).toEqual(['a1']);
    s.markRetry(s.get('a1')!.id, Date.now() + 60_000, 'wait');
    expect(s.due(Date.now()).map((e) => e.key)).toEqual([]); // a2 keeps its place behind a1
  });
});
