import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { WebClient } from '@slack/web-api';
import { errorMessage } from '../redact.ts';
import type { Logger } from '../log.ts';
import type { NewOutboxEntry, OutboxEntry, OutboxStore } from './outbox-store.ts';
import { ChannelLost, findPosted, HISTORY_SCOPES, outboxMetadata } from './outbox-verify.ts';

export { MemoryOutboxStore, SqliteOutboxStore } from './outbox-store.ts';
export type { NewOutboxEntry, OutboxEntry, OutboxKind, OutboxState, OutboxStore } from './outbox-store.ts';

/**
 * Persisted, paced outbox for every Slack write. Enqueueing never waits (on SQLite it is a synchronous local
 * insert), so it never delays an ack; sending happens on a timer.
 * - posts: at most one per `pacingMs` per channel (Slack's ~1 msg/s/channel for chat.postMessage);
 * - updates: coalesced per target message (last write wins), at most one per `updateIntervalMs` per message;
 * - at most one post in flight per channel, so a thread's replies keep their order; one update in flight per
 *   message; a few ephemerals at a time, which never hold up a channel's progress posts;
 * - pacing counts from when Slack answered the previous post too, so a slow request cannot bunch two posts;
 * - 429 → that kind of write waits Retry-After (posts: that channel; updates/ephemerals: all of them, as
 *   Slack limits those methods per workspace); 5xx/network → exponential backoff (a post is looked up in Slack
 *   by its key before the next try: it may have landed); ok:false → failed, logged.
 * - idempotency: `key` is unique; a post whose ts is recorded is never posted again. Every post carries its key in
 *   the message metadata; a post its sender left in flight (it died) is looked up in Slack by that key before it
 *   is posted again (src/slack/outbox-verify.ts), so it is neither doubled nor lost.
 * - several senders (replicas on PostgreSQL, docs/ha.md section 3): a sender only sends in the channels whose
 *   lease it holds (`takeChannels` at each poll, `renewChannel` before each Slack call), so the pace of a channel
 *   holds across replicas; when the store says it lost a channel (`mark*` false) it stops sending there at once.
 *   With one process (SQLite, memory) it holds every channel.
 */
export interface OutboxOptions {
  client: WebClient;
  store: OutboxStore;
  logger: Logger;
  pacingMs?: number;
  /** minimum gap between two updates of the same message (default: pacingMs) */
  updateIntervalMs?: number;
  pollMs?: number;
  maxAttempts?: number;
  baseBackoffMs?: number;
  /** length of one Retry-After "second" (tests shrink it; production 1000) */
  retryAfterUnitMs?: number;
  /** this sender in the channel leases (default host:pid:random, so a restarted process never takes an old lease for its own) */
  owner?: string;
  /** how long a channel stays this sender's without a renewal (default 10 s): how long a dead sender's channels wait */
  channelLeaseMs?: number;
  /** most channels this sender takes at once (default 1000) */
  maxChannels?: number;
  /** least time between the starts of two polls asked for by writes and finished sends (default 25 ms) */
  minPollGapMs?: number;
}

const MAX_EPHEMERALS_IN_FLIGHT = 4;

/**
 * The enqueue side of the outbox: writes rows to the store and sends nothing. The job worker renders its
 * jobs' progress through one (`re-bot worker`, src/cli/worker.ts) into the store it shares with the Slack
 * process, whose `Outbox` sends them (on PostgreSQL, any replica's sender: they poll); `onWrite` nudges that
 * sender. Idempotency is the store's: a post key is inserted once (a second post with it is a no-op), an update
 * row is last-write-wins. Writes are applied in the order they are made, and the reads (`has`, `tsOf`, …) see
 * every write made before them through this writer. A write that fails is logged (`logger`), never thrown.
 */
export class OutboxWriter {
  /** the last write: reads wait for it */
  private lastWrite: Promise<unknown> = Promise.resolve();
  constructor(
    protected readonly store: OutboxStore,
    private readonly onWrite?: () => void,
    private readonly log?: Pick<Logger, 'error'>,
  ) {}
  /** called after every enqueue */
  protected written(): void {
    this.onWrite?.();
  }

