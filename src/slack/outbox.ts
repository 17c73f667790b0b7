import type { WebClient } from '@slack/web-api';
import { errorMessage } from '../redact.ts';
import type { Logger } from '../log.ts';
import type { OutboxEntry, OutboxStore } from './outbox-store.ts';

export { MemoryOutboxStore, SqliteOutboxStore } from './outbox-store.ts';
export type { OutboxEntry, OutboxKind, OutboxState, OutboxStore } from './outbox-store.ts';

/**
 * Persisted, paced outbox for every Slack write. Enqueueing is a synchronous local insert, so it never
 * delays an ack; sending happens on a timer.
 * - posts: at most one per `pacingMs` per channel (Slack's ~1 msg/s/channel for chat.postMessage);
 * - updates: coalesced per target message (last write wins), at most one per `updateIntervalMs` per message;
 * - at most one post in flight per channel, so a thread's replies keep their order; one update in flight per
 *   message; a few ephemerals at a time, which never hold up a channel's progress posts;
 * - pacing counts from when Slack answered the previous post too, so a slow request cannot bunch two posts;
 * - 429 → that kind of write waits Retry-After (posts: that channel; updates/ephemerals: all of them, as
 *   Slack limits those methods per workspace); 5xx/network → exponential backoff; ok:false → failed, logged.
 * - idempotency: `key` is unique; a post whose ts is recorded is never posted again.
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
}

const MAX_EPHEMERALS_IN_FLIGHT = 4;

/**
 * The enqueue side of the outbox: writes rows to the store and sends nothing. The job worker renders its
 * jobs' progress through one (`re-bot worker`, src/cli/worker.ts) into the store it shares with the Slack
 * process, whose `Outbox` is the only sender; `onWrite` nudges that sender. Idempotency is the store's: a
 * post key is inserted once (a second post with it is a no-op), an update row is last-write-wins.
 */
export class OutboxWriter {
  constructor(
    protected readonly store: OutboxStore,
    private readonly onWrite?: () => void,
  ) {}
  /** called after every enqueue */
  protected written(): void {
    this.onWrite?.();
  }

  /** `priority` > 0: sent before earlier-queued posts of the channel once its thread parent is posted */
  post(key: string, channel: string, args: Record<string, unknown>, threadOf?: string, priority = 0): void {
    this.store.upsert({ key, kind: 'post', channel, ref: threadOf, args, priority });
    this.written();
  }
  /** update the message posted under `postKey` (coalesced: last write wins) */
  update(postKey: string, channel: string, args: Record<string, unknown>): void {
    this.store.upsert({ key: `${postKey}#update`, kind: 'update', channel, ref: postKey, args });
    this.written();
  }
  ephemeral(key: string, channel: string, user: string, args: Record<string, unknown>): void {
    this.store.upsert({ key, kind: 'ephemeral', channel, args: { ...args, user } });
    this.written();
  }
  tsOf(postKey: string): string | undefined {
    return this.store.head(postKey)?.ts;
  }
  /** where and when a post went out (undefined until Slack answered it) */
  postedAt(postKey: string): { channel: string; ts: string } | undefined {
    const h = this.store.head(postKey);
    return h?.ts ? { channel: h.channel, ts: h.ts } : undefined;
  }
  /** a post with this key was enqueued at some point (sent or not) */
  has(postKey: string): boolean {
    return this.store.head(postKey) !== undefined;
  }
  /** the latest args written for a post (its pending update if any): lets a caller edit what it posted */
  argsOf(postKey: string): Record<string, unknown> | undefined {
    return this.store.get(`${postKey}#update`)?.args ?? this.store.get(postKey)?.args;
  }
}

export class Outbox extends OutboxWriter {
  private lastPost = new Map<string, number>();
  private lastUpdate = new Map<string, number>();
  /** key → time before which nothing of that kind is sent: `post:<channel>`, `update`, `ephemeral` */
  private holds = new Map<string, number>();
  private busy = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private idleWaiters: Array<() => void> = [];
  readonly pacingMs: number;
  readonly updateIntervalMs: number;

