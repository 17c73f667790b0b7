/**
 * The outbox rows of src/store/pg/outbox.ts against SqliteOutboxStore (src/slack/outbox-store.ts): the same calls
 * give the same due lists and rows; on PostgreSQL alone, only the channel's lease holder moves its rows, and two
 * senders handing channels back and forth never record one row sent twice.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { SqliteOutboxStore, type OutboxEntry } from '../../src/slack/outbox-store.ts';
import { PgOutboxStore } from '../../src/store/pg/outbox.ts';
import { acquireChannelLease, renewChannelLease, takeDueChannels } from '../../src/store/pg/claim.ts';
import { describeTwins } from '../support/pg-twins.ts';

const NOW = Date.UTC(2026, 0, 1, 12);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Msg = Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>;
const post = (key: string, channel: string, extra: Partial<Msg> = {}): Msg => ({ key, kind: 'post', channel, args: { text: key }, ...extra });

describeTwins('PostgreSQL outbox rows, beside SQLite\'s', (twins) => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['Date'], now: NOW }));
  afterEach(() => void vi.useRealTimers());

  it('enqueue, due order (thread order, priority, updates, ephemerals), sending → sent, dirty updates, retries, failures, recovery: the same rows', async () => {
    const t = twins();
    const lite = new SqliteOutboxStore(t.lite.sqlite);
    const pg = new PgOutboxStore(t.pg.pool);
    for (const channel of ['C1', 'C2']) expect(await acquireChannelLease(t.pg.db, { channel, owner: 'A', leaseMs: 600_000 })).toBe(true);
    const both = async <T,>(f: (s: SqliteOutboxStore | PgOutboxStore) => T | Promise<T>): Promise<T> => {
      const l = await f(lite);
      const p = await f(pg);
      expect(p).toEqual(l);
      return p;
    };
    const keys = ['p1', 'r1', 'r2', 'u1', 'e1', 'p2', 'r3'];
    const rows = async () => both(async (s) => Promise.all(keys.map((k) => s.get(k))));
    const due = () => both((s) => s instanceof PgOutboxStore ? s.due(NOW, 'A') : s.due(NOW));
    const idOf = async (key: string) => (await pg.get(key))!.id;
    const step = async (f: (s: SqliteOutboxStore | PgOutboxStore, id: number) => unknown, key: string) => {
      const id = await idOf(key);
      f(lite, id);
      await f(pg, id);
    };

    for (const m of [post('p1', 'C1'), post('r1', 'C1', { ref: 'p1' }), post('r2', 'C1', { ref: 'p1', priority: 5 }),
      { key: 'u1', kind: 'update' as const, channel: 'C1', ref: 'p1', args: { text: 'v1' } }, { key: 'e1', kind: 'ephemeral' as const, channel: 'C2', args: { text: 'eph', user: 'U1' } },
      post('p2', 'C2'), post('r3', 'C2', { ref: 'p2' })]) {
      await both((s) => s.upsert(m));
    }
    // a second enqueue of a post is ignored; of an update replaces its args
    await both((s) => s.upsert(post('p1', 'C1', { args: { text: 'ignored' } })));
    await both((s) => s.upsert({ key: 'u1', kind: 'update', channel: 'C1', ref: 'p1', args: { text: 'v2' } }));
    expect((await due()).map((e) => e.key)).toEqual(['p1', 'u1', 'e1', 'p2']);

    await step((s, id) => (s instanceof PgOutboxStore ? s.markSending(id, 'A') : s.markSending(id)), 'p1');
    await step((s, id) => (s instanceof PgOutboxStore ? s.markSent(id, '111.1', 'A') : s.markSent(id, '111.1')), 'p1');
    // the parent is posted: the priority reply overtakes the earlier one
    expect((await due()).map((e) => e.key)).toEqual(['r2', 'u1', 'e1', 'p2']);

    // an update re-enqueued while in flight goes back to pending after its send
    await step((s, id) => (s instanceof PgOutboxStore ? s.markSending(id, 'A') : s.markSending(id)), 'u1');
    await both((s) => s.upsert({ key: 'u1', kind: 'update', channel: 'C1', ref: 'p1', args: { text: 'v3' } }));
    await step((s, id) => (s instanceof PgOutboxStore ? s.markSent(id, undefined, 'A') : s.markSent(id)), 'u1');
    // a 429 gives the attempt back; another error keeps it; a failure is final
    for (const [key, refund] of [['r2', true], ['p2', false]] as const) {
      await step((s, id) => (s instanceof PgOutboxStore ? s.markSending(id, 'A') : s.markSending(id)), key);
      // p2's error (a timeout, say) may have let it reach Slack: to be looked up before its next try
      await step((s, id) => s.markRetry(id, NOW + 5000, 'ratelimited', 'A', refund, key === 'p2'), key);
    }
    expect(await both(async (s) => [(await s.get('r2'))!.verify, (await s.get('p2'))!.verify])).toEqual([undefined, true]);
    await step((s, id) => (s instanceof PgOutboxStore ? s.markSending(id, 'A') : s.markSending(id)), 'e1');
    await step((s, id) => (s instanceof PgOutboxStore ? s.markFailed(id, 'user_not_in_channel', 'A') : s.markFailed(id, 'user_not_in_channel')), 'e1');
    // a crash with a reply and a parent in flight
    for (const key of ['r1', 'p2']) await step((s, id) => (s instanceof PgOutboxStore ? s.markSending(id, 'A') : s.markSending(id)), key);
    expect(await both((s) => (s instanceof PgOutboxStore ? s.recoverInFlight('A') : s.recoverInFlight()))).toBe(2);

    const final = await rows();
    expect(final.map((r) => [r!.key, r!.state, r!.attempts, r!.ts ?? null])).toEqual([
      ['p1', 'sent', 1, '111.1'], ['r1', 'pending', 1, null], ['r2', 'pending', 0, null], ['u1', 'pending', 1, null],
      ['e1', 'failed', 1, null], ['p2', 'pending', 2, null], ['r3', 'pending', 0, null],
    ]);
    expect(final[3]!.args).toEqual({ text: 'v3' });
    expect(final.filter((r) => r!.verify).map((r) => r!.key)).toEqual(['r1', 'p2']);
    await both((s) => s.pendingCount());
    await both((s) => s.oldestPendingAt());
  });

  it('only the channel\'s lease holder sends; a sender whose lease was taken cannot record its send', async () => {
    const t = twins();
    const a = new PgOutboxStore(t.pg.pool);
    const b = new PgOutboxStore(t.pg2.pool);
    await a.upsert(post('p1', 'C1'));
    const id = (await a.get('p1'))!.id;
    expect(await takeDueChannels(t.pg.db, { owner: 'A', leaseMs: 60_000, max: 10 })).toEqual(['C1']);
    expect(await takeDueChannels(t.pg2.db, { owner: 'B', leaseMs: 60_000, max: 10 })).toEqual([]);
    expect(await b.due(NOW, 'B')).toEqual([]);
    expect((await a.due(NOW, 'A')).map((e) => e.key)).toEqual(['p1']);
    expect(await b.markSending(id, 'B')).toBe(false);
    expect(await a.markSending(id, 'A')).toBe(true);
    expect(await a.markSending(id, 'A')).toBe(false); // already in flight
    // A stalls past its lease mid-send; B takes the channel and recovers the parent (it must reach the thread)
    await t.pg.pool.query(`update slack_channel_leases set expires_at = 1 where channel = 'C1'`);
    expect(await acquireChannelLease(t.pg2.db, { channel: 'C1', owner: 'B', leaseMs: 60_000 })).toBe(true);
    expect(await b.recoverInFlight('B')).toBe(1);
    expect(await b.markSending(id, 'B')).toBe(true);
    expect(await a.markSent(id, '111.A', 'A')).toBe(false);
    expect(await a.markRetry(id, NOW, 'late', 'A')).toBe(false);
    expect(await b.markSent(id, '222.B', 'B')).toBe(true);
    expect(await b.markSent(id, '333.B', 'B')).toBe(false); // sent once
    expect(await a.get('p1')).toMatchObject({ state: 'sent', ts: '222.B', attempts: 2 });
  });

  it('a row left in flight in a channel nobody holds is recovered by the next poll of any sender', async () => {
    const t = twins();
    const a = new PgOutboxStore(t.pg.pool);
    await a.upsert(post('p1', 'C1'));
    await a.upsert(post('r1', 'C1', { ref: 'p1' }));
    await acquireChannelLease(t.pg.db, { channel: 'C1', owner: 'A', leaseMs: 60_000 });
    await a.markSending((await a.get('p1'))!.id, 'A');
    expect(await a.recoverOrphaned()).toBe(0); // A still holds C1
    await t.pg.pool.query(`update slack_channel_leases set expires_at = 1`);
    expect(await new PgOutboxStore(t.pg2.pool).recoverOrphaned()).toBe(1);
    // to be looked up in Slack (its sender may have posted it) before it is posted again
    expect(await a.get('p1')).toMatchObject({ state: 'pending', verify: true });
  });

  it('two senders polling, renewing before each post and handing channels over: every row recorded sent exactly once', async () => {
    vi.useRealTimers();
    const t = twins();
    const stores = { A: new PgOutboxStore(t.pg.pool), B: new PgOutboxStore(t.pg2.pool) };
    const dbs = { A: t.pg.db, B: t.pg2.db };
    const channels = ['C1', 'C2', 'C3'];
    const total = 36;
    for (let i = 0; i < total; i++) await stores.A.upsert(post(`m${i}`, channels[i % 3]!));
    const confirmed = new Map<number, string[]>();
    const leaseMs = 120;
    const sender = async (owner: 'A' | 'B') => {
      const s = stores[owner];
      for (let round = 0; round < 400 && (await s.pendingCount()) > 0; round++) {
        await s.recoverOrphaned();
        const mine = await takeDueChannels(dbs[owner], { owner, leaseMs, max: 2 });
        if (mine.length) await s.recoverInFlight(owner);
        for (const e of await s.due(Date.now(), owner)) {
          if (!(await renewChannelLease(dbs[owner], { channel: e.channel, owner, leaseMs }))) continue;
          if (!(await s.markSending(e.id, owner))) continue;
          // the Slack call; now and then one runs past the lease, and the other sender takes the channel
          await sleep(Math.random() < 0.15 ? leaseMs + 40 : Math.random() * 10);
          if (await s.markSent(e.id, `${owner}.${e.id}`, owner)) confirmed.set(e.id, [...(confirmed.get(e.id) ?? []), owner]);
        }
        await sleep(5);
      }
    };
    await Promise.all([sender('A'), sender('B')]);
    const rows = (await t.pg.pool.query('select id, state, ts from slack_outbox order by id')).rows as Array<{ id: number; state: string; ts: string }>;
    expect(rows.filter((r) => r.state !== 'sent')).toEqual([]);
    expect([...confirmed.values()].filter((owners) => owners.length !== 1)).toEqual([]);
    expect(confirmed.size).toBe(total);
    // the recorded ts is the one of the sender that recorded it
    for (const r of rows) expect(r.ts).toBe(`${confirmed.get(r.id)![0]}.${r.id}`);
    expect(new Set([...confirmed.values()].flat())).toEqual(new Set(['A', 'B']));
  }, 120_000);
}, 'pg_outbox');