  private enqueue(e: NewOutboxEntry): void {
    let p: Promise<void>;
    try {
      p = this.store.upsert(e);
    } catch (err) {
      p = Promise.reject(err);
    }
    this.lastWrite = p.then(
      () => this.written(),
      (err) => this.log?.error({ err: errorMessage(err), key: e.key, kind: e.kind }, 'outbox: could not enqueue a Slack write'),
    );
  }
  /** resolves when every write made so far is in the store */
  flushed(): Promise<void> {
    return this.lastWrite.then(() => undefined);
  }

  /** `priority` > 0: sent before earlier-queued posts of the channel once its thread parent is posted */
  post(key: string, channel: string, args: Record<string, unknown>, threadOf?: string, priority = 0): void {
    this.enqueue({ key, kind: 'post', channel, ref: threadOf, args, priority });
  }
  /** update the message posted under `postKey` (coalesced: last write wins) */
  update(postKey: string, channel: string, args: Record<string, unknown>): void {
    this.enqueue({ key: `${postKey}#update`, kind: 'update', channel, ref: postKey, args });
  }
  ephemeral(key: string, channel: string, user: string, args: Record<string, unknown>): void {
    this.enqueue({ key, kind: 'ephemeral', channel, args: { ...args, user } });
  }
  async tsOf(postKey: string): Promise<string | undefined> {
    await this.flushed();
    return (await this.store.head(postKey))?.ts;
  }
  /** where and when a post went out (undefined until Slack answered it) */
  async postedAt(postKey: string): Promise<{ channel: string; ts: string } | undefined> {
    await this.flushed();
    const h = await this.store.head(postKey);
    return h?.ts ? { channel: h.channel, ts: h.ts } : undefined;
  }
  /** a post with this key was enqueued at some point (sent or not) */
  async has(postKey: string): Promise<boolean> {
    await this.flushed();
    return (await this.store.head(postKey)) !== undefined;
  }
  /** the latest args written for a post (its pending update if any): lets a caller edit what it posted */
  async argsOf(postKey: string): Promise<Record<string, unknown> | undefined> {
    await this.flushed();
    return (await this.store.get(`${postKey}#update`))?.args ?? (await this.store.get(postKey))?.args;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Outbox extends OutboxWriter {
  private lastPost = new Map<string, number>();
  private lastUpdate = new Map<string, number>();
  /** key → time before which nothing of that kind is sent: `post:<channel>`, `update`, `ephemeral` */
  private holds = new Map<string, number>();
  private busy = new Set<string>();
  /** requests in flight per channel: such a channel stays this sender's until they are recorded */
  private inFlight = new Map<string, number>();
  /** the channels this sender holds (as of its last poll) */
  private channels = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private polling = false;
  private pollAgain = false;
  private recovered: Promise<void> = Promise.resolve();
  private lastOrphanSweep = -Infinity;
  private idleWaiters: Array<() => void> = [];
  readonly pacingMs: number;
  readonly updateIntervalMs: number;
  readonly owner: string;
  private readonly leaseMs: number;

  constructor(private o: OutboxOptions) {
    super(o.store, undefined, o.logger);
    this.pacingMs = o.pacingMs ?? 1000;
    this.updateIntervalMs = o.updateIntervalMs ?? this.pacingMs;
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.leaseMs = o.channelLeaseMs ?? 10_000;
  }

  protected override written(): void {
    this.kick();
  }
  /** rows were written by another process (the job worker): look now rather than at the next poll */
  wake(): void {
    this.kick();
  }

  start(): void {
    this.running = true;
    this.recovered = this.o.store.recoverInFlight(this.owner).then(
      (n) => void (n && this.o.logger.warn({ entries: n }, 'outbox: writes in flight at the last stop have an unknown outcome; posts are looked up in Slack before being posted again, updates are re-sent, ephemerals are not')),
      (err) => this.o.logger.error({ err: errorMessage(err) }, 'outbox: recovery of the writes in flight failed'),
    );
    this.timer = setInterval(() => this.tick(), this.o.pollMs ?? Math.max(1, Math.min(200, this.pacingMs)));
    this.timer.unref();
    this.kick();
  }
  /**
   * Waits for the requests in flight, then gives the channels up: each one once `pacingMs` has passed since its
   * last post (its lease is shortened to that), so the next holder cannot post sooner.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    while (this.busy.size || this.polling) await sleep(5);
    const held = [...this.channels];
    this.channels.clear();
    for (const channel of held) {
      const left = (this.lastPost.get(channel) ?? -Infinity) + this.pacingMs - Date.now();
      const give = left > 0 ? this.o.store.renewChannel({ channel, owner: this.owner, leaseMs: Math.ceil(left) }) : this.o.store.releaseChannel({ channel, owner: this.owner });
      await give.catch((err) => this.o.logger.warn({ err: errorMessage(err), channel }, 'outbox: could not release a channel (its lease expires)'));
    }
  }
  /** resolves when nothing is pending (tests, graceful shutdown) */
  async idle(timeoutMs = 30_000): Promise<void> {
    if (this.busy.size === 0 && (await this.o.store.pendingCount()) === 0 && this.busy.size === 0) return;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        void this.o.store.pendingCount().then(
          (n) => reject(new Error(`outbox not idle after ${timeoutMs} ms (${n} pending)`)),
          (err) => reject(new Error(`outbox not idle after ${timeoutMs} ms (${errorMessage(err)})`)),
        );
      }, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private kicked = false;
  private lastPollAt = -Infinity;
  /**
   * A poll soon: in the next turn of the event loop, or once `minPollGapMs` has passed since the last poll began.
   * Under 20 running jobs every progress write and every finished send asked for one, and the polls' queries
   * were a tenth of the Slack process's CPU while it acked bursts of requests (bench/ack.ts profile); a post
   * waits for its channel's 1 s pace anyway.
   */
  private kick(): void {
    if (!this.running || this.kicked) return;
    this.kicked = true;
    const wait = this.lastPollAt + (this.o.minPollGapMs ?? 25) - Date.now();
    const go = () => {
      this.kicked = false;
      this.tick();
    };
    if (wait > 0) setTimeout(go, wait).unref();
    else setImmediate(go);
  }

  private held(key: string, now: number): boolean {
    return (this.holds.get(key) ?? 0) > now;
  }

  /** what an in-flight request occupies: a channel's post slot, one message's update slot, or an ephemeral slot */
  private slotOf(e: OutboxEntry): string {
    return e.kind === 'post' ? `post:${e.channel}` : e.kind === 'update' ? `update:${e.key}` : `ephemeral:${e.key}`;
  }

  /** true while pacing, a 429 hold or an in-flight request keeps an entry waiting */
  private blocked(e: OutboxEntry, now: number): boolean {
    if (this.busy.has(this.slotOf(e))) return true;
    if (e.kind === 'post') return this.held(`post:${e.channel}`, now) || now - (this.lastPost.get(e.channel) ?? -Infinity) < this.pacingMs;
    if (e.kind === 'update') return this.held('update', now) || now - (this.lastUpdate.get(e.key) ?? -Infinity) < this.updateIntervalMs;
    return this.held('ephemeral', now) || this.ephemeralsInFlight >= MAX_EPHEMERALS_IN_FLIGHT;
  }
  private ephemeralsInFlight = 0;

  /** one poll at a time: a tick asked for during a poll runs again right after it */
  private tick(): void {
    if (!this.running) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    void this.poll()
      .catch((err) => this.o.logger.error({ err: errorMessage(err) }, 'outbox: poll failed'))
      .finally(() => {
        this.polling = false;
        if (this.pollAgain) {
          this.pollAgain = false;
          this.kick();
        }
      });
  }

  /** the channel is another sender's now (or its lease ran out): stop sending there until a poll takes it again */
  private drop(channel: string): void {
    if (!this.channels.delete(channel)) return;
    this.o.logger.warn({ channel, owner: this.owner }, 'outbox: lost the channel to another sender; stopped sending there');
    void this.o.store.releaseChannel({ channel, owner: this.owner }).catch(() => undefined);
  }

  private async poll(): Promise<void> {
    this.lastPollAt = Date.now();
    await this.recovered;
    const s = this.o.store;
    const owner = this.owner;
    if (Date.now() - this.lastOrphanSweep >= this.leaseMs / 2) {
      this.lastOrphanSweep = Date.now();
      const n = await s.recoverOrphaned();
      if (n) this.o.logger.warn({ entries: n }, 'outbox: writes in flight in channels nobody holds (their sender stopped) have an unknown outcome; posts are looked up in Slack before being posted again, updates are re-sent, ephemerals are not');
    }
    const taken = await s.takeChannels({ owner, leaseMs: this.leaseMs, max: this.o.maxChannels ?? 1000 });
    const fresh = taken.filter((c) => !this.channels.has(c));
    this.channels = new Set([...taken, ...this.inFlight.keys()]);
    if (fresh.length) {
      // a previous holder may have died mid-request in these channels
      const n = await s.recoverInFlight(owner, fresh);
      if (n) this.o.logger.warn({ entries: n, channels: fresh }, 'outbox: writes in flight when their channel changed hands have an unknown outcome; posts are looked up in Slack before being posted again, updates are re-sent, ephemerals are not');
    }
    if (!this.running) return;
    const now = Date.now();
    // a post that must wait keeps later posts of its channel waiting too (thread order)
    const postsWaiting = new Set<string>();
    const lost = new Set<string>();
    for (const e of await s.due(now, owner)) {
      if (!this.running) return;
      if (lost.has(e.channel) || (e.kind === 'post' && postsWaiting.has(e.channel))) continue;
      if (this.blocked(e, now)) {
        if (e.kind === 'post') postsWaiting.add(e.channel);
        continue;
      }
      const parent = e.ref ? await s.head(e.ref) : undefined;
      if (!this.running) return;
      if (e.ref && !parent?.ts) {
        if (!parent || parent.state === 'failed' || parent.state === 'unknown') {
          if (!(await s.markFailed(e.id, `target ${e.ref} was never posted`, owner))) {
            lost.add(e.channel);
            this.drop(e.channel);
          }
        }
        if (e.kind === 'post') postsWaiting.add(e.channel);
        continue; // parent not posted yet
      }
      const slot = this.slotOf(e);
      this.busy.add(slot);
      this.inFlight.set(e.channel, (this.inFlight.get(e.channel) ?? 0) + 1);
      this.channels.add(e.channel);
      if (e.kind === 'post') this.lastPost.set(e.channel, now);
      if (e.kind === 'update') this.lastUpdate.set(e.key, now);
      if (e.kind === 'ephemeral') this.ephemeralsInFlight++;
      void this.send(e, parent?.ts)
        .catch((err) => this.o.logger.error({ err: errorMessage(err), key: e.key }, 'outbox: could not record a Slack write'))
        .finally(() => {
          this.busy.delete(slot);
          const n = (this.inFlight.get(e.channel) ?? 1) - 1;
          if (n > 0) this.inFlight.set(e.channel, n);
          else this.inFlight.delete(e.channel);
          if (e.kind === 'post') this.lastPost.set(e.channel, Date.now());
          if (e.kind === 'ephemeral') this.ephemeralsInFlight--;
          void this.checkIdle();
          this.kick();
        });
    }
    void this.checkIdle();
  }

  private async checkIdle(): Promise<void> {
    if (!this.idleWaiters.length || this.busy.size) return;
    if ((await this.o.store.pendingCount()) === 0 && this.busy.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private holdKey(e: OutboxEntry): string {
    return e.kind === 'post' ? `post:${e.channel}` : e.kind;
  }

  /** a `mark*` the store refused: the channel is not ours any more */
  private kept(ok: boolean, e: OutboxEntry): boolean {
    if (!ok) this.drop(e.channel);
    return ok;
  }

  /** `targetTs`: the ts of the message a reply threads under, or an update edits */
  private async send(due: OutboxEntry, targetTs: string | undefined): Promise<void> {
    const s = this.o.store;
    const owner = this.owner;
    // before each Slack call: only the channel's lease holder writes to it, so its pace holds across senders
    if (!this.kept(await s.renewChannel({ channel: due.channel, owner, leaseMs: this.leaseMs }), due)) return;
    const e = (await s.get(due.key)) ?? due;
    if (e.state !== 'pending') return; // dropped meanwhile (a full ephemeral backlog)
    const attempts = e.attempts + 1;
    if (!this.kept(await s.markSending(e.id, owner), e)) return;
    const c = this.o.client;
    const args = e.args as any;
    try {
      if (e.kind === 'post') {
        if (e.verify && !(await this.verified(e, targetTs, attempts))) return;
        const r = await c.chat.postMessage({ ...args, channel: e.channel, ...(targetTs ? { thread_ts: targetTs } : {}), metadata: outboxMetadata(e.key) });
        this.kept(await s.markSent(e.id, r.ts, owner), e);
      } else if (e.kind === 'update') {
        await c.chat.update({ ...args, channel: e.channel, ts: targetTs! });
        this.kept(await s.markSent(e.id, undefined, owner), e);
      } else {
        await c.chat.postEphemeral({ ...args, channel: e.channel });
        this.kept(await s.markSent(e.id, undefined, owner), e);
      }
    } catch (err: any) {
      const now = Date.now();
      if (err?.code === 'slack_webapi_rate_limited_error') {
        const until = now + (Number(err.retryAfter) || 1) * (this.o.retryAfterUnitMs ?? 1000);
        this.holds.set(this.holdKey(e), Math.max(until, this.holds.get(this.holdKey(e)) ?? 0));
        this.kept(await s.markRetry(e.id, until, 'ratelimited', owner, true), e);
        return;
      }
      const transient = err?.code === 'slack_webapi_http_error' || err?.code === 'slack_webapi_request_error';
      if (transient && attempts < (this.o.maxAttempts ?? 8)) {
        const until = now + (this.o.baseBackoffMs ?? 500) * 2 ** (attempts - 1);
        if (e.kind === 'post') this.holds.set(this.holdKey(e), until);
        // a post that timed out or got a 5xx may have reached Slack all the same: looked up before the next try
        this.kept(await s.markRetry(e.id, until, errorMessage(err), owner, false, e.kind === 'post'), e);
        return;
      }
      this.o.logger.error({ key: e.key, kind: e.kind, err: errorMessage(err), detail: err?.data?.errors }, 'outbox: Slack write failed');
      this.kept(await s.markFailed(e.id, errorMessage(err), owner), e);
    }
  }

  /**
   * A post left in flight by a sender that died (row `sending` → pending with `verify`, marked sending again by
   * the caller): true when it is to be posted now, false when this call settled the row. Found in Slack by its
   * metadata key → recorded sent with that ts, not posted. A 429 or a transient error → retried later like a
   * failed post (the lookup counts as an attempt). When the lookup cannot be made (a missing history scope, an
   * unknown channel, attempts used up, a channel too busy to search), today's rule: a thread parent is posted again
   * (possibly twice), a reply is given up as `unknown` (possibly lost); a warning names the scopes needed.
   */
  private async verified(e: OutboxEntry, targetTs: string | undefined, attempts: number): Promise<boolean> {
    const s = this.o.store;
    const owner = this.owner;
    let ts: string | undefined;
    try {
      ts = await findPosted(this.o.client, e, targetTs, () => s.renewChannel({ channel: e.channel, owner, leaseMs: this.leaseMs }));
    } catch (err: any) {
      if (err instanceof ChannelLost) {
        this.drop(e.channel);
        return false;
      }
      const now = Date.now();
      if (err?.code === 'slack_webapi_rate_limited_error') {
        const until = now + (Number(err.retryAfter) || 1) * (this.o.retryAfterUnitMs ?? 1000);
        this.holds.set(this.holdKey(e), Math.max(until, this.holds.get(this.holdKey(e)) ?? 0));
        this.kept(await s.markRetry(e.id, until, 'lookup ratelimited', owner, true), e);
        return false;
      }
      const transient = err?.code === 'slack_webapi_http_error' || err?.code === 'slack_webapi_request_error';
      if (transient && attempts < (this.o.maxAttempts ?? 8)) {
        const until = now + (this.o.baseBackoffMs ?? 500) * 2 ** (attempts - 1);
        this.holds.set(this.holdKey(e), until);
        this.kept(await s.markRetry(e.id, until, `lookup: ${errorMessage(err)}`, owner), e);
        return false;
      }
      const needed = err?.data?.needed ?? HISTORY_SCOPES.join(', ');
      const then = e.ref ? 'the reply is not re-sent (it may be missing from the thread)' : 'the thread parent is posted again (it may appear twice)';
      this.o.logger.warn(
        { key: e.key, channel: e.channel, err: errorMessage(err), scopesNeeded: needed },
        `outbox: could not look up in Slack a post left in flight by a stopped sender (reading the channel back needs the ${needed} scope); ${then}`,
      );
      if (!e.ref) return true;
      this.kept(await s.markUnknown(e.id, `lookup failed: ${errorMessage(err)}`, owner), e);
      return false;
    }
    if (!ts) return true; // Slack never got it: post it now
    this.o.logger.info({ key: e.key, channel: e.channel, ts }, 'outbox: a post left in flight by a stopped sender had reached Slack; recorded, not posted again');
    this.kept(await s.markSent(e.id, ts, owner), e);
    return false;
  }
}
