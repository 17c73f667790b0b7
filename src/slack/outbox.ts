import type { WebClient } from '@slack/web-api';
import Database from 'better-sqlite3';
import { redactDeep, errorMessage } from '../redact.ts';
import type { Logger } from '../log.ts';

/**
 * Persisted, paced outbox for every Slack write.
 * - one write per `pacingMs` per channel (default 1000 ms: Slack's ~1 msg/s/channel)
 * - `update` entries are keyed per target message: enqueueing again replaces the pending args (last write wins)
 * - 429 → wait Retry-After; 5xx/network → exponential backoff; ok:false platform errors → failed (not retried)
 * - idempotency: `key` is unique; a `post` whose ts is recorded is never posted again.
 *   Crash edge: an entry left in `sending` (request out, outcome unknown) is NOT re-sent on restart —
 *   at-most-once. We prefer a missing reply to a duplicate one; the parent message is re-created only if it
 *   was never acknowledged, and later updates then target the new parent.
 */
export type OutboxKind = 'post' | 'update' | 'ephemeral';
export type OutboxState = 'pending' | 'sending' | 'sent' | 'failed' | 'unknown';

export interface OutboxEntry {
  id: number;
  key: string;
  kind: OutboxKind;
  channel: string;
  /** for update: key of the post whose ts is the target; for a threaded post: key of the parent post */
  ref?: string;
  args: Record<string, unknown>;
  state: OutboxState;
  ts?: string;
  attempts: number;
  notBefore: number;
  error?: string;
}

export interface OutboxStore {
  /** insert, or for an existing pending `update` with the same key replace its args; a sent post is left alone */
  upsert(e: Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>): void;
  get(key: string): OutboxEntry | undefined;
  due(now: number): OutboxEntry[];
  markSending(id: number): void;
  markSent(id: number, ts?: string): void;
  markRetry(id: number, notBefore: number, error: string): void;
  markFailed(id: number, error: string): void;
  /** on start-up: `sending` rows have an unknown outcome */
  recoverInFlight(): number;
  pendingCount(): number;
}

export class MemoryOutboxStore implements OutboxStore {
  private rows = new Map<string, OutboxEntry>();
  private seq = 0;
  upsert(e: Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>): void {
    const cur = this.rows.get(e.key);
    if (!cur) {
      this.rows.set(e.key, { ...e, id: ++this.seq, state: 'pending', attempts: 0, notBefore: 0 });
      return;
    }
    if (cur.kind === 'update') {
      cur.args = e.args;
      if (cur.state === 'sent' || cur.state === 'failed') cur.state = 'pending';
      // a row in `sending` gets its new args written after the in-flight call finishes (see markSent)
      if (cur.state === 'sending') (cur as OutboxEntry & { dirty?: boolean }).dirty = true;
    }
  }
  get(key: string) {
    return this.rows.get(key);
  }
  due(now: number) {
    return [...this.rows.values()].filter((r) => r.state === 'pending' && r.notBefore <= now).sort((a, b) => a.id - b.id);
  }
  private byId(id: number) {
    return [...this.rows.values()].find((r) => r.id === id)!;
  }
  markSending(id: number) {
    const r = this.byId(id);
    r.state = 'sending';
    r.attempts += 1;
  }
  markSent(id: number, ts?: string) {
    const r = this.byId(id) as OutboxEntry & { dirty?: boolean };
    r.ts = ts ?? r.ts;
    r.state = r.dirty ? 'pending' : 'sent';
    r.dirty = false;
  }
  markRetry(id: number, notBefore: number, error: string) {
    const r = this.byId(id);
    Object.assign(r, { state: 'pending', notBefore, error });
  }
  markFailed(id: number, error: string) {
    Object.assign(this.byId(id), { state: 'failed', error });
  }
  recoverInFlight() {
    let n = 0;
    for (const r of this.rows.values())
      if (r.state === 'sending') {
        r.state = r.kind === 'update' ? 'pending' : 'unknown';
        n++;
      }
    return n;
  }
  pendingCount() {
    return [...this.rows.values()].filter((r) => r.state === 'pending' || r.state === 'sending').length;
  }
}

