import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/db.ts';

const migratedDb = () => openStore({ path: ':memory:' }).sqlite;
import { WebClient } from '@slack/web-api';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { Outbox, SqliteOutboxStore } from '../../src/slack/outbox.ts';
import { createLogger } from '../../src/log.ts';
import { until } from './harness.ts';

let emu: SlackEmulator;
let outbox: Outbox | undefined;
afterEach(async () => {
  await outbox?.stop();
  await emu?.close();
});

async function setup(db = migratedDb(), pacingMs = 5) {
  emu ??= await new SlackEmulator().start();
  const client = new WebClient('xoxb-t', { slackApiUrl: emu.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
  const store = new SqliteOutboxStore(db);
  outbox = new Outbox({ client, store, logger: createLogger({ test: 'outbox' }), pacingMs, retryAfterUnitMs: 10, baseBackoffMs: 5 });
  return { store, db };
}

describe('outbox', () => {
  it('coalesces updates (last write wins) and posts threaded replies after their parent', async () => {
    emu = await new SlackEmulator().start();
    await setup(undefined, 30);
    outbox!.post('p', 'C1', { text: 'v0' });
    outbox!.post('r1', 'C1', { text: 'reply' }, 'p');
    for (let i = 1; i <= 20; i++) outbox!.update('p', 'C1', { text: `v${i}` });
    outbox!.start();
    await outbox!.idle();
    const parent = emu.parents('C1');
    expect(parent).toHaveLength(1);
    expect(parent[0].text).toBe('v20');
    expect(emu.callsTo('chat.update').length).toBeLessThanOrEqual(2);
    expect(emu.replies('C1', parent[0].ts).map((m) => m.text)).toEqual(['reply']);
  });

  it('honours 429 Retry-After and retries 5xx with backoff; a platform error is not retried', async () => {
    emu = await new SlackEmulator().start();
    await setup();
    emu.injectFault({ method: 'chat.postMessage', kind: 429, count: 2, retryAfterSec: 3 });
    emu.injectFault({ method: 'chat.postMessage', kind: 503, count: 2 });
    outbox!.post('a', 'C1', { text: 'hello' });
    outbox!.post('bad', 'C2', { text: 'x', blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] });
    outbox!.start();
    await outbox!.idle();
    // after each 429 the next attempt to that channel waits Retry-After (3 s, scaled to 10 ms a second here)
    const posts = emu.calls.filter((c) => c.method === 'chat.postMessage');
    const limited = posts.filter((c) => c.status === 429);
    expect(limited).toHaveLength(2);
    for (const r of limited) {
      const next = posts.find((c) => c.at >= r.at && c !== r && c.args.channel === r.args.channel && posts.indexOf(c) > posts.indexOf(r));
      expect(next, 'a retry follows the 429').toBeDefined();
      expect(next!.at - r.at).toBeGreaterThanOrEqual(3 * 10 - 2);
    }
    expect(emu.parents('C1').map((m) => m.text)).toEqual(['hello']);
    const bad = emu.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === 'C2' && c.status === 200);
    expect(bad).toHaveLength(1);
    expect(bad[0].response.error).toBe('invalid_blocks');
  });

  it('a 429 storm does not use up the retries: a post rate-limited more often than maxAttempts is still delivered', async () => {
    emu = await new SlackEmulator().start();
    await setup();
    emu.injectFault({ method: 'chat.postMessage', kind: 429, count: 12, retryAfterSec: 1 });
    emu.injectFault({ method: 'chat.postMessage', kind: 503, count: 2 });
    outbox!.post('storm', 'C1', { text: 'after the storm' });
    outbox!.start();
    await outbox!.idle();
    expect(emu.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 429)).toHaveLength(12);
    expect(emu.parents('C1').map((m) => m.text)).toEqual(['after the storm']);
  });

  /** the rows a sender left `sending` when it died: a reply under `done` and a new thread parent, both in C1 */
  async function crashAfter(landed: boolean) {
    const db = migratedDb();
    const { store } = await setup(db);
    outbox!.post('done', 'C1', { text: 'posted once' });
    outbox!.start();
    await outbox!.idle();
    await outbox!.stop();
    const doneTs = (await store.get('done'))!.ts!;
    const client = new WebClient('xoxb-t', { slackApiUrl: emu.apiUrl, retryConfig: { retries: 0 } });
    for (const [key, ref, text] of [['lost-reply', 'done', 'maybe posted'], ['lost-parent', undefined, 'parent of a job']] as const) {
      await store.upsert({ key, kind: 'post', channel: 'C1', ref, args: { text } });
      await store.markSending((await store.get(key))!.id, 'me');
      // Slack created the message, the answer never reached the dead sender
      if (landed) await client.chat.postMessage({ channel: 'C1', text, ...(ref ? { thread_ts: doneTs } : {}), metadata: { event_type: 're_bot_outbox', event_payload: { key } } });
    }
    return { db, store, doneTs };
  }

  it('a post acknowledged before a crash is never posted again; posts in flight that Slack got are found by their key and not posted again', async () => {
    emu = await new SlackEmulator().start();
    const { db, store, doneTs } = await crashAfter(true);
    expect(emu.posts.get('C1')).toHaveLength(3);
    await setup(db);
    outbox!.post('done', 'C1', { text: 'posted once' });
    outbox!.start();
    await outbox!.idle();
    expect(emu.posts.get('C1')).toHaveLength(3);
    expect(emu.parents('C1').map((m) => m.text)).toEqual(['posted once', 'parent of a job']);
    expect(emu.replies('C1', doneTs).map((m) => m.text)).toEqual(['maybe posted']);
    expect(await store.get('lost-reply')).toMatchObject({ state: 'sent', ts: emu.replies('C1', doneTs)[0].ts });
    expect(await store.get('lost-parent')).toMatchObject({ state: 'sent', ts: emu.parents('C1')[1].ts });
    // a reply queued now threads under the parent found in Slack
    outbox!.post('next', 'C1', { text: 'next step' }, 'lost-parent');
    await outbox!.idle();
    expect(emu.replies('C1', emu.parents('C1')[1].ts).map((m) => m.text)).toEqual(['next step']);
  });

  it('posts in flight that never reached Slack are looked up, not found, and posted exactly once', async () => {
    emu = await new SlackEmulator().start();
    const { db, store, doneTs } = await crashAfter(false);
    await setup(db);
    outbox!.start();
    await outbox!.idle();
    expect(emu.posts.get('C1')).toHaveLength(3);
    expect(emu.parents('C1').map((m) => m.text)).toEqual(['posted once', 'parent of a job']);
    expect(emu.replies('C1', doneTs).map((m) => m.text)).toEqual(['maybe posted']);
    expect((await store.get('lost-reply'))!.state).toBe('sent');
    expect(emu.callsTo('conversations.replies').map((c) => c.response.ok)).toEqual([true]);
    expect(emu.callsTo('conversations.history').map((c) => c.response.ok)).toEqual([true]);
  });

  it('a bot without the history scopes: the lookup is refused (missing_scope), the parent is posted again, the reply is given up', async () => {
    emu = await new SlackEmulator({ scopes: ['chat:write', 'chat:write.public', 'commands', 'users:read', 'usergroups:read', 'im:write'] }).start();
    const { db, store, doneTs } = await crashAfter(true);
    await setup(db);
    outbox!.start();
    await outbox!.idle();
    expect(emu.callsTo('conversations.history').map((c) => c.response)).toMatchObject([{ ok: false, error: 'missing_scope', needed: 'channels:history' }]);
    expect(emu.parents('C1').map((m) => m.text)).toEqual(['posted once', 'parent of a job', 'parent of a job']);
    expect(emu.replies('C1', doneTs).map((m) => m.text)).toEqual(['maybe posted']);
    expect((await store.get('lost-reply'))!.state).toBe('unknown');
  });

  it('paces posts per channel but not updates: an update never waits behind the post pacing', async () => {
    emu = await new SlackEmulator().start();
    await setup(undefined, 400);
    outbox!.post('a', 'C1', { text: 'a' });
    outbox!.post('b', 'C2', { text: 'b' });
    outbox!.start();
    await outbox!.idle();
    const t0 = Date.now();
    outbox!.post('a2', 'C1', { text: 'a2' });
    outbox!.post('a3', 'C1', { text: 'a3' });
    outbox!.update('a', 'C1', { text: 'a edited' });
    outbox!.update('b', 'C2', { text: 'b edited' });
    await until(() => emu.callsTo('chat.update').length === 2, 2000, 'updates');
    expect(Date.now() - t0).toBeLessThan(300);
    await outbox!.idle();
    const c1 = emu.callsTo('chat.postMessage').filter((c) => c.args.channel === 'C1').map((c) => c.at);
    expect(c1[2] - c1[1]).toBeGreaterThanOrEqual(380);
    // the other channel was not held back by C1's pacing
    const c2 = emu.callsTo('chat.postMessage').find((c) => c.args.channel === 'C2')!;
    expect(c2.at - c1[0]).toBeLessThan(300);
  });

  it('a priority post (the approval request) goes before replies queued earlier, never before its thread parent', async () => {
    emu = await new SlackEmulator().start();
    await setup(undefined, 20);
    outbox!.post('p', 'C1', { text: 'parent' });
    for (let i = 1; i <= 4; i++) outbox!.post(`r${i}`, 'C1', { text: `step ${i}` }, 'p');
    outbox!.post('approval', 'C1', { text: 'approve?' }, 'p', 1);
    outbox!.post('r5', 'C1', { text: 'step 5' }, 'p');
    outbox!.start();
    await outbox!.idle();
    const parent = emu.parents('C1');
    expect(parent.map((m) => m.text)).toEqual(['parent']);
    expect(emu.replies('C1', parent[0].ts).map((m) => m.text)).toEqual(['approve?', 'step 1', 'step 2', 'step 3', 'step 4', 'step 5']);
  });
});

