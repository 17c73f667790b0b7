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

  it('a row read back has exactly the fields written, absent ones undefined (never null)', () => {
    const s = new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
    s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'x' }, priority: 3 });
    expect(s.get('p')).toStrictEqual({ id: 1, key: 'p', kind: 'post', channel: 'C1', ref: undefined, args: { text: 'x' }, state: 'pending', ts: undefined, attempts: 0, notBefore: 0, error: undefined });
    s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    expect(s.get('r')!.ref).toBe('p');
  });
});

describe('due() with priority posts and several channels (sqlite)', () => {
  const sqlite = () => new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite);
  const sent = (s: SqliteOutboxStore, key: string, ts: string) => {
    s.markSending(s.get(key)!.id);
    s.markSent(s.get(key)!.id, ts);
  };

  it('each channel offers its highest-priority post whose parent is posted, else its oldest post; oldest first overall', () => {
    const s = sqlite();
    s.upsert({ key: 'e', kind: 'ephemeral', channel: 'C9', args: { user: 'U1' } });
    s.upsert({ key: 'p1', kind: 'post', channel: 'C1', args: {} });
    sent(s, 'p1', '1.1');
    s.upsert({ key: 'r1', kind: 'post', channel: 'C1', ref: 'p1', args: {} });
    s.upsert({ key: 'x', kind: 'post', channel: 'C2', args: {} });
    s.upsert({ key: 'low', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 1 });
    s.upsert({ key: 'high', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 2 });
    s.upsert({ key: 'high2', kind: 'post', channel: 'C1', ref: 'p1', args: {}, priority: 2 });
    s.upsert({ key: 'p3', kind: 'post', channel: 'C3', args: {} });
    s.upsert({ key: 'a3', kind: 'post', channel: 'C3', ref: 'p3', args: {}, priority: 5 }); // its parent is not posted yet
    const now = Date.now();
    expect(s.due(now).map((e) => e.key)).toEqual(['e', 'x', 'high', 'p3']);
    sent(s, 'high', '1.2');
    expect(s.due(now).map((e) => e.key)).toEqual(['e', 'x', 'high2', 'p3']);
  });

  it('a priority post is offered even while its channel’s oldest post waits out a back-off, once', () => {
    const s = sqlite();
    s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: {} });
    sent(s, 'p', '1.1');
    s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    s.markRetry(s.get('r')!.id, Date.now() + 60_000, 'http 503');
    s.upsert({ key: 'approve', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 1 });
    s.upsert({ key: 'top', kind: 'post', channel: 'C2', args: {}, priority: 1 });
    expect(s.due(Date.now()).map((e) => e.key)).toEqual(['approve', 'top']);
  });

  it('one poll takes at most 200 updates and 8 ephemerals, oldest first; the rest wait for the next', () => {
    const s = sqlite();
    for (let i = 0; i < 205; i++) s.upsert({ key: `m${i}#update`, kind: 'update', channel: 'C1', ref: `m${i}`, args: {} });
    for (let i = 0; i < 10; i++) s.upsert({ key: `e${i}`, kind: 'ephemeral', channel: 'C1', args: { user: `U${i}` } });
    const due = s.due(Date.now());
    expect(due.filter((e) => e.kind === 'update').map((e) => e.key)).toEqual(Array.from({ length: 200 }, (_, i) => `m${i}#update`));
    expect(due.filter((e) => e.kind === 'ephemeral').map((e) => e.key)).toEqual(Array.from({ length: 8 }, (_, i) => `e${i}`));
    expect(s.pendingCount()).toBe(215);
  });
});

describe('due() order (memory store)', () => {
  it('a priority post goes first only once its parent is posted; a priority post without parent goes first at once', () => {
    const s = new MemoryOutboxStore();
    s.upsert({ key: 'p', kind: 'post', channel: 'C1', args: {} });
    s.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: {} });
    s.upsert({ key: 'a', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 1 });
    s.upsert({ key: 'b', kind: 'post', channel: 'C1', ref: 'p', args: {}, priority: 2 });
    s.upsert({ key: 'u', kind: 'update', channel: 'C1', ref: 'p', args: {}, priority: 9 } as any);
    s.upsert({ key: 'top', kind: 'post', channel: 'C2', args: {}, priority: 1 });
    expect(s.due(Date.now()).map((e) => e.key)).toEqual(['top', 'p', 'r', 'a', 'b', 'u']);
    s.markSending(s.get('p')!.id);
    s.markSent(s.get('p')!.id, '1.1');
    expect(s.due(Date.now()).map((e) => e.key)).toEqual(['b', 'a', 'top', 'r', 'u']);
  });
});

for (const [name, make] of STORES) {
  it(`an update coalesced while pending goes out once; one coalesced while in flight goes out again (${name} store)`, () => {
    const s = make();
    s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v1' } });
    s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v2' } });
    const id = s.get('p#update')!.id;
    s.markSending(id);
    s.markSent(id);
    expect(s.head('p#update')!.state).toBe('sent');
    s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v3' } });
    s.markSending(id);
    s.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'v4' } });
    s.markSent(id);
    expect(s.get('p#update')).toMatchObject({ state: 'pending', args: { text: 'v4' } });
  });

  it(`a priority reply whose parent was never queued is offered in its turn, not first (${name} store)`, () => {
    const s = make();
    s.upsert({ key: 'x', kind: 'post', channel: 'C1', args: {} });
    s.upsert({ key: 'orphan', kind: 'post', channel: 'C2', ref: 'missing', args: {}, priority: 1 });
    expect(s.due(Date.now()).map((e) => e.key)).toEqual(['x', 'orphan']);
  });

  it(`oldestPendingAt: when the oldest unfinished write was queued, or became pending again (${name} store)`, async () => {
    const s = make();
    s.upsert({ key: 'a', kind: 'post', channel: 'C1', args: {} });
    await at(1000);
    s.upsert({ key: 'b', kind: 'post', channel: 'C1', args: {} });
    s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: {} });
    expect(s.oldestPendingAt()).toBe(T0);
    s.markSending(s.get('a')!.id);
    expect(s.oldestPendingAt()).toBe(T0); // in flight is not done
    s.markSent(s.get('a')!.id, '1.1');
    expect(s.oldestPendingAt()).toBe(T0 + 1000);
    for (const k of ['b', 'b#update']) {
      s.markSending(s.get(k)!.id);
      s.markSent(s.get(k)!.id, k === 'b' ? '1.2' : undefined);
    }
    expect(s.oldestPendingAt()).toBeUndefined();
    await at(3000);
    s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'again' } });
    expect(s.oldestPendingAt()).toBe(T0 + 3000);
    s.markFailed(s.get('b#update')!.id, 'x');
    await at(4000);
    s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'once more' } });
    expect(s.oldestPendingAt()).toBe(T0 + 4000);
    await at(5000);
    s.upsert({ key: 'b#update', kind: 'update', channel: 'C1', ref: 'b', args: { text: 'coalesced' } });
    expect(s.oldestPendingAt()).toBe(T0 + 4000); // coalescing into a pending update keeps its age
    expect(s.get('b#update')).toMatchObject({ state: 'pending', args: { text: 'coalesced' } });
  });
}
