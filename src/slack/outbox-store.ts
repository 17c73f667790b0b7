import Database from 'better-sqlite3';
import { redactDeep } from '../redact.ts';

/**
 * Persistence for the Slack outbox. One row per logical message (`key` is its idempotency key).
 * Crash recovery (`recoverInFlight`): a row left in `sending` has an unknown outcome.
 *  - updates are re-sent (an update is idempotent);
 *  - posts (thread parents and replies) go back to pending with `verify` set: every post carries its key in the
 *    message metadata, so the sender looks for it in the channel first (src/slack/outbox-verify.ts) and records
 *    the ts it finds instead of posting again; only when that lookup cannot be made (a missing history scope) does
 *    it fall back to re-posting a parent (a possible duplicate: losing it would lose the whole thread) and giving
 *    a reply up as `unknown` (a possible loss: a missing reply beats a duplicate);
 *  - ephemerals become `unknown` and are NOT re-sent: they carry no metadata and cannot be read back.
 */
export type OutboxKind = 'post' | 'update' | 'ephemeral';
export type OutboxState = 'pending' | 'sending' | 'sent' | 'failed' | 'unknown';

/** what recovery does with a row left `sending` (the SQL of both dialects says the same) */
export const RECOVERED_STATE_SQL = `CASE WHEN kind = 'ephemeral' THEN 'unknown' ELSE 'pending' END`;
export const RECOVERED_VERIFY_SQL = `CASE WHEN kind = 'post' THEN 1 ELSE verify END`;

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
  enqueuedAt?: number;
  /** a post left in flight by a sender that died: look it up in Slack by its key before posting it */
  verify?: boolean;
  /**
   * posts only: a higher priority is sent before earlier-queued posts of the same channel, once its thread
   * parent is posted (an approval request overtakes step replies; replies of equal priority keep their order)
   */
  priority?: number;
}

export type NewOutboxEntry = Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>;

/**
 * Every operation is async (PostgreSQL answers over the network). The sender is named by `owner`: on PostgreSQL
 * several replicas send, only the holder of a channel's lease (`takeChannels`, `renewChannel`) moves that
 * channel's rows, and `mark*` return false once `owner` lost the channel (the sender then drops it). With one
 * process (SQLite, memory) that process holds every channel: leases are trivially held and `mark*` return true.
 * On SQLite and in memory each operation has done its work when the call returns (the promise only reports
 * it), so an enqueue never waits for anything and keeps the order of the calls.
 */
export interface OutboxStore {
  /** insert, or for an existing pending `update` with the same key replace its args; a sent post is left alone */
  upsert(e: NewOutboxEntry): Promise<void>;
  get(key: string): Promise<OutboxEntry | undefined>;
  /** state, channel and ts only, without loading the payload (the tick asks this of every reply's parent) */
  head(key: string): Promise<Pick<OutboxEntry, 'state' | 'ts' | 'channel'> | undefined>;
  /** what could be sent now in the channels `owner` holds */
  due(now: number, owner: string): Promise<OutboxEntry[]>;
  /** pending → sending, one more attempt; false: `owner` lost the channel, do not send */
  markSending(id: number, owner: string): Promise<boolean>;
  markSent(id: number, ts: string | undefined, owner: string): Promise<boolean>;
  /**
   * back to pending until notBefore; `refund` gives back the attempt (a 429 is Slack pacing us, not a failure);
   * `verify`: the post may have reached Slack (a timeout, a 5xx): look it up before posting it again
   */
  markRetry(id: number, notBefore: number, error: string, owner: string, refund?: boolean, verify?: boolean): Promise<boolean>;
  /** a pending or sending row → failed */
  markFailed(id: number, error: string, owner: string): Promise<boolean>;
  /** sending → unknown: a post recovered from a dead sender that could not be looked up (not re-sent) */
  markUnknown(id: number, error: string, owner: string): Promise<boolean>;
  /** a pending row → failed whoever holds its channel (the Slack process dropping an ephemeral it queued); false when it was no longer pending */
  dropPending(id: number, error: string): Promise<boolean>;
  /**
   * `sending` rows in the channels `owner` holds (only `channels`, when given) have an unknown outcome (see the
   * file comment): call at start, and after taking a channel before sending in it
   */
  recoverInFlight(owner: string, channels?: string[]): Promise<number>;
  /** rows left `sending` in channels nobody holds (PostgreSQL); 0 with one process, where recoverInFlight at start covers them */
  recoverOrphaned(): Promise<number>;
  pendingCount(): Promise<number>;
  /** when the oldest pending or in-flight write was enqueued (ms since epoch), or undefined when none is */
  oldestPendingAt(): Promise<number | undefined>;
  /** the sender's poll: channels with due pending rows that `owner` now holds (at most `max`; taken or renewed) */
  takeChannels(o: { owner: string; leaseMs: number; max: number }): Promise<string[]>;
  /** before each Slack call: false when `owner` no longer holds `channel` */
  renewChannel(o: { channel: string; owner: string; leaseMs: number }): Promise<boolean>;
  releaseChannel(o: { channel: string; owner: string }): Promise<void>;
}

