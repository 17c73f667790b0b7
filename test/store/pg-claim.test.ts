import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { openPgStore, type PgStore } from '../../src/store/pg/open.ts';
import { acquireChannelLease, channelLeaseHolder, claimNextJob, takeDueChannels, releaseChannelLease, releaseJobLeases, renewChannelLease, renewJobLease } from '../../src/store/pg/claim.ts';
import { DEPLOYMENT_LOCK_CONSTRAINT, isUniqueViolation, recordVote } from '../../src/store/pg/votes.ts';
import { approvals, approvalVotes, jobs, slackChannelLeases, slackOutbox } from '../../src/store/pg/schema.ts';
import { appendAuditPg, verifyAuditChainPg } from '../../src/store/pg/audit.ts';
import { startPostgres, type PgCluster } from '../support/postgres.ts';
import { describeWithTools } from '../support/tools.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A replica in its own process: claims one job, heartbeats its lease, and sits inside an open transaction that
 * holds the job's row lock (a write in flight), printing `claimed <id>` once it is there.
 */
const replicaProcess = (url: string) => `
  const { openPgStore } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/store/pg/open.ts', import.meta.url)))});
  const { claimNextJob, renewJobLease } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/store/pg/claim.ts', import.meta.url)))});
  const s = await openPgStore(${JSON.stringify(url)});
  const job = await claimNextJob(s.db, { owner: 'replica-killed', leaseMs: 1000 });
  setInterval(() => void renewJobLease(s.db, { jobId: job.id, owner: 'replica-killed', leaseMs: 1000 }), 200);
  const c = await s.pool.connect();
  await c.query('begin');
  await c.query('select id from jobs where id = $1 for update', [job.id]);
  console.log('claimed ' + job.id);
`;

