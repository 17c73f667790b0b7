/**
 * Leases across replicas on PostgreSQL: job claims (`FOR UPDATE SKIP LOCKED`) with heartbeat renewal, and the
 * per-channel Slack outbox sender lease.
 *
 * Time comes from the database clock (`statement_timestamp()`), not from each replica's: two replicas whose
 * clocks disagree by seconds must still agree on whether a lease has expired. Lease deadlines are stored as ms
 * since the epoch, as in the SQLite queue (src/jobs/queue.ts), and timestamps as the same ISO-8601 text.
 *
 * Outbox sender lease: a row per channel in `slack_channel_leases`, not `pg_try_advisory_lock(hashtext(channel))`.
 * A session advisory lock lives on one connection, so holding 50 channels would pin 50 pooled connections, and a
 * lock taken on a pooled connection is lost or leaked when the pool recycles it; 32-bit hashtext values of two
 * channels can collide. A lease row works through any pooled connection, expires by the database clock when its
 * holder dies (an advisory lock survives until TCP notices a silent peer), and shows who sends where.
 */
import { sql, type SQL } from 'drizzle-orm';
import type { PgDb } from './open.ts';

/** now, in ms since the epoch, by the database clock */
const NOW_MS = sql`(extract(epoch from statement_timestamp()) * 1000)::bigint`;
/** now as `2026-11-30T11:39:02.123Z`, the form `Date.prototype.toISOString` gives and the SQLite store keeps */
const NOW_ISO = sql`to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

async function rows<T>(db: PgDb, query: SQL): Promise<T[]> {
  return (await db.execute(query)).rows as T[];
}

export interface ClaimedJob {
  id: string;
  attempt: number;
  /** the owner whose lease had expired when the job was still `running` (a replica that died), else null */
  previousOwner: string | null;
}

/**
 * Takes the oldest claimable job and leases it to `owner` for `leaseMs`, or returns undefined. Claimable: queued
 * with no live lease (as `claimNext` in src/jobs/queue.ts), or running under an expired lease, whose owner died
 * mid-step: the new owner resumes it from its checkpoints (on SQLite, `requeueExpired` does that in two steps).
 * Rows another transaction is claiming are skipped, not waited for, so claimers never block each other and
 * never get the same job. `exclude`: jobs this replica is still winding down.
 */
export async function claimNextJob(db: PgDb, o: { owner: string; leaseMs: number; exclude?: string[] }): Promise<ClaimedJob | undefined> {
  const exclude = o.exclude?.length ? sql`and id not in (${sql.join(o.exclude.map((id) => sql`${id}`), sql`, `)})` : sql``;
  const [row] = await rows<{ id: string; attempt: number; previous_owner: string | null }>(db, sql`
    with next as (
      select id, lease_owner from jobs
      where (
        (state = 'queued' and (lease_owner is null or lease_expires_at is null or lease_expires_at <= ${NOW_MS}))
        or (state = 'running' and (lease_expires_at is null or lease_expires_at <= ${NOW_MS}))
      ) ${exclude}
      order by created_at, id
      limit 1
      for update skip locked
    )
    update jobs set
      state = 'running',
      lease_owner = ${o.owner},
      lease_expires_at = ${NOW_MS} + ${Math.max(0, Math.floor(o.leaseMs))},
      started_at = coalesce(jobs.started_at, ${NOW_ISO}),
      updated_at = ${NOW_ISO}
    from next
    where jobs.id = next.id
    returning jobs.id, jobs.attempt, case when next.lease_owner = ${o.owner} then null else next.lease_owner end as previous_owner`);
  return row ? { id: row.id, attempt: Number(row.attempt), previousOwner: row.previous_owner } : undefined;
}

/**
 * The heartbeat: extends `owner`'s lease on a running job. False when the lease is no longer its own (another
 * replica reclaimed the job after it expired), or the job was cancelled or finished: the caller must stop.
 */
export async function renewJobLease(db: PgDb, o: { jobId: string; owner: string; leaseMs: number }): Promise<boolean> {
  const r = await rows<{ id: string }>(db, sql`
    update jobs set lease_expires_at = ${NOW_MS} + ${Math.max(0, Math.floor(o.leaseMs))}
    where id = ${o.jobId} and lease_owner = ${o.owner} and state = 'running' and cancel_requested = false
    returning id`);
  return r.length === 1;
}

/** On a clean stop: `owner`'s running jobs may be claimed by another replica at once. Returns how many. */
export async function releaseJobLeases(db: PgDb, owner: string): Promise<number> {
  const r = await rows<{ id: string }>(db, sql`
    update jobs set lease_expires_at = 0 where lease_owner = ${owner} and state = 'running' returning id`);
  return r.length;
}

/**
 * Takes or renews the sender lease of `channel` for `owner`: true when `owner` holds it for the next `leaseMs`.
 * False while another owner's lease runs. One statement (insert … on conflict do update … where), so two
 * replicas racing for a free channel get one winner.
 */
export async function acquireChannelLease(db: PgDb, o: { channel: string; owner: string; leaseMs: number }): Promise<boolean> {
  const r = await rows<{ owner: string }>(db, sql`
    insert into slack_channel_leases (channel, owner, expires_at)
    values (${o.channel}, ${o.owner}, ${NOW_MS} + ${Math.max(0, Math.floor(o.leaseMs))})
    on conflict (channel) do update set owner = excluded.owner, expires_at = excluded.expires_at
    where slack_channel_leases.owner = excluded.owner or slack_channel_leases.expires_at <= ${NOW_MS}
    returning owner`);
  return r.length === 1;
}

/**
 * Extends `owner`'s unexpired lease of `channel` (call before each post): false when it expired or another
 * owner took it, and then the message must not be posted by this sender.
 */
export async function renewChannelLease(db: PgDb, o: { channel: string; owner: string; leaseMs: number }): Promise<boolean> {
  const r = await rows<{ channel: string }>(db, sql`
    update slack_channel_leases set expires_at = ${NOW_MS} + ${Math.max(0, Math.floor(o.leaseMs))}
    where channel = ${o.channel} and owner = ${o.owner} and expires_at > ${NOW_MS}
    returning channel`);
  return r.length === 1;
}

/** Gives the channel up (a clean stop): another sender may take it at once. */
export async function releaseChannelLease(db: PgDb, o: { channel: string; owner: string }): Promise<boolean> {
  const r = await rows<{ channel: string }>(db, sql`
    delete from slack_channel_leases where channel = ${o.channel} and owner = ${o.owner} returning channel`);
  return r.length === 1;
}

/** Who holds `channel` now (by the database clock), or undefined when nobody's lease runs. */
export async function channelLeaseHolder(db: PgDb, channel: string): Promise<string | undefined> {
  const [r] = await rows<{ owner: string }>(db, sql`
    select owner from slack_channel_leases where channel = ${channel} and expires_at > ${NOW_MS}`);
  return r?.owner;
}

/**
 * The sender loop's poll: takes (or renews) the leases of up to `max` channels that have due pending outbox rows
 * and no other live sender, and returns the channels `owner` now holds among them. `max` spreads channels over
 * replicas instead of letting the first poller take them all. Channels are locked in name order, so two
 * replicas polling at once cannot deadlock.
 */
export async function takeDueChannels(db: PgDb, o: { owner: string; leaseMs: number; max: number }): Promise<string[]> {
  const r = await rows<{ channel: string }>(db, sql`
    insert into slack_channel_leases (channel, owner, expires_at)
    select due.channel, ${o.owner}, ${NOW_MS} + ${Math.max(0, Math.floor(o.leaseMs))}
    from (
      select distinct m.channel from slack_outbox m
      left join slack_channel_leases l on l.channel = m.channel
      where m.state = 'pending' and m.not_before <= ${NOW_MS}
        and (l.channel is null or l.owner = ${o.owner} or l.expires_at <= ${NOW_MS})
      order by m.channel
      limit ${Math.max(0, Math.floor(o.max))}
    ) due
    order by due.channel
    on conflict (channel) do update set owner = excluded.owner, expires_at = excluded.expires_at
    where slack_channel_leases.owner = excluded.owner or slack_channel_leases.expires_at <= ${NOW_MS}
    returning channel`);
  return r.map((x) => x.channel).sort();
}
