/**
 * The Slack outbox rows on PostgreSQL: the `OutboxStore` of src/slack/outbox-store.ts made async, same SQL
 * semantics (upsert of pending updates, `dirty` while sending, thread order per channel, priority posts, the
 * crash recovery rules), plus the sender lease of src/store/pg/claim.ts on every write that sends.
 *
 * Several replicas send: only the holder of a channel's lease (`slack_channel_leases`, taken by
 * `takeDueChannels`) may move that channel's rows. `due` returns rows of the channels `owner` holds;
 * `markSending` moves a row pending → sending and `markSent` sending → sent/pending, each only while `owner`'s
 * lease on the row's channel runs (by the database clock) and from the expected state, in one statement. So two
 * senders never both mark one row sending, and a sender whose lease was taken cannot record a send (it returns
 * false and must drop the channel). `recoverInFlight` applies the SQLite rules to the channels `owner` holds,
 * never to rows another live sender has in flight.
 */
import { redactDeep } from '../../redact.ts';
import { RECOVERED_STATE_SQL, RECOVERED_VERIFY_SQL, type OutboxEntry } from '../../slack/outbox-store.ts';
import type { PgStore } from './open.ts';

type Pool = PgStore['pool'];

const NOW_MS = `(extract(epoch from statement_timestamp()) * 1000)::bigint`;
/** `owner` ($n) holds the live lease of the row's channel */
const holds = (n: number) => `exists (select 1 from slack_channel_leases l where l.channel = slack_outbox.channel and l.owner = $${n} and l.expires_at > ${NOW_MS})`;
const COLS = `id, key, kind, channel, ref, '{}' AS args, state, ts, attempts, not_before, error`;

function row(r: Record<string, any> | undefined): OutboxEntry | undefined {
  if (!r) return undefined;
  return {
    id: r.id, key: r.key, kind: r.kind, channel: r.channel, ref: r.ref ?? undefined, args: JSON.parse(r.args), state: r.state, ts: r.ts ?? undefined, attempts: r.attempts, notBefore: Number(r.not_before), error: r.error ?? undefined,
    ...(r.enqueued_at != null ? { enqueuedAt: Number(r.enqueued_at) } : {}), ...(r.verify ? { verify: true } : {}),
  };
}

export class PgOutboxStore {
  constructor(private readonly pool: Pool) {}
  /** the last enqueue: the next one waits for it (below) */
  private lastWrite: Promise<unknown> = Promise.resolve();

  /**
   * Insert, or for an existing `update` with the same key replace its args (see OutboxStore.upsert). Enqueues are
   * written one after the other, in the order of the calls: the pool would otherwise run them on several
   * connections at once, and a thread's replies could get ids (their send order) out of the order they were written.
   */
  upsert(e: Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>, now = Date.now()): Promise<void> {
    const write = () => this.insert(e, now);
    const p = this.lastWrite.then(write, write);
    this.lastWrite = p.catch(() => undefined);
    return p;
  }

  private async insert(e: Omit<OutboxEntry, 'id' | 'state' | 'attempts' | 'notBefore'>, now: number): Promise<void> {
    await this.pool.query(
      `insert into slack_outbox (key, kind, channel, ref, args, enqueued_at, priority) values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (key) do update set args = excluded.args,
         dirty = case when slack_outbox.state = 'sending' then 1 else slack_outbox.dirty end,
         enqueued_at = case when slack_outbox.state in ('sent','failed') then excluded.enqueued_at else slack_outbox.enqueued_at end,
         state = case when slack_outbox.state in ('sent','failed') then 'pending' else slack_outbox.state end
       where slack_outbox.kind = 'update'`,
      [e.key, e.kind, e.channel, e.ref ?? null, JSON.stringify(redactDeep(e.args)), now, e.priority ?? 0],
    );
  }

  async get(key: string): Promise<OutboxEntry | undefined> {
    return row((await this.pool.query('select * from slack_outbox where key = $1', [key])).rows[0]);
  }

  async head(key: string): Promise<Pick<OutboxEntry, 'state' | 'ts' | 'channel'> | undefined> {
    const r = (await this.pool.query('select state, ts, channel from slack_outbox where key = $1', [key])).rows[0];
    return r && { state: r.state, ts: r.ts ?? undefined, channel: r.channel };
  }

  /**
   * What `owner` may send now, among the channels whose lease it holds: as SqliteOutboxStore.due (each channel's
   * oldest pending post unless a priority post whose parent is posted goes first, due updates, a few ephemerals),
   * args loaded per entry at send time, sorted by id.
   */
  async due(now: number, owner: string): Promise<OutboxEntry[]> {
    const q = async (text: string, values: unknown[]) => (await this.pool.query(text, values)).rows as Array<Record<string, any>>;
    const posts = await q(
      `select ${COLS} from slack_outbox where id in (
         select min(id) from slack_outbox where state = 'pending' and kind = 'post' and ${holds(2)} group by channel
       ) and not_before <= $1`, [now, owner]);
    const priority = await q(
      `select ${COLS}, priority from slack_outbox c
       where state = 'pending' and kind = 'post' and priority > 0 and not_before <= $1 and ${holds(2).replaceAll('slack_outbox.', 'c.')}
         and (ref is null or exists (select 1 from slack_outbox p where p.key = c.ref and p.ts is not null))
       order by priority desc, id`, [now, owner]);
    const other = (kind: string, limit: number) => q(
      `select ${COLS} from slack_outbox where state = 'pending' and kind = $2 and not_before <= $1 and ${holds(3)} order by id limit ${limit}`, [now, kind, owner]);
    const first = new Map<string, Record<string, any>>();
    for (const r of priority) if (!first.has(r.channel)) first.set(r.channel, r);
    const chosen = posts.map((r) => first.get(r.channel) ?? r);
    for (const [channel, r] of first) if (!chosen.some((p) => p.channel === channel)) chosen.push(r);
    return [...chosen, ...(await other('update', 200)), ...(await other('ephemeral', 8))].map((r) => row(r)!).sort((a, b) => a.id - b.id);
  }