/** channels with pending rows due at `now`, by name (one process holds them all) */
function dueChannels(rows: Iterable<Pick<OutboxEntry, 'state' | 'notBefore' | 'channel'>>, now: number, max: number): string[] {
  const set = new Set<string>();
  for (const r of rows) if (r.state === 'pending' && r.notBefore <= now) set.add(r.channel);
  return [...set].sort().slice(0, Math.max(0, Math.floor(max)));
}

/** The outbox in memory (tests, and a bot without a database): one process, so every channel is its own. */
export class MemoryOutboxStore implements OutboxStore {
  private rows = new Map<string, OutboxEntry>();
  private seq = 0;
  async upsert(e: NewOutboxEntry): Promise<void> {
    const cur = this.rows.get(e.key);
    if (!cur) {
      this.rows.set(e.key, { ...e, id: ++this.seq, state: 'pending', attempts: 0, notBefore: 0, enqueuedAt: Date.now() });
      return;
    }
    if (cur.kind === 'update') {
      cur.args = e.args;
      if (cur.state === 'sent' || cur.state === 'failed') Object.assign(cur, { state: 'pending', enqueuedAt: Date.now() });
      // a row in `sending` gets its new args written after the in-flight call finishes (see markSent)
      if (cur.state === 'sending') (cur as OutboxEntry & { dirty?: boolean }).dirty = true;
    }
  }
  /** a copy, as a database read would give */
  async get(key: string) {
    const r = this.rows.get(key);
    return r && { ...r };
  }
  async head(key: string) {
    const r = this.rows.get(key);
    return r && { state: r.state, ts: r.ts, channel: r.channel };
  }

  async due(now: number, _owner?: string) {
    const rank = (r: OutboxEntry) => (r.kind === 'post' && (r.priority ?? 0) > 0 && (!r.ref || this.rows.get(r.ref)?.ts) ? r.priority! : 0);
    return [...this.rows.values()].filter((r) => r.state === 'pending' && r.notBefore <= now).sort((a, b) => rank(b) - rank(a) || a.id - b.id).map((r) => ({ ...r }));
  }
  private byId(id: number) {
    return [...this.rows.values()].find((r) => r.id === id)!;
  }
  async markSending(id: number, _owner?: string) {
    const r = this.byId(id);
    r.state = 'sending';
    r.attempts += 1;
    return true;
  }
  async markSent(id: number, ts?: string, _owner?: string) {
    const r = this.byId(id) as OutboxEntry & { dirty?: boolean };
    r.ts = ts ?? r.ts;
    r.state = r.dirty ? 'pending' : 'sent';
    r.dirty = false;
    delete r.verify;
    return true;
  }
  async markRetry(id: number, notBefore: number, error: string, _owner?: string, refund = false, verify = false) {
    const r = this.byId(id);
    Object.assign(r, { state: 'pending', notBefore, error, attempts: r.attempts - (refund ? 1 : 0) });
    if (verify) r.verify = true;
    return true;
  }
  async markFailed(id: number, error: string, _owner?: string) {
    Object.assign(this.byId(id), { state: 'failed', error });
    return true;
  }
  async markUnknown(id: number, error: string, _owner?: string) {
    const r = this.byId(id);
    if (r.state !== 'sending') return false;
    Object.assign(r, { state: 'unknown', error });
    return true;
  }
  async dropPending(id: number, error: string) {
    const r = this.byId(id);
    if (r?.state !== 'pending') return false;
    Object.assign(r, { state: 'failed', error });
    return true;
  }
  async recoverInFlight(_owner?: string, channels?: string[]) {
    let n = 0;
    for (const r of this.rows.values())
      if (r.state === 'sending' && (!channels || channels.includes(r.channel))) {
        r.state = r.kind === 'ephemeral' ? 'unknown' : 'pending';
        if (r.kind === 'post') r.verify = true;
        n++;
      }
    return n;
  }
  async recoverOrphaned() {
    return 0;
  }
  async pendingCount() {
    return [...this.rows.values()].filter((r) => r.state === 'pending' || r.state === 'sending').length;
  }
  async oldestPendingAt() {
    const at = [...this.rows.values()].filter((r) => r.state === 'pending' || r.state === 'sending').map((r) => r.enqueuedAt ?? 0);
    return at.length ? Math.min(...at) : undefined;
  }
  async takeChannels(o: { max: number }) {
    return dueChannels(this.rows.values(), Date.now(), o.max);
  }
  async renewChannel() {
    return true;
  }
  async releaseChannel() {}
}

