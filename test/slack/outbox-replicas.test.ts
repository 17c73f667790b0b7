/**
 * [postgres] Two replicas' senders on one database (two repositories, two pools on a throwaway cluster): the
 * `Outbox` of src/slack/outbox.ts over `repo.outbox` of src/store/pg/repo.ts, with a recording Slack client per
 * replica. Rows written by a third party (the job worker's enqueue-only writer) are picked up by polling. Every
 * message reaches Slack exactly once, each channel's thread keeps its order, and the pace of a channel holds across
 * both senders (only the lease holder sends it). A sender that dies between two posts (stops renewing, releases
 * nothing) has its channels taken over once its leases expire, with nothing lost or sent twice.
 * A sender killed with posts in flight: the replica that takes its channels over looks each up in Slack by its
 * metadata key, records the one Slack has and posts the one it has not, once.
 */
import { afterEach, expect, it } from 'vitest';
import type { WebClient } from '@slack/web-api';
import { Outbox, OutboxWriter } from '../../src/slack/outbox.ts';
import { pgRepository } from '../../src/store/pg/repo.ts';
import type { Repository } from '../../src/store/repo.ts';
import { describeTwins } from '../support/pg-twins.ts';
import { fakeLogger, type LogLine } from './outbox-fakes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PACING_MS = 150;
const LEASE_MS = 400;
const LATENCY_MS = 15;

interface Post {
  by: string;
  channel: string;
  text: string;
  threadTs?: string;
  at: number;
  doneAt?: number;
  ts?: string;
  metadata?: { event_type: string; event_payload: { key: string } };
}

/** the sender is killed with this post in flight: `landed` Slack created the message, else the request never left */
type Kill = (by: string, text: string) => 'landed' | 'lost' | undefined;
let lastTs = 0;
/** wall-clock seconds.micros, increasing, as Slack's ts */
const nextTs = () => {
  lastTs = Math.max(lastTs + 1, Date.now() * 1000);
  return (lastTs / 1e6).toFixed(6);
};

/**
 * One Slack for every replica: records each chat.postMessage with who sent it, when it arrived and when it was
 * answered, and answers the lookups (conversations.history newest first, conversations.replies) from those posts.
 */
function recordingSlack(by: string, posts: Post[], kill?: Kill, lookups?: string[]): WebClient {
  const postMessage = async (a: Record<string, any>) => {
    const dies = kill?.(by, a.text);
    if (dies === 'lost') return new Promise(() => undefined);
    const p: Post = { by, channel: a.channel, text: a.text, threadTs: a.thread_ts, at: Date.now(), metadata: a.metadata };
    posts.push(p);
    p.ts = nextTs();
    if (dies === 'landed') return new Promise(() => undefined);
    await sleep(LATENCY_MS);
    p.doneAt = Date.now();
    return { ok: true, channel: a.channel, ts: p.ts };
  };
  const shown = (p: Post, a: Record<string, any>) => ({ ts: p.ts, text: p.text, ...(a.include_all_metadata && p.metadata ? { metadata: p.metadata } : {}) });
  const history = async (a: Record<string, any>) => {
    lookups?.push(`${by} history ${a.channel}`);
    const list = posts.filter((p) => p.channel === a.channel && !p.threadTs && Number(p.ts) > Number(a.oldest)).reverse();
    return { ok: true, messages: list.map((p) => shown(p, a)), response_metadata: { next_cursor: '' } };
  };
  const replies = async (a: Record<string, any>) => {
    lookups?.push(`${by} replies ${a.channel}`);
    const list = posts.filter((p) => p.channel === a.channel && (p.ts === a.ts || (p.threadTs === a.ts && Number(p.ts) > Number(a.oldest))));
    return { ok: true, messages: list.map((p) => shown(p, a)), response_metadata: { next_cursor: '' } };
  };
  const other = async (a: Record<string, any>) => ({ ok: true, channel: a.channel, ts: a.ts });
  return { chat: { postMessage, update: other, postEphemeral: other }, conversations: { history, replies } } as unknown as WebClient;
}