  /** pending → sending (one more attempt) while `owner` holds the channel; false: do not send this row */
  async markSending(id: number, owner: string): Promise<boolean> {
    const r = await this.pool.query(`update slack_outbox set state = 'sending', attempts = attempts + 1 where id = $1 and state = 'pending' and ${holds(2)}`, [id, owner]);
    return r.rowCount === 1;
  }

  /** sending → sent with its ts (or back to pending when its args changed meanwhile) while `owner` holds the channel */
  async markSent(id: number, ts: string | undefined, owner: string): Promise<boolean> {
    const r = await this.pool.query(
      `update slack_outbox set ts = coalesce($1, ts), state = case when dirty = 1 then 'pending' else 'sent' end, dirty = 0, verify = 0
       where id = $2 and state = 'sending' and ${holds(3)}`, [ts ?? null, id, owner]);
    return r.rowCount === 1;
  }

  /** back to pending until notBefore; `refund` gives back the attempt (a 429); `verify`: look the post up before posting it again */
  async markRetry(id: number, notBefore: number, error: string, owner: string, refund = false, verify = false): Promise<boolean> {
    const r = await this.pool.query(`update slack_outbox set state = 'pending', not_before = $1, error = $2, attempts = attempts - $3, verify = greatest(verify, $6) where id = $4 and state = 'sending' and ${holds(5)}`,
      [notBefore, error, refund ? 1 : 0, id, owner, verify ? 1 : 0]);
    return r.rowCount === 1;
  }

  /** pending (a reply whose parent was never posted) or sending → failed, while `owner` holds the channel */
  async markFailed(id: number, error: string, owner: string): Promise<boolean> {
    const r = await this.pool.query(`update slack_outbox set state = 'failed', error = $1 where id = $2 and state in ('pending', 'sending') and ${holds(3)}`, [error, id, owner]);
    return r.rowCount === 1;
  }

  /** sending → unknown (a recovered post that could not be looked up), while `owner` holds the channel */
  async markUnknown(id: number, error: string, owner: string): Promise<boolean> {
    const r = await this.pool.query(`update slack_outbox set state = 'unknown', error = $1 where id = $2 and state = 'sending' and ${holds(3)}`, [error, id, owner]);
    return r.rowCount === 1;
  }

  /** pending → failed whoever holds the channel (a dropped ephemeral); a row already taken by a sender is left to it */
  async dropPending(id: number, error: string): Promise<boolean> {
    const r = await this.pool.query(`update slack_outbox set state = 'failed', error = $1 where id = $2 and state = 'pending'`, [error, id]);
    return r.rowCount === 1;
  }

  /**
   * The rows a previous holder left in `sending` in the channels `owner` holds now (call after taking a channel,
   * before sending in it): updates back to pending, posts back to pending with `verify` (looked up in Slack before
   * being posted again), ephemerals `unknown`.
   */
  async recoverInFlight(owner: string, channels?: string[]): Promise<number> {
    const r = await this.pool.query(
      `update slack_outbox set state = ${RECOVERED_STATE_SQL}, verify = ${RECOVERED_VERIFY_SQL}
       where state = 'sending' and ${holds(1)} and ($2::text[] is null or channel = any($2::text[]))`, [owner, channels ?? null]);
    return r.rowCount ?? 0;
  }

  /**
   * Rows left in `sending` in channels nobody holds any more (the holder died or lost the lease mid-send, and no
   * pending row brings the channel back to a poller): the same recovery rules, so they are not stuck. Any sender
   * may call it at each poll, before `takeDueChannels`.
   */
  async recoverOrphaned(): Promise<number> {
    const r = await this.pool.query(
      `update slack_outbox set state = ${RECOVERED_STATE_SQL}, verify = ${RECOVERED_VERIFY_SQL}
       where state = 'sending' and not exists (select 1 from slack_channel_leases l where l.channel = slack_outbox.channel and l.expires_at > ${NOW_MS})`);
    return r.rowCount ?? 0;
  }

  async pendingCount(): Promise<number> {
    return Number((await this.pool.query(`select count(*) as n from slack_outbox where state in ('pending','sending')`)).rows[0].n);
  }

  async oldestPendingAt(): Promise<number | undefined> {
    const at = (await this.pool.query(`select min(enqueued_at) as at from slack_outbox where state in ('pending','sending')`)).rows[0].at;
    return at == null ? undefined : Number(at);
  }
}