describeWithTools(['postgresql'], 'PostgreSQL leases across replicas', () => {
  let cluster: PgCluster;
  /** two replicas: each its own pool, as two processes would have */
  let a: PgStore;
  let b: PgStore;
  let n = 0;

  beforeAll(async () => {
    cluster = await startPostgres();
    const url = await cluster.createDatabase('claims');
    [a, b] = await Promise.all([openPgStore(url), openPgStore(url)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    cluster?.stop();
  });

  /** a queued job of its own deployment; created_at orders the queue */
  async function queueJob(deployment = `dep-${++n}`, createdAt = new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()) {
    const id = `job-${++n}`;
    await a.db.insert(jobs).values({
      id, deployment, state: 'queued', requestedBy: 'U1', origin: { kind: 'cli' }, spec: {}, plan: { steps: [] },
      valuesHash: 'h', chart: 'c', createdAt, updatedAt: createdAt,
    });
    return id;
  }

  async function clearJobs() {
    await a.db.delete(approvalVotes);
    await a.db.delete(approvals);
    await a.db.delete(jobs);
  }

  const stateOf = async (id: string) => (await a.db.select().from(jobs).where(eq(jobs.id, id)))[0]!;

  it('two replicas claiming over 20 queued jobs never get the same one, and together get all 20', async () => {
    await clearJobs();
    const queued = new Set<string>();
    for (let i = 0; i < 20; i++) queued.add(await queueJob());
    // each replica runs three claim loops at once, as a worker with concurrency 3 would
    const claimer = async (s: PgStore, owner: string) => {
      const got: string[] = [];
      for (;;) {
        const j = await claimNextJob(s.db, { owner, leaseMs: 60_000 });
        if (!j) return got;
        got.push(j.id);
      }
    };
    const results = await Promise.all([a, a, a, b, b, b].map((s, i) => claimer(s, i < 3 ? 'replica-a' : 'replica-b')));
    const all = results.flat();
    expect(all).toHaveLength(20);
    expect(new Set(all)).toEqual(queued);
    const byA = results.slice(0, 3).flat();
    const byB = results.slice(3).flat();
    expect(byA.filter((id) => byB.includes(id))).toEqual([]);
    for (const id of byA) expect((await stateOf(id)).leaseOwner).toBe('replica-a');
    for (const id of byB) expect((await stateOf(id)).leaseOwner).toBe('replica-b');
  });

  it('claims the oldest queued job first and skips the excluded ones', async () => {
    await clearJobs();
    const newer = await queueJob(undefined, '2026-02-01T00:00:00.000Z');
    const older = await queueJob(undefined, '2026-01-01T00:00:00.000Z');
    expect((await claimNextJob(a.db, { owner: 'a', leaseMs: 60_000, exclude: [older] }))?.id).toBe(newer);
    await a.db.update(jobs).set({ state: 'queued', leaseOwner: null, leaseExpiresAt: null }).where(eq(jobs.id, newer));
    const first = await claimNextJob(a.db, { owner: 'a', leaseMs: 60_000 });
    expect(first?.id).toBe(older);
    const row = await stateOf(older);
    expect(row.state).toBe('running');
    expect(row.startedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('a live lease is not taken; an expired one is reclaimed by another replica, whose renewals then win', async () => {
    await clearJobs();
    const id = await queueJob();
    expect((await claimNextJob(a.db, { owner: 'replica-a', leaseMs: 60_000 }))?.id).toBe(id);
    expect(await claimNextJob(b.db, { owner: 'replica-b', leaseMs: 60_000 })).toBeUndefined();
    expect(await renewJobLease(a.db, { jobId: id, owner: 'replica-a', leaseMs: 800 })).toBe(true);
    // replica-a dies: no more heartbeats; its lease runs out by the database clock
    await sleep(1_000);
    const taken = await claimNextJob(b.db, { owner: 'replica-b', leaseMs: 60_000 });
    expect(taken).toEqual({ id, attempt: 1, previousOwner: 'replica-a' });
    expect(await renewJobLease(a.db, { jobId: id, owner: 'replica-a', leaseMs: 60_000 })).toBe(false);
    expect(await renewJobLease(b.db, { jobId: id, owner: 'replica-b', leaseMs: 60_000 })).toBe(true);
    const row = await stateOf(id);
    expect(row.leaseOwner).toBe('replica-b');
    expect(row.state).toBe('running');
  });

  it('renewal fails once the job is cancelled, and a clean stop hands the job over at once', async () => {
    await clearJobs();
    const cancelled = await queueJob();
    await claimNextJob(a.db, { owner: 'replica-a', leaseMs: 60_000 });
    await a.db.update(jobs).set({ cancelRequested: true }).where(eq(jobs.id, cancelled));
    expect(await renewJobLease(a.db, { jobId: cancelled, owner: 'replica-a', leaseMs: 60_000 })).toBe(false);
    await a.db.update(jobs).set({ state: 'cancelled' }).where(eq(jobs.id, cancelled));

    const handed = await queueJob();
    expect((await claimNextJob(a.db, { owner: 'replica-a', leaseMs: 60_000 }))?.id).toBe(handed);
    expect(await releaseJobLeases(a.db, 'replica-a')).toBe(1);
    expect((await claimNextJob(b.db, { owner: 'replica-b', leaseMs: 60_000 }))?.id).toBe(handed);
  });

  it('the per-deployment lock holds across replicas: of two concurrent submissions one is queued', async () => {
    await clearJobs();
    const at = new Date().toISOString();
    const submit = (s: PgStore, id: string) => s.db.insert(jobs).values({
      id, deployment: 'shared-dep', state: 'queued', requestedBy: 'U1', origin: {}, spec: {}, plan: {}, valuesHash: 'h', chart: 'c', createdAt: at, updatedAt: at,
    }).then(() => 'ok', (e: unknown) => e);
    const results = await Promise.all([submit(a, 'lock-1'), submit(b, 'lock-2')]);
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(isUniqueViolation(results.find((r) => r !== 'ok'), DEPLOYMENT_LOCK_CONSTRAINT)).toBe(true);
    expect((await a.db.select().from(jobs).where(eq(jobs.deployment, 'shared-dep')))).toHaveLength(1);
  });

  it('two replicas recording the same approval click record one vote', async () => {
    await clearJobs();
    const jobId = await queueJob();
    const at = new Date().toISOString();
    await a.db.insert(approvals).values({
      id: 'appr-1', jobId, stepId: 's7', hash: 'x', title: 'helm upgrade', facts: [], changedKeys: [], diffText: '', state: 'pending',
      required: 2, policy: {}, requestedAt: at, expiresAt: at,
    });
    const vote = { approvalId: 'appr-1', user: 'U-ALICE', decision: 'approve', at };
    const recorded = await Promise.all([recordVote(a.db, vote), recordVote(b.db, vote), recordVote(a.db, { ...vote, decision: 'reject' })]);
    expect(recorded.filter(Boolean)).toHaveLength(1);
    expect(await recordVote(b.db, { ...vote, user: 'U-BOB' })).toBe(true);
    const votes = await a.db.select().from(approvalVotes).where(eq(approvalVotes.approvalId, 'appr-1'));
    expect(votes.map((v) => v.user).sort()).toEqual(['U-ALICE', 'U-BOB']);
    // a plain insert of the same vote is refused by the constraint itself, not by the caller's care
    const dup = await a.db.insert(approvalVotes).values(vote).then(() => undefined, (e: unknown) => e);
    expect(isUniqueViolation(dup, 'approval_votes_unique')).toBe(true);
  });

  it('one sender per channel: the holder renews, others are refused until it releases', async () => {
    expect(await acquireChannelLease(a.db, { channel: 'C1', owner: 'replica-a', leaseMs: 60_000 })).toBe(true);
    expect(await acquireChannelLease(b.db, { channel: 'C1', owner: 'replica-b', leaseMs: 60_000 })).toBe(false);
    expect(await renewChannelLease(b.db, { channel: 'C1', owner: 'replica-b', leaseMs: 60_000 })).toBe(false);
    expect(await renewChannelLease(a.db, { channel: 'C1', owner: 'replica-a', leaseMs: 60_000 })).toBe(true);
    // another channel is free for the other replica
    expect(await acquireChannelLease(b.db, { channel: 'C2', owner: 'replica-b', leaseMs: 60_000 })).toBe(true);
    expect(await channelLeaseHolder(b.db, 'C1')).toBe('replica-a');
    expect(await releaseChannelLease(b.db, { channel: 'C1', owner: 'replica-b' })).toBe(false);
    expect(await releaseChannelLease(a.db, { channel: 'C1', owner: 'replica-a' })).toBe(true);
    expect(await acquireChannelLease(b.db, { channel: 'C1', owner: 'replica-b', leaseMs: 60_000 })).toBe(true);
    expect(await channelLeaseHolder(a.db, 'C1')).toBe('replica-b');
  });

  it('of ten senders racing for a free channel one wins; a dead holder loses it when its lease runs out', async () => {
    const racers = Array.from({ length: 10 }, (_, i) => acquireChannelLease(i % 2 ? a.db : b.db, { channel: 'C-race', owner: `sender-${i}`, leaseMs: 800 }));
    const won = (await Promise.all(racers)).map((ok, i) => (ok ? `sender-${i}` : undefined)).filter(Boolean);
    expect(won).toHaveLength(1);
    const holder = won[0]!;
    const other = holder === 'sender-0' ? 'sender-1' : 'sender-0';
    expect(await channelLeaseHolder(a.db, 'C-race')).toBe(holder);
    await sleep(1_000);
    expect(await channelLeaseHolder(a.db, 'C-race')).toBeUndefined();
    expect(await acquireChannelLease(a.db, { channel: 'C-race', owner: other, leaseMs: 60_000 })).toBe(true);
    // the old holder wakes up: it must not post
    expect(await renewChannelLease(b.db, { channel: 'C-race', owner: holder, leaseMs: 60_000 })).toBe(false);
    const rows = await a.db.execute(sql`select owner from slack_channel_leases where channel = 'C-race'`);
    expect(rows.rows).toEqual([{ owner: other }]);
  });

  it('two replicas appending audit events at once keep one unbroken hash chain, details read back as written', async () => {
    const appends = Array.from({ length: 40 }, (_, i) => appendAuditPg(i % 2 ? a.db : b.db, {
      actor: `U${i}`, action: 'approval.vote', jobId: `job-${i}`, details: { zeta: i, alpha: 'first key written last', nested: { z: 1, a: 2 } },
    }));
    await Promise.all(appends);
    expect(await verifyAuditChainPg(a.db)).toEqual({ ok: true, count: 40 });
    const [row] = await b.db.execute(sql`select details::text as details from audit_events order by seq limit 1`).then((r) => r.rows as Array<{ details: string }>);
    expect(Object.keys(JSON.parse(row!.details))).toEqual(['zeta', 'alpha', 'nested']);
  });

  it('a replica killed with -9 mid-write, heartbeat running, loses its job to another replica once its lease runs out', async () => {
    await clearJobs();
    const id = await queueJob();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', replicaProcess(cluster.urlFor('claims'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const claimed = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => { out += d; const m = /claimed (\S+)/.exec(out); if (m) resolve(m[1]!); });
        child.on('exit', (code) => reject(new Error(`replica exited early (${code})`)));
      });
      expect(claimed).toBe(id);
      // alive: its heartbeat keeps the lease, and the row is locked by its open transaction
      await sleep(1_500);
      expect(await claimNextJob(b.db, { owner: 'replica-b', leaseMs: 60_000 })).toBeUndefined();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // its transaction dies with its connections; its lease runs out ≤ 1 s after the last heartbeat
      let taken: Awaited<ReturnType<typeof claimNextJob>>;
      for (let i = 0; i < 50 && !taken; i++) {
        taken = await claimNextJob(b.db, { owner: 'replica-b', leaseMs: 60_000 });
        if (!taken) await sleep(100);
      }
      expect(taken).toEqual({ id, attempt: 1, previousOwner: 'replica-killed' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('senders polling for due outbox rows split the channels between them, never sharing one', async () => {
    await a.db.delete(slackChannelLeases);
    await a.db.delete(slackOutbox);
    const row = (key: string, channel: string, extra: Partial<typeof slackOutbox.$inferInsert> = {}) =>
      ({ key, kind: 'post', channel, args: '{}', ...extra });
    await a.db.insert(slackOutbox).values([
      ...['D1', 'D2', 'D3', 'D4', 'D5', 'D6'].flatMap((c) => [row(`${c}-1`, c), row(`${c}-2`, c)]),
      row('later', 'D-LATER', { notBefore: Date.now() + 3_600_000 }),
      row('done', 'D-SENT', { state: 'sent', ts: '1.2' }),
    ]);
    const [fromA, fromB] = await Promise.all([
      takeDueChannels(a.db, { owner: 'replica-a', leaseMs: 60_000, max: 3 }),
      takeDueChannels(b.db, { owner: 'replica-b', leaseMs: 60_000, max: 3 }),
    ]);
    expect(fromA.filter((c) => fromB.includes(c))).toEqual([]);
    // the second poller may have found the first one's channels taken and its own limit already used on them
    const third = await takeDueChannels(b.db, { owner: 'replica-b', leaseMs: 60_000, max: 6 });
    const held = new Set([...fromA, ...third]);
    expect([...held].sort()).toEqual(['D1', 'D2', 'D3', 'D4', 'D5', 'D6']);
    expect(third.filter((c) => fromA.includes(c))).toEqual([]);
    // a poll renews what the poller holds; nobody takes a channel with nothing due
    expect(await takeDueChannels(a.db, { owner: 'replica-a', leaseMs: 60_000, max: 6 })).toEqual(fromA);
    expect(await channelLeaseHolder(a.db, 'D-LATER')).toBeUndefined();
    expect(await channelLeaseHolder(a.db, 'D-SENT')).toBeUndefined();
  });
});