/** SQLite outbox on the `slack_outbox` table of the store's migrations (src/store/schema.ts). */
export class SqliteOutboxStore implements OutboxStore {
  // prepared once: the outbox runs on every enqueue and every finished send, next to the acks
  private q;
  constructor(db: Database.Database) {
    const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'slack_outbox'").get();
    if (!exists) throw new Error('slack_outbox table missing: open the database with openStore() so its migrations run');
    this.q = {
      upsert: db.prepare(
        `INSERT INTO slack_outbox (key, kind, channel, ref, args, enqueued_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET args = excluded.args,
           dirty = CASE WHEN slack_outbox.state = 'sending' THEN 1 ELSE slack_outbox.dirty END,
           enqueued_at = CASE WHEN slack_outbox.state IN ('sent','failed') THEN excluded.enqueued_at ELSE slack_outbox.enqueued_at END,
           state = CASE WHEN slack_outbox.state IN ('sent','failed') THEN 'pending' ELSE slack_outbox.state END
         WHERE slack_outbox.kind = 'update'`,
      ),
      get: db.prepare('SELECT * FROM slack_outbox WHERE key = ?'),
      head: db.prepare('SELECT state, ts, channel FROM slack_outbox WHERE key = ?'),
      // Only what could be sent now, args loaded per entry at send time: each channel's oldest pending post
      // (later posts wait behind it, keeping thread order) unless a priority post whose parent is posted is
      // pending (it goes first), due updates, and the next few due ephemerals.
      duePosts: db.prepare(
        `SELECT id, key, kind, channel, ref, '{}' AS args, state, ts, attempts, not_before, error FROM slack_outbox
         WHERE id IN (SELECT MIN(id) FROM slack_outbox WHERE state = 'pending' AND kind = 'post' GROUP BY channel) AND not_before <= ?`,
      ),
      duePriority: db.prepare(
        `SELECT id, key, kind, channel, ref, '{}' AS args, state, ts, attempts, not_before, error, priority FROM slack_outbox c
         WHERE state = 'pending' AND kind = 'post' AND priority > 0 AND not_before <= ?
           AND (ref IS NULL OR EXISTS (SELECT 1 FROM slack_outbox p WHERE p.key = c.ref AND p.ts IS NOT NULL))
         ORDER BY priority DESC, id`,
      ),
      dueOther: db.prepare(
        `SELECT id, key, kind, channel, ref, '{}' AS args, state, ts, attempts, not_before, error FROM slack_outbox
         WHERE state = 'pending' AND kind = ? AND not_before <= ? ORDER BY id LIMIT ?`,
      ),
      sending: db.prepare(`UPDATE slack_outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?`),
      sent: db.prepare(`UPDATE slack_outbox SET ts = COALESCE(?, ts), state = CASE WHEN dirty = 1 THEN 'pending' ELSE 'sent' END, dirty = 0, verify = 0 WHERE id = ?`),
      retry: db.prepare(`UPDATE slack_outbox SET state = 'pending', not_before = ?, error = ?, attempts = attempts - ?, verify = MAX(verify, ?) WHERE id = ?`),
      failed: db.prepare(`UPDATE slack_outbox SET state = 'failed', error = ? WHERE id = ?`),
      unknown: db.prepare(`UPDATE slack_outbox SET state = 'unknown', error = ? WHERE id = ? AND state = 'sending'`),
      drop: db.prepare(`UPDATE slack_outbox SET state = 'failed', error = ? WHERE id = ? AND state = 'pending'`),
      recover: db.prepare(`UPDATE slack_outbox SET state = ${RECOVERED_STATE_SQL}, verify = ${RECOVERED_VERIFY_SQL} WHERE state = 'sending'`),
      recoverIn: db.prepare(
        `UPDATE slack_outbox SET state = ${RECOVERED_STATE_SQL}, verify = ${RECOVERED_VERIFY_SQL}
         WHERE state = 'sending' AND channel IN (SELECT value FROM json_each(?))`,
      ),
      channels: db.prepare(`SELECT DISTINCT channel FROM slack_outbox WHERE state = 'pending' AND not_before <= ? ORDER BY channel LIMIT ?`),
      pending: db.prepare(`SELECT COUNT(*) AS n FROM slack_outbox WHERE state IN ('pending','sending')`),
      oldest: db.prepare(`SELECT MIN(enqueued_at) AS at FROM slack_outbox WHERE state IN ('pending','sending')`),
    };
  }
  private row(r: any): OutboxEntry | undefined {
    if (!r) return undefined;
    return {
      id: r.id, key: r.key, kind: r.kind, channel: r.channel, ref: r.ref ?? undefined, args: JSON.parse(r.args), state: r.state, ts: r.ts ?? undefined, attempts: r.attempts, notBefore: r.not_before, error: r.error ?? undefined,
      ...(r.enqueued_at !== undefined ? { enqueuedAt: r.enqueued_at } : {}), ...(r.verify ? { verify: true } : {}),
    };
  }
  async upsert(e: NewOutboxEntry) {
    this.q.upsert.run(e.key, e.kind, e.channel, e.ref ?? null, JSON.stringify(redactDeep(e.args)), Date.now(), e.priority ?? 0);
  }
  async get(key: string) {
    return this.row(this.q.get.get(key));
  }
  async head(key: string) {
    const r = this.q.head.get(key) as { state: OutboxEntry['state']; ts: string | null; channel: string } | undefined;
    return r && { state: r.state, ts: r.ts ?? undefined, channel: r.channel };
  }
  async due(now: number, _owner?: string) {
    type Row = { channel: string };
    const first = new Map<string, Row>();
    for (const r of this.q.duePriority.all(now) as Row[]) if (!first.has(r.channel)) first.set(r.channel, r);
    const posts = (this.q.duePosts.all(now) as Row[]).map((r) => first.get(r.channel) ?? r);
    for (const [channel, r] of first) if (!posts.some((p) => p.channel === channel)) posts.push(r);
    return [...posts, ...this.q.dueOther.all('update', now, 200), ...this.q.dueOther.all('ephemeral', now, 8)]
      .map((r) => this.row(r)!)
      .sort((a, b) => a.id - b.id);
  }
  async markSending(id: number, _owner?: string) {
    this.q.sending.run(id);
    return true;
  }
  async markSent(id: number, ts?: string, _owner?: string) {
    this.q.sent.run(ts ?? null, id);
    return true;
  }
  async markRetry(id: number, notBefore: number, error: string, _owner?: string, refund = false, verify = false) {
    this.q.retry.run(notBefore, error, refund ? 1 : 0, verify ? 1 : 0, id);
    return true;
  }
  async markFailed(id: number, error: string, _owner?: string) {
    this.q.failed.run(error, id);
    return true;
  }
  async markUnknown(id: number, error: string, _owner?: string) {
    return this.q.unknown.run(error, id).changes === 1;
  }
  async dropPending(id: number, error: string) {
    return this.q.drop.run(error, id).changes === 1;
  }
  async recoverInFlight(_owner?: string, channels?: string[]) {
    return (channels ? this.q.recoverIn.run(JSON.stringify(channels)) : this.q.recover.run()).changes;
  }
  async recoverOrphaned() {
    return 0;
  }
  async pendingCount() {
    return (this.q.pending.get() as { n: number }).n;
  }
  async oldestPendingAt() {
    return (this.q.oldest.get() as { at: number | null }).at ?? undefined;
  }
  async takeChannels(o: { max: number }) {
    return (this.q.channels.all(Date.now(), Math.max(0, Math.floor(o.max))) as Array<{ channel: string }>).map((r) => r.channel);
  }
  async renewChannel() {
    return true;
  }
  async releaseChannel() {}
}