describeTwins('[postgres] outbox senders on two replicas', (twins) => {
  let outboxes: Outbox[] = [];
  afterEach(async () => {
    for (const o of outboxes) await o.stop();
    outboxes = [];
  });

  function replicas(posts: Post[], logs: LogLine[], kill?: Kill, lookups?: string[]) {
    const t = twins();
    const repos: Record<'A' | 'B', Repository> = { A: pgRepository(t.pg), B: pgRepository(t.pg2) };
    const sender = (name: 'A' | 'B') => {
      const o = new Outbox({
        client: recordingSlack(name, posts, kill, lookups), store: repos[name].outbox, logger: fakeLogger(logs), owner: `replica-${name}`,
        pacingMs: PACING_MS, pollMs: 20, channelLeaseMs: LEASE_MS, maxChannels: 2,
      });
      outboxes.push(o);
      return o;
    };
    // the job worker's writer: enqueue only, on its own repository (a third connection pool user)
    const writer = new OutboxWriter(pgRepository(t.pg).outbox);
    return { t, A: sender('A'), B: sender('B'), writer };
  }

  const CHANNELS = ['C1', 'C2', 'C3', 'C4'];
  const REPLIES = 5;
  /** per channel: its parent, then its replies in order */
  const expectedTexts = (channel: string) => [`${channel}:parent`, ...Array.from({ length: REPLIES }, (_, i) => `${channel}:reply${i + 1}`)];

  async function enqueueAll(writer: OutboxWriter, pauseMs: number) {
    for (const c of CHANNELS) writer.post(`${c}:parent`, c, { text: `${c}:parent` });
    for (let i = 1; i <= REPLIES; i++) {
      for (const c of CHANNELS) writer.post(`${c}:reply${i}`, c, { text: `${c}:reply${i}` }, `${c}:parent`);
      await writer.flushed();
      if (pauseMs) await sleep(pauseMs);
    }
  }

  async function allSent(t: ReturnType<typeof replicas>['t'], timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await t.pg.pool.query(`select count(*)::int as n from slack_outbox where state <> 'sent'`);
      if (rows[0].n === 0) return;
      if (Date.now() > deadline) throw new Error(`${rows[0].n} outbox rows not sent after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  function expectExactlyOnceInOrderAndPaced(posts: Post[]) {
    for (const c of CHANNELS) {
      const inChannel = posts.filter((p) => p.channel === c).sort((x, y) => x.at - y.at);
      // exactly once each, in the order written
      expect(inChannel.map((p) => p.text)).toEqual(expectedTexts(c));
      // every reply in the parent's thread, whichever replica posted the parent
      const parent = inChannel[0]!;
      expect(inChannel.slice(1).every((p) => p.threadTs === parent.ts)).toBe(true);
      // ≤ 1 post per PACING_MS in the channel, counted from Slack's answer to the previous one, across both senders
      for (let i = 1; i < inChannel.length; i++) expect(inChannel[i]!.at - (inChannel[i - 1]!.doneAt ?? inChannel[i - 1]!.at)).toBeGreaterThanOrEqual(PACING_MS - 2);
    }
  }

  it('every row is posted exactly once, in thread order per channel, at most one post per pacing interval per channel across both senders', async () => {
    const posts: Post[] = [];
    const logs: LogLine[] = [];
    const { t, A, B, writer } = replicas(posts, logs);
    A.start();
    B.start();
    await enqueueAll(writer, 60);
    await allSent(t, 30_000);
    expectExactlyOnceInOrderAndPaced(posts);
    // the channels were shared out: both replicas sent
    expect(new Set(posts.map((p) => p.by))).toEqual(new Set(['A', 'B']));
    // and a channel was sent by one sender at a time: no two posts of one channel in flight together
    for (const c of CHANNELS) {
      const inChannel = posts.filter((p) => p.channel === c).sort((x, y) => x.at - y.at);
      for (let i = 1; i < inChannel.length; i++) expect(inChannel[i]!.at).toBeGreaterThanOrEqual(inChannel[i - 1]!.doneAt!);
    }
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);

  it('a sender that dies between posts (no renewal, no release) has its channels taken over after its leases expire: nothing lost, nothing doubled', async () => {
    const posts: Post[] = [];
    const logs: LogLine[] = [];
    const { t, A, B, writer } = replicas(posts, logs);
    A.start();
    await enqueueAll(writer, 0);
    // A alone holds at most 2 channels: let it post a few, then B joins for the others
    while (posts.filter((p) => p.by === 'A' && p.doneAt).length < 3) await sleep(5);
    B.start();
    while (posts.filter((p) => p.by === 'A' && p.doneAt).length < 5) await sleep(5);
    // A dies between two posts: nothing in flight, its poll stops, its leases are left to expire
    while ((A as any).busy.size > 0) await sleep(1);
    (A as any).running = false;
    clearInterval((A as any).timer);
    outboxes = outboxes.filter((o) => o !== A);
    const diedAt = Date.now();
    const aChannels = [...new Set(posts.filter((p) => p.by === 'A').map((p) => p.channel))];
    const lastByA = new Map(aChannels.map((c) => [c, Math.max(...posts.filter((p) => p.by === 'A' && p.channel === c).map((p) => p.at))]));

    await allSent(t, 30_000);
    expectExactlyOnceInOrderAndPaced(posts);
    expect(posts.filter((p) => p.by === 'A' && p.at > diedAt)).toEqual([]);
    // A's unfinished channels were taken over by B, and not before A's lease (renewed just before its last post) ran out
    const takenOver = aChannels.filter((c) => posts.some((p) => p.channel === c && p.by === 'B'));
    expect(takenOver.length).toBeGreaterThan(0);
    for (const c of takenOver) {
      const firstByB = Math.min(...posts.filter((p) => p.channel === c && p.by === 'B').map((p) => p.at));
      expect(firstByB - lastByA.get(c)!).toBeGreaterThanOrEqual(LEASE_MS - 20);
    }
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);

  it('a sender killed with posts in flight: the replica taking its channels over finds in Slack the one that landed (not posted again) and posts the one that did not, once; replies thread under the found parent', async () => {
    const posts: Post[] = [];
    const logs: LogLine[] = [];
    const lookups: string[] = [];
    const hung: string[] = [];
    // A dies mid-request twice: C1's thread parent reached Slack, C2's first reply did not
    const kill: Kill = (by, text) => {
      const dies = by !== 'A' ? undefined : text === 'C1:parent' ? 'landed' : text === 'C2:reply1' ? 'lost' : undefined;
      if (dies) hung.push(text);
      return dies;
    };
    const { t, A, B, writer } = replicas(posts, logs, kill, lookups);
    A.start();
    await enqueueAll(writer, 0);
    while (hung.length < 2) await sleep(5);
    // the process is killed: its requests never return, its leases are left to expire
    (A as any).running = false;
    clearInterval((A as any).timer);
    outboxes = outboxes.filter((o) => o !== A);
    const { rows } = await t.pg.pool.query(`select key from slack_outbox where state = 'sending' order by key`);
    expect(rows.map((r) => r.key)).toEqual(['C1:parent', 'C2:reply1']);
    B.start();

    await allSent(t, 30_000);
    expectExactlyOnceInOrderAndPaced(posts);
    expect(posts.filter((p) => p.text === 'C1:parent').map((p) => p.by)).toEqual(['A']);
    expect(posts.filter((p) => p.text === 'C2:reply1').map((p) => p.by)).toEqual(['B']);
    // B looked each up where it would be: the parent in the channel, the reply in its thread
    expect(lookups.filter((l) => l.startsWith('B ')).sort()).toEqual(['B history C1', 'B replies C2']);
    const parentRow = (await t.pg.pool.query(`select ts, verify from slack_outbox where key = 'C1:parent'`)).rows[0];
    expect(parentRow).toEqual({ ts: posts.find((p) => p.text === 'C1:parent')!.ts, verify: 0 });
    expect(logs.filter((l) => /had reached Slack/.test(l.msg)).map((l) => l.fields.key)).toEqual(['C1:parent']);
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);
}, 'outbox_replicas');