/** SQLite outbox (table `slack_outbox`), usable until src/store provides its own `outbox` table. */
export class SqliteOutboxStore implements OutboxStore {
  constructor(private db: Database.Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS slack_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, channel TEXT NOT NULL,
      ref TEXT, args TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', ts TEXT, attempts INTEGER NOT NULL DEFAULT 0,
      not_before INTEGER NOT NULL DEFAULT 0, dirty INTEGER NOT NULL DEFAULT 0, error TEXT)`);
  }
  private row(r: any): OutboxEntry | undefined {
    if (!r) return undefined;
    return { id: r.id, key: r.key, kind: r.kind, channel: r.channel, ref: r.ref ?? undefined, args: JSON.parse(r.args), state: r.state, ts: r.ts ?? undefined, attempts: r.attempts, notBefore: r.not_before, error: r.error ?? undefined };
  }
  upsert(e: Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>) {
    const args = JSON.stringify(redactDeep(e.args));
    this.db
      .prepare(
        `INSERT INTO slack_outbox (key, kind, channel, ref, args) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET args = excluded.args,
           dirty = CASE WHEN slack_outbox.state = 'sending' THEN 1 ELSE slack_outbox.dirty END,
           state = CASE WHEN slack_outbox.state IN ('sent','failed') THEN 'pending' ELSE slack_outbox.state END
         WHERE slack_outbox.kind = 'update'`,
      )
      .run(e.key, e.kind, e.channel, e.ref ?? null, args);
  }
  get(key: string) {
    return this.row(this.db.prepare('SELECT * FROM slack_outbox WHERE key = ?').get(key));
  }
  due(now: number) {
    // args are loaded per entry at send time (get), not for every due row on every tick
    return this.db
      .prepare(`SELECT id, key, kind, channel, ref, '{}' AS args, state, ts, attempts, not_before, error FROM slack_outbox WHERE state = 'pending' AND not_before <= ? ORDER BY id`)
      .all(now)
      .map((r) => this.row(r)!);
  }
  markSending(id: number) {
    this.db.prepare(`UPDATE slack_outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?`).run(id);
  }
  markSent(id: number, ts?: string) {
    this.db.prepare(`UPDATE slack_outbox SET ts = COALESCE(?, ts), state = CASE WHEN dirty = 1 THEN 'pending' ELSE 'sent' END, dirty = 0 WHERE id = ?`).run(ts ?? null, id);
  }
  markRetry(id: number, notBefore: number, error: string) {
    this.db.prepare(`UPDATE slack_outbox SET state = 'pending', not_before = ?, error = ? WHERE id = ?`).run(notBefore, error, id);
  }
  markFailed(id: number, error: string) {
    this.db.prepare(`UPDATE slack_outbox SET state = 'failed', error = ? WHERE id = ?`).run(error, id);
  }
  recoverInFlight() {
    return this.db.prepare(`UPDATE slack_outbox SET state = CASE WHEN kind = 'update' THEN 'pending' ELSE 'unknown' END WHERE state = 'sending'`).run().changes;
  }
  pendingCount() {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM slack_outbox WHERE state IN ('pending','sending')`).get() as { n: number }).n;
  }
}

export interface OutboxOptions {
  client: WebClient;
  store: OutboxStore;
  logger: Logger;
  pacingMs?: number;
  pollMs?: number;
  maxAttempts?: number;
  baseBackoffMs?: number;
  /** length of one Retry-After "second" (tests shrink it; production 1000) */
  retryAfterUnitMs?: number;
}

export class Outbox {
  private lastWrite = new Map<string, number>();
  private busy = new Set<string>();
  private timer?: NodeJS.Timeout;
  private running = false;
  private idleWaiters: Array<() => void> = [];
  readonly pacingMs: number;