/** holds every chat.postMessage until released (the request has not reached Slack while held) */
function holdPosts(client: WebClient) {
  const orig = client.chat.postMessage.bind(client.chat);
  let release!: () => void;
  let held = new Promise<void>((r) => (release = r));
  const state = { calls: 0, release: () => release(), reset: () => { held = new Promise<void>((r) => (release = r)); } };
  (client.chat as any).postMessage = async (args: any) => {
    state.calls++;
    await held;
    return orig(args);
  };
  return state;
}

describe('outbox: a post in flight', () => {
  it('is not recorded as sent until chat.postMessage answers; its replies wait for the ts', async () => {
    emu = await new SlackEmulator().start();
    const db = migratedDb();
    const { store } = await setup(db);
    const hold = holdPosts((outbox as any).o.client);
    outbox!.post('p', 'C1', { text: 'parent' });
    outbox!.post('r', 'C1', { text: 'reply' }, 'p');
    outbox!.start();
    await until(() => hold.calls === 1, 3000, 'the post to start');
    await new Promise((r) => setTimeout(r, 50));
    expect((await store.get('p'))!.state).toBe('sending');
    expect(await outbox!.tsOf('p')).toBeUndefined();
    expect(await store.pendingCount()).toBe(2);
    expect(hold.calls).toBe(1); // the reply is not sent without its parent's ts
    hold.release();
    await outbox!.idle();
    const parents = emu.parents('C1');
    expect(parents.map((m) => m.text)).toEqual(['parent']);
    expect(await outbox!.tsOf('p')).toBe(parents[0].ts);
    expect((await store.get('p'))!.state).toBe('sent');
    expect(emu.replies('C1', parents[0].ts).map((m) => m.text)).toEqual(['reply']);
  });

  it('a stop and restart while chat.postMessage is in flight never posts the thread parent twice', async () => {
    emu = await new SlackEmulator().start();
    const db = migratedDb();
    const { store } = await setup(db);
    const hold = holdPosts((outbox as any).o.client);
    outbox!.post('p', 'C1', { text: 'job parent' });
    outbox!.post('r', 'C1', { text: 'step 1 done' }, 'p');
    outbox!.start();
    await until(() => hold.calls === 1, 3000, 'the post to start');
    const stopping = outbox!.stop();
    await new Promise((r) => setTimeout(r, 30));
    hold.release();
    await stopping; // waits for the answer
    expect(await outbox!.tsOf('p')).toBeDefined();
    await setup(db); // a new process on the same DB
    outbox!.start();
    await outbox!.idle();
    const parents = emu.parents('C1');
    expect(parents.map((m) => m.text)).toEqual(['job parent']);
    expect(emu.replies('C1', parents[0].ts).map((m) => m.text)).toEqual(['step 1 done']);
    expect((await store.get('r'))!.state).toBe('sent');
  });

  it('a crash while a thread parent is in flight (Slack never got it) posts it once after restart', async () => {
    emu = await new SlackEmulator().start();
    const db = migratedDb();
    await setup(db);
    const hold = holdPosts((outbox as any).o.client);
    outbox!.post('p', 'C1', { text: 'job parent' });
    outbox!.post('r', 'C1', { text: 'step 1 done' }, 'p');
    outbox!.start();
    await until(() => hold.calls === 1, 3000, 'the post to start');
    // the process dies here: the held request never completes, the first outbox is abandoned
    (outbox as any).running = false;
    clearInterval((outbox as any).timer);
    outbox = undefined;
    await setup(db);
    outbox!.start();
    await outbox!.idle();
    const parents = emu.parents('C1');
    expect(parents.map((m) => m.text)).toEqual(['job parent']);
    expect(emu.replies('C1', parents[0].ts).map((m) => m.text)).toEqual(['step 1 done']);
  });
});
