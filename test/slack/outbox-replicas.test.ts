/**
 * [postgres] Two replicas' senders on one database (two repositories, two pools on a throwaway cluster): the
 * `Outbox` of src/slack/outbox.ts over `repo.outbox` of src/store/pg/repo.ts, with a recording Slack client per
 * replica. Rows written by a third party (the job worker's enqueue-only writer) are picked up by polling. Every
 * message reaches Slack exactly once, each channel's thread keeps its order, and the pace of a channel holds across
 * both senders (only the lease holder sends it). A sender that dies between two posts (stops renewing, releases
 * nothing) has its channels taken over once its leases expire, with nothing lost or sent twice.
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
}

/** a Slack that records every chat.postMessage with who sent it, when it arrived and when it was answered */
function recordingSlack(by: string, posts: Post[]): WebClient {
  let seq = 0;
  const postMessage = async (a: Record<string, any>) => {
    const p: Post = { by, channel: a.channel, text: a.text, threadTs: a.thread_ts, at: Date.now() };
    posts.push(p);
    await sleep(LATENCY_MS);
    p.doneAt = Date.now();
    p.ts = `${by}.${++seq}`;
    return { ok: true, channel: a.channel, ts: p.ts };
  };
  const other = async (a: Record<string, any>) => ({ ok: true, channel: a.channel, ts: a.ts });
  return { chat: { postMessage, update: other, postEphemeral: other } } as unknown as WebClient;
}

describeTwins('[postgres] outbox senders on two replicas', (twins) => {
  let outboxes: Outbox[] = [];
  afterEach(async () => {
    for (const o of outboxes) await o.stop();
    outboxes = [];
  });

  function replicas(posts: Post[], logs: LogLine[]) {
    const t = twins();
    const repos: Record<'A' | 'B', Repository> = { A: pgRepository(t.pg), B: pgRepository(t.pg2) };
    const sender = (name: 'A' | 'B') => {
      const o = new Outbox({
        client: recordingSlack(name, posts), store: repos[name].outbox, logger: fakeLogger(logs), owner: `replica-${name}`,
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
      for (let i = 1; i < inChannel.length; i++) expect(inChannel[i]!.at - inChannel[i - 1]!.doneAt!).toBeGreaterThanOrEqual(PACING_MS - 2);
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
}, 'outbox_replicas');