  constructor(private o: OutboxOptions) {
    super(o.store);
    this.pacingMs = o.pacingMs ?? 1000;
    this.updateIntervalMs = o.updateIntervalMs ?? this.pacingMs;
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
    const n = this.o.store.recoverInFlight();
    if (n) this.o.logger.warn({ entries: n }, 'outbox: writes in flight at the last stop have an unknown outcome; replies are not re-sent, thread parents and updates are');
    this.timer = setInterval(() => this.tick(), this.o.pollMs ?? Math.max(1, Math.min(200, this.pacingMs)));
    this.timer.unref();
    this.kick();
  }
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    while (this.busy.size) await new Promise((r) => setTimeout(r, 5));
  }
  /** resolves when nothing is pending (tests, graceful shutdown) */
  idle(timeoutMs = 30_000): Promise<void> {
    if (this.o.store.pendingCount() === 0 && this.busy.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`outbox not idle after ${timeoutMs} ms (${this.o.store.pendingCount()} pending)`)), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private kicked = false;
  private kick(): void {
    if (!this.running || this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.tick();
    });
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

  private tick(): void {
    if (!this.running) return;
    const now = Date.now();
    // a post that must wait keeps later posts of its channel waiting too (thread order)
    const postsWaiting = new Set<string>();
    for (const e of this.o.store.due(now)) {
      if (e.kind === 'post' && postsWaiting.has(e.channel)) continue;
      if (this.blocked(e, now)) {
        if (e.kind === 'post') postsWaiting.add(e.channel);
        continue;
      }
      const parent = e.ref ? this.o.store.head(e.ref) : undefined;
      if (e.ref && !parent?.ts) {
        if (!parent || parent.state === 'failed' || parent.state === 'unknown') this.o.store.markFailed(e.id, `target ${e.ref} was never posted`);
        if (e.kind === 'post') postsWaiting.add(e.channel);
        continue; // parent not posted yet
      }
      const slot = this.slotOf(e);
      this.busy.add(slot);
      if (e.kind === 'post') this.lastPost.set(e.channel, now);
      if (e.kind === 'update') this.lastUpdate.set(e.key, now);
      if (e.kind === 'ephemeral') this.ephemeralsInFlight++;
      void this.send(e).finally(() => {
        this.busy.delete(slot);
        if (e.kind === 'post') this.lastPost.set(e.channel, Date.now());
        if (e.kind === 'ephemeral') this.ephemeralsInFlight--;
        this.checkIdle();
        this.kick();
      });
    }
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.idleWaiters.length && this.o.store.pendingCount() === 0 && this.busy.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private holdKey(e: OutboxEntry): string {
    return e.kind === 'post' ? `post:${e.channel}` : e.kind;
  }

  private async send(due: OutboxEntry): Promise<void> {
    const e = this.o.store.get(due.key) ?? due;
    // counted before markSending: the memory store hands out its live row, which markSending increments
    const attempts = e.attempts + 1;
    this.o.store.markSending(e.id);
    const c = this.o.client;
    const args = e.args as any;
    try {
      if (e.kind === 'post') {
        const thread_ts = e.ref ? this.o.store.head(e.ref)!.ts : undefined;
        const r = await c.chat.postMessage({ ...args, channel: e.channel, ...(thread_ts ? { thread_ts } : {}) });
        this.o.store.markSent(e.id, r.ts);
      } else if (e.kind === 'update') {
        const ts = this.o.store.head(e.ref!)!.ts!;
        await c.chat.update({ ...args, channel: e.channel, ts });
        this.o.store.markSent(e.id);
      } else {
        await c.chat.postEphemeral({ ...args, channel: e.channel });
        this.o.store.markSent(e.id);
      }
    } catch (err: any) {
      const now = Date.now();
      if (err?.code === 'slack_webapi_rate_limited_error') {
        const until = now + (Number(err.retryAfter) || 1) * (this.o.retryAfterUnitMs ?? 1000);
        this.holds.set(this.holdKey(e), Math.max(until, this.holds.get(this.holdKey(e)) ?? 0));
        this.o.store.markRetry(e.id, until, 'ratelimited', true);
        return;
      }
      const transient = err?.code === 'slack_webapi_http_error' || err?.code === 'slack_webapi_request_error';
      if (transient && attempts < (this.o.maxAttempts ?? 8)) {
        const until = now + (this.o.baseBackoffMs ?? 500) * 2 ** (attempts - 1);
        if (e.kind === 'post') this.holds.set(this.holdKey(e), until);
        this.o.store.markRetry(e.id, until, errorMessage(err));
        return;
      }
      this.o.logger.error({ key: e.key, kind: e.kind, err: errorMessage(err), detail: err?.data?.errors }, 'outbox: Slack write failed');
      this.o.store.markFailed(e.id, errorMessage(err));
    }
  }
}
