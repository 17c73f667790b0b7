/**
 * Start, stop, restart and idle on a fake clock: a write is recorded as sent only once Slack answered it; a stop
 * waits for what is in flight, so a restart never posts it twice; after a crash the in-flight writes are
 * recovered (updates re-sent; posts looked up in Slack by their metadata key, recorded when found, posted once
 * when not, and today's fallback when the lookup is refused) and the operator is told; nothing is sent after
 * stop(); idle() resolves when everything is out, or says how much is still pending.
 */
import { describe, expect, it, vi } from 'vitest';
import { WebAPIPlatformError } from '@slack/web-api';
import { STORES, at, fakeOutbox, settle, useStartedOutboxes } from './outbox-fakes.ts';
import { openStore } from '../../src/store/db.ts';
import { SqliteOutboxStore } from '../../src/slack/outbox.ts';

const started = useStartedOutboxes();

describe('outbox lifecycle (fake clock)', () => {
  it('a post is recorded as sent, with its ts, only when Slack answers', async () => {
    const { outbox, slack, store } = started(fakeOutbox());
    slack.latencyMs['chat.postMessage'] = 2000;
    expect(await outbox.has('p')).toBe(false);
    outbox.post('p', 'C1', { text: 'hello' });
    outbox.post('r', 'C1', { text: 'reply' }, 'p');
    expect(await outbox.has('p')).toBe(true);
    expect(await outbox.has('r')).toBe(true);
    await at(1999);
    expect(slack.to('chat.postMessage')).toHaveLength(1);
    expect(await store.head('p')).toEqual({ state: 'sending', ts: undefined, channel: 'C1' });
    expect(await outbox.tsOf('p')).toBeUndefined();
    expect(await outbox.postedAt('p')).toBeUndefined();
    expect(await store.pendingCount()).toBe(2);
    await at(2000);
    const ts = slack.to('chat.postMessage')[0].ts!;
    expect(await store.head('p')).toEqual({ state: 'sent', ts, channel: 'C1' });
    expect(await outbox.tsOf('p')).toBe(ts);
    expect(await outbox.postedAt('p')).toEqual({ channel: 'C1', ts });
  });

  it('a post never queued has no ts and no place; asking does not throw', async () => {
    const { outbox } = fakeOutbox();
    expect(await outbox.tsOf('nope')).toBeUndefined();
    expect(await outbox.postedAt('nope')).toBeUndefined();
    expect(await outbox.has('nope')).toBe(false);
  });

  it('a burst of writes wakes the outbox once, not once per write', async () => {
    const { outbox, slack, store } = fakeOutbox({ pollMs: 100 });
    let polls = 0;
    const due = store.due.bind(store);
    store.due = (now: number, owner: string) => (polls++, due(now, owner));
    outbox.start();
    await settle();
    polls = 0;
    for (let i = 0; i < 20; i++) outbox.post(`p${i}`, `C${i}`, { text: `${i}` });
    await at(50);
    expect(slack.posted()).toHaveLength(20);
    expect(polls).toBeLessThanOrEqual(3); // the burst, then once when the answers came back
    started.track(outbox);
  });

  it('argsOf gives what was last written for a post: its pending update, else the post', async () => {
    const { outbox } = fakeOutbox();
    expect(await outbox.argsOf('p')).toBeUndefined();
    outbox.post('p', 'C1', { text: 'v0', blocks: [] });
    expect(await outbox.argsOf('p')).toEqual({ text: 'v0', blocks: [] });
    outbox.update('p', 'C1', { text: 'v1' });
    expect(await outbox.argsOf('p')).toEqual({ text: 'v1' });
  });

  it('nothing is sent before start(), and nothing after stop() — not even what was queued just before it', async () => {
    const { outbox, slack } = fakeOutbox();
    outbox.post('a', 'C1', { text: 'a' });
    await at(5000);
    expect(slack.calls).toEqual([]);
    outbox.start();
    await settle();
    expect(slack.texts()).toEqual(['a']);
    outbox.post('b', 'C2', { text: 'b' });
    await outbox.stop();
    await at(20_000);
    expect(slack.texts()).toEqual(['a']);
    expect(vi.getTimerCount()).toBe(0); // no poll left running
  });

  it('its poll does not keep the process alive (a bot shutting down is not held open by the outbox)', async () => {
    vi.useRealTimers();
    const { outbox } = fakeOutbox();
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    outbox.start();
    const after = timers();
    await outbox.stop();
    expect(after).toBe(before);
  });

  it('stop() waits for the request in flight; a restart on the same database does not post it again', async () => {
    const db = openStore({ path: ':memory:' }).sqlite;
    const first = fakeOutbox({ store: new SqliteOutboxStore(db) });
    first.slack.latencyMs['chat.postMessage'] = 3000;
    first.outbox.start();
    first.outbox.post('p', 'C1', { text: 'job parent' });
    first.outbox.post('r', 'C1', { text: 'step 1 done' }, 'p');
    await at(1000);
    let stopped = false;
    const stopping = first.outbox.stop().then(() => (stopped = true));
    await at(2990);
    expect(stopped).toBe(false);
    await at(3010);
    await stopping;
    expect(await first.outbox.tsOf('p')).toBe(first.slack.posted()[0].ts);

    const second = started(fakeOutbox({ store: new SqliteOutboxStore(db) }));
    await at(6000);
    expect(second.slack.texts()).toEqual(['step 1 done']);
    expect(second.slack.posted()[0].args.thread_ts).toBe(first.slack.posted()[0].ts);
    expect(second.logs.filter((l) => l.level === 'warn')).toEqual([]); // nothing was in flight
  });

  /**
   * A sender dies with a reply (C1), a new thread parent (C2) and an update in flight. `landed`: Slack had created
   * both messages (their answers never came back); otherwise the requests never left (Slack has nothing).
   */
  async function crashWithPostsInFlight(landed: boolean) {
    const db = openStore({ path: ':memory:' }).sqlite;
    const crashed = fakeOutbox({ store: new SqliteOutboxStore(db), pacingMs: 10, pollMs: 10 });
    crashed.outbox.start();
    crashed.outbox.post('old', 'C1', { text: 'old job' });
    await at(100);
    if (landed) crashed.slack.hang('chat.postMessage');
    else crashed.slack.hold('chat.postMessage');
    crashed.slack.hold('chat.update');
    crashed.outbox.post('reply', 'C1', { text: 'maybe posted' }, 'old');
    crashed.outbox.post('parent', 'C2', { text: 'new job' });
    crashed.outbox.update('old', 'C1', { text: 'old job (edited)' });
    await at(200);
    expect(crashed.slack.calls.slice(1).map((c) => c.args.text)).toEqual(['maybe posted', 'new job', 'old job (edited)']);
    (crashed.outbox as any).running = false; // the process dies: the requests never return
    clearInterval((crashed.outbox as any).timer);
    return { db, crashed, oldTs: crashed.slack.posted()[0].ts! };
  }

  it('after a crash with posts Slack had created: the next sender finds them by their key, posts nothing twice, re-sends the update; replies thread under the found parent', async () => {
    const { db, crashed, oldTs } = await crashWithPostsInFlight(true);
    const after = started(fakeOutbox({ store: new SqliteOutboxStore(db), pacingMs: 10, pollMs: 10 }));
    // what Slack holds is the next sender's Slack too
    after.slack.messages.push(...crashed.slack.messages);
    await at(1000);
    expect(after.logs.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', fields: { entries: 3 }, msg: 'outbox: writes in flight at the last stop have an unknown outcome; posts are looked up in Slack before being posted again, updates are re-sent, ephemerals are not' },
    ]);
    expect(after.slack.to('chat.postMessage')).toEqual([]);
    // the reply was looked for in its thread, the parent in its channel, from (a margin before) when each was queued
    expect(after.slack.to('conversations.replies').map((c) => c.args)).toEqual([
      { channel: 'C1', ts: oldTs, include_all_metadata: true, oldest: ((1_800_000_000_000 + 100 - 5 * 60_000) / 1000).toFixed(6), limit: 200 },
    ]);
    expect(after.slack.to('conversations.history').map((c) => [c.args.channel, c.args.include_all_metadata])).toEqual([['C2', true]]);
    const found = crashed.slack.posted();
    expect(await after.store.head('reply')).toEqual({ state: 'sent', ts: found.find((c) => c.args.text === 'maybe posted')!.ts, channel: 'C1' });
    expect(await after.store.head('parent')).toEqual({ state: 'sent', ts: found.find((c) => c.args.text === 'new job')!.ts, channel: 'C2' });
    expect(after.slack.to('chat.update').map((c) => c.args.text)).toEqual(['old job (edited)']);
    // the next reply of the recovered parent threads under the ts found in Slack
    after.outbox.post('next', 'C2', { text: 'step done' }, 'parent');
    await at(2000);
    expect(after.slack.posted().map((c) => [c.args.text, c.args.thread_ts])).toEqual([['step done', found.find((c) => c.args.text === 'new job')!.ts]]);
  });

  it('after a crash before Slack got the posts: the next sender looks, finds nothing, and posts each exactly once', async () => {
    const { db, oldTs } = await crashWithPostsInFlight(false);
    const after = started(fakeOutbox({ store: new SqliteOutboxStore(db), pacingMs: 10, pollMs: 10 }));
    after.slack.messages.push({ channel: 'C1', ts: oldTs, text: 'old job', metadata: { event_type: 're_bot_outbox', event_payload: { key: 'old' } } });
    await at(1000);
    expect(after.slack.to('conversations.replies')).toHaveLength(1);
    expect(after.slack.to('conversations.history')).toHaveLength(1);
    expect(after.slack.posted().map((c) => [c.args.text, c.args.thread_ts, c.args.metadata.event_payload.key])).toEqual([
      ['maybe posted', oldTs, 'reply'], ['new job', undefined, 'parent'],
    ]);
    await at(3000);
    expect(after.slack.to('chat.postMessage')).toHaveLength(2);
    expect((await after.store.get('reply'))).toMatchObject({ state: 'sent', ts: after.slack.posted()[0].ts });
    expect(after.logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('after a crash, a lookup refused for a missing scope falls back: the thread parent is posted again, the reply is given up; a warning names the scope', async () => {
    const { db, oldTs } = await crashWithPostsInFlight(false);
    const after = fakeOutbox({ store: new SqliteOutboxStore(db), pacingMs: 10, pollMs: 10 });
    const missing = (needed: string) => new WebAPIPlatformError({ ok: false, error: 'missing_scope', needed, provided: 'chat:write,commands' } as any);
    after.slack.fail('conversations.replies', missing('channels:history'));
    after.slack.fail('conversations.history', missing('channels:history'));
    started(after);
    await at(1000);
    expect(after.slack.posted().map((c) => c.args.text)).toEqual(['new job']);
    expect(await after.store.get('reply')).toMatchObject({ state: 'unknown', error: 'lookup failed: An API error occurred: missing_scope' });
    const warned = after.logs.filter((l) => l.level === 'warn' && /could not look up/.test(l.msg));
    expect(warned.map((l) => [l.fields.key, l.fields.scopesNeeded])).toEqual([['reply', 'channels:history'], ['parent', 'channels:history']]);
    expect(warned[0].msg).toMatch(/needs the channels:history scope.*the reply is not re-sent/);
    expect(warned[1].msg).toMatch(/the thread parent is posted again/);
    // later rows of the channel are not held up by the given-up reply
    after.outbox.post('more', 'C1', { text: 'later reply' }, 'old');
    await at(2000);
    expect(after.slack.posted().map((c) => [c.args.text, c.args.thread_ts])).toEqual([['new job', undefined], ['later reply', oldTs]]);
  });

  it('idle() resolves at once when nothing is pending, and when the last write is answered', async () => {
    const { outbox, slack } = fakeOutbox({ pollMs: 100 });
    await outbox.idle(); // not even started
    started({ outbox, slack, store: undefined as any, logs: [] });
    slack.latencyMs['chat.postMessage'] = 1050;
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('b', 'C1', { text: 'b' });
    let doneAt = -1;
    void outbox.idle().then(() => (doneAt = Date.now() - 1_800_000_000_000));
    await at(2000);
    expect(doneAt).toBe(-1); // b is still waiting for its slot
    await at(5000);
    expect(slack.to('chat.postMessage').map((c) => [c.at, c.doneAt])).toEqual([[0, 1050], [2100, 3150]]);
    expect(doneAt).toBe(3150);
  });

  it('idle() still resolves when the outbox was stopped while the last write was in flight', async () => {
    const { outbox, slack } = started(fakeOutbox());
    slack.latencyMs['chat.postMessage'] = 500;
    outbox.post('a', 'C1', { text: 'a' });
    await settle();
    let idle = false;
    void outbox.idle().then(() => (idle = true));
    const stopping = outbox.stop();
    await at(600);
    await stopping;
    expect(idle).toBe(true);
  });

  it('idle() gives up after its timeout (default 30 s) and says how many writes are pending', async () => {
    const { outbox, slack } = started(fakeOutbox());
    slack.hold('chat.postMessage');
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('b', 'C1', { text: 'b' });
    const short = outbox.idle(1000).catch((e: Error) => e.message);
    let dflt: string | undefined;
    void outbox.idle().catch((e: Error) => (dflt = e.message));
    await at(1000);
    expect(await short).toBe('outbox not idle after 1000 ms (2 pending)');
    await at(29_999);
    expect(dflt).toBeUndefined();
    await at(30_000);
    expect(dflt).toBe('outbox not idle after 30000 ms (2 pending)');
    started.forgetAll(); // the held request never ends
    (outbox as any).running = false;
    clearInterval((outbox as any).timer);
  });
});

for (const [name, make] of STORES) {
  it(`a stop and restart while chat.postMessage is in flight never posts twice (${name} store)`, async () => {
    const store = make();
    const first = fakeOutbox({ store, pacingMs: 10, pollMs: 10 });
    first.slack.latencyMs['chat.postMessage'] = 700;
    first.outbox.start();
    for (const k of ['a', 'b', 'c']) first.outbox.post(k, 'C1', { text: k });
    await at(300);
    const stopping = first.outbox.stop();
    await at(800);
    await stopping;
    const second = started(fakeOutbox({ store, pacingMs: 10, pollMs: 10 }));
    await at(5000);
    expect([...first.slack.texts(), ...second.slack.texts()]).toEqual(['a', 'b', 'c']);
    expect(first.slack.calls.length + second.slack.calls.length).toBe(3);
  });
}