  constructor(private o: OutboxOptions) {
    this.pacingMs = o.pacingMs ?? 1000;
  }

  post(key: string, channel: string, args: Record<string, unknown>, threadOf?: string): void {
    this.o.store.upsert({ key, kind: 'post', channel, ref: threadOf, args });
    this.kick();
  }
  /** update the message posted under `postKey` (coalesced: last write wins) */
  update(postKey: string, channel: string, args: Record<string, unknown>): void {
    this.o.store.upsert({ key: `${postKey}#update`, kind: 'update', channel, ref: postKey, args });
    this.kick();
  }
  ephemeral(key: string, channel: string, user: string, args: Record<string, unknown>): void {
    this.o.store.upsert({ key, kind: 'ephemeral', channel, args: { ...args, user } });
    this.kick();
  }
  tsOf(postKey: string): string | undefined {
    return this.o.store.get(postKey)?.ts;
  }

  start(): void {
    this.running = true;
    const n = this.o.store.recoverInFlight();
    if (n) this.o.logger.warn({ entries: n }, 'outbox: in-flight writes from a previous run have an unknown outcome; posts are not re-sent (at-most-once)');
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

  private tick(): void {
    if (!this.running) return;
    const now = Date.now();
    for (const e of this.o.store.due(now)) {
      if (this.busy.has(e.channel)) continue;
      if (now - (this.lastWrite.get(e.channel) ?? 0) < this.pacingMs) continue;
      if (e.ref && !this.o.store.get(e.ref)?.ts) {
        const parent = this.o.store.get(e.ref);
        if (parent && (parent.state === 'failed' || parent.state === 'unknown')) this.o.store.markFailed(e.id, `target ${e.ref} was never posted`);
        continue; // parent not posted yet
      }
      this.busy.add(e.channel);
      this.lastWrite.set(e.channel, now);
      void this.send(e).finally(() => {
        this.busy.delete(e.channel);
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

  private async send(due: OutboxEntry): Promise<void> {
    const e = this.o.store.get(due.key) ?? due;
    this.o.store.markSending(e.id);
    const c = this.o.client;
    const args = e.args as any;
    try {
      if (e.kind === 'post') {
        const thread_ts = e.ref ? this.o.store.get(e.ref)!.ts : undefined;
        const r = await c.chat.postMessage({ ...args, channel: e.channel, ...(thread_ts ? { thread_ts } : {}) });
        this.o.store.markSent(e.id, r.ts);
      } else if (e.kind === 'update') {
        const ts = this.o.store.get(e.ref!)!.ts!;
        await c.chat.update({ ...args, channel: e.channel, ts });
        this.o.store.markSent(e.id);
      } else {
        await c.chat.postEphemeral({ ...args, channel: e.channel });
        this.o.store.markSent(e.id);
      }
    } catch (err: any) {
      const attempts = e.attempts + 1;
      if (err?.code === 'slack_webapi_rate_limited_error') {
        const wait = (Number(err.retryAfter) || 1) * (this.o.retryAfterUnitMs ?? 1000);
        this.lastWrite.set(e.channel, Date.now() + wait - this.pacingMs);
        this.o.store.markRetry(e.id, Date.now() + wait, 'ratelimited');
        return;
      }
      const transient = err?.code === 'slack_webapi_http_error' || err?.code === 'slack_webapi_request_error';
      if (transient && attempts < (this.o.maxAttempts ?? 8)) {
        const backoff = (this.o.baseBackoffMs ?? 500) * 2 ** (attempts - 1);
        this.o.store.markRetry(e.id, Date.now() + backoff, errorMessage(err));
        return;
      }
      this.o.logger.error({ key: e.key, kind: e.kind, err: errorMessage(err), detail: err?.data?.errors }, 'outbox: Slack write failed');
      this.o.store.markFailed(e.id, errorMessage(err));
    }
  }
}
