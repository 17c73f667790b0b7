/**
 * Issue 16's chaos test: real `re-bot start` replicas (HTTP mode, each with its forked job worker) on one shared
 * database, one Slack Web API emulator and one fake Kubernetes API (real helm). Setups are started through the
 * wizard by signed requests to random replicas and approved by signed clicks on random replicas (some clicks
 * sent twice, to two replicas at once), while every few seconds a random replica's whole process group is
 * killed with SIGKILL (the pod dies: Slack process, job worker, helm children) and started again on its port.
 *
 * Then: every job succeeded; each approved helm upgrade reached the cluster exactly once; each approval was
 * decided once (one `approval.decided` audit row, one vote); every Slack write was sent exactly once (outbox rows
 * all `sent`, no post repeated in a thread, each thread's checklist shows every step final); across replicas no
 * channel got two posts within the pacing interval; no secret in any table of the database.
 *
 * Dialect: PostgreSQL with 3 replicas when PostgreSQL is installed and the bot accepts RE_BOT_DATABASE_URL; else
 * SQLite with one replica (a SQLite file cannot be shared by replicas on different hosts). RE_BOT_CHAOS_DIALECT=
 * sqlite|postgres forces one (postgres without PostgreSQL: skipped with the reason, failed under
 * RE_BOT_REQUIRE_TOOLS=1).
 * Knobs: RE_BOT_CHAOS_SETUPS (20), RE_BOT_CHAOS_KILLS (most kills, 8), RE_BOT_CHAOS_KILL_EVERY_MS (4000),
 * RE_BOT_CHAOS_REPLICAS, RE_BOT_CHAOS_CHANNELS (5), RE_BOT_CHAOS_KEEP=1 (keep the work dir and its logs).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHelmAdapter } from '../../src/infra/helm.ts';
import { postgresMissing } from '../support/postgres.ts';
import { describeWithTools } from '../support/tools.ts';
import {
  APPROVERS, approvalMessages, approve, botAcceptsDatabaseUrl, isSeed, openChaosDb, runWizard, seedDeployments, startWorld, upReplica,
  type ChaosDb, type ChaosSetup, type Dialect, type World,
} from './chaos-support.ts';
import { startReplicas, type ReplicaSet } from './replicas.ts';
import { demoSpec, ROOT, scratchDir, SECRETS } from './support.ts';

/**
 * PostgreSQL with three replicas when PostgreSQL is installed (the Done-when), else SQLite with one; both
 * gaps docs/ha.md found in earlier runs are closed (wizard sessions in the database, posts looked up by their
 * key after a sender's death). Strict by default: a doubled or lost post fails; RE_BOT_CHAOS_STRICT=0 only
 * reports them. `npm run test:chaos-pg` forces PostgreSQL.
 */
const FORCED = process.env.RE_BOT_CHAOS_DIALECT as Dialect | undefined;
const ON_PG = FORCED !== 'sqlite' && botAcceptsDatabaseUrl(ROOT);
const STRICT = process.env.RE_BOT_CHAOS_STRICT !== '0';
const replicasFor = (d: Dialect) => Number(process.env.RE_BOT_CHAOS_REPLICAS ?? (d === 'postgres' ? 3 : 1));
const SETUPS = Number(process.env.RE_BOT_CHAOS_SETUPS ?? 20);
const CHANNELS = Number(process.env.RE_BOT_CHAOS_CHANNELS ?? 5);
const KILLS = Number(process.env.RE_BOT_CHAOS_KILLS ?? 8);
const KILL_EVERY_MS = Number(process.env.RE_BOT_CHAOS_KILL_EVERY_MS ?? 4000);
const KEEP = process.env.RE_BOT_CHAOS_KEEP === '1';
/** the outbox's gap between two posts in one channel (src/slack/outbox.ts pacingMs) */
const PACING_MS = 1000;
/** timer and clock jitter allowed under the pacing gap */
const PACING_TOLERANCE_MS = 50;
const FINAL = ['succeeded', 'failed', 'cancelled'];
const SCANNED = [SECRETS.RE_BOT_DEMO_API_TOKEN, SECRETS.RE_BOT_DEMO_AGENT_TOKEN, SECRETS.RE_BOT_DEMO_GIT_TOKEN];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface JobRow { id: string; deployment: string; state: string; error: string | null }

if (ON_PG) describeWithTools(['postgresql'], chaosName('postgres'), () => chaosRun('postgres'));
// SQLite when the bot does not run on PostgreSQL, or PostgreSQL is not installed here
if (!ON_PG || (!FORCED && postgresMissing())) describe(chaosName('sqlite'), () => chaosRun('sqlite'));

function chaosName(d: Dialect): string {
  return `chaos: ${replicasFor(d)} re-bot replica(s) on ${d}, ${SETUPS} setups, kill -9 every ${KILL_EVERY_MS / 1000} s`;
}

function chaosRun(DIALECT: Dialect): void {
  const REPLICAS = replicasFor(DIALECT);
  const dir = scratchDir('chaos');
  let world: World;
  let db: ChaosDb;
  let set: ReplicaSet;
  const notes: string[] = [];

  beforeAll(async () => {
    world = await startWorld({
      dir, root: ROOT, setups: SETUPS, channels: CHANNELS, prefix: 'chaos', secrets: SECRETS, apiToken: SECRETS.RE_BOT_DEMO_API_TOKEN,
      spec: (name) => demoSpec(name, (s) => {
        // one approval and one upgrade per job: no client image to build (step 7 skips)
        delete (s.images as { client?: unknown }).client;
        s.verify.podsTimeoutSeconds = 60;
      }),
    });
    db = await openChaosDb(DIALECT, dir);
    await seedDeployments(db, world);
    set = await startReplicas({ count: REPLICAS, dir, root: ROOT, env: { ...world.env, ...db.env, RE_BOT_CONCURRENCY: '4' } });
  }, 180_000);

  afterAll(async () => {
    await set?.stopAll();
    await db?.close();
    await world?.close();
    if (KEEP) process.stderr.write(`chaos: work dir kept: ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });

  const jobs = () => db.all<JobRow>('select id, deployment, state, error from jobs').then((rows) => rows.filter((j) => !isSeed(j.id)));

  it('every job succeeds, each upgrade and approval happens once, every Slack write is sent once, no secret in the database', async () => {
    const { emu } = world;
    let stop = false;
    let kills = 0;
    const failures: string[] = [];

    // ---- chaos: kill -9 a random replica's process group every few seconds, start it again on its port
    const chaos = (async () => {
      while (!stop && kills < KILLS) {
        await sleep(KILL_EVERY_MS);
        if (stop) break;
        const victim = set.random();
        kills++;
        await victim.restart().catch((err) => failures.push(`restart of replica ${victim.index}: ${err}`));
      }
    })();

    // ---- the requesters: each setup through the wizard, each page on a random live replica (the session is in
    // the database), again from the start if a page was lost with a killed replica
    const submitted = new Set<string>();
    let wizardRetries = 0;
    let wizardsAcrossReplicas = 0;
    const submitOne = async (s: ChaosSetup) => {
      const giveUpAt = Date.now() + 120_000;
      for (let attempt = 1; ; attempt++) {
        const used: number[] = [];
        let finished = false;
        try {
          await runWizard(emu, () => upReplica(set), s, { apiToken: SECRETS.RE_BOT_DEMO_API_TOKEN, agentToken: SECRETS.RE_BOT_DEMO_AGENT_TOKEN }, used);
          finished = true;
          if (new Set(used).size > 1) wizardsAcrossReplicas++;
        } catch (err) {
          notes.push(`wizard of ${s.name} on replicas ${used.join(',')}, attempt ${attempt}: ${String(err).slice(0, 200)}`);
        }
        // the app submits after acking the last page; the job may also exist when the answer was lost (the
        // replica died after submitting)
        const end = Date.now() + (finished ? 5000 : 500);
        for (;;) {
          if ((await jobs()).some((j) => j.deployment === s.name)) return void submitted.add(s.name);
          if (Date.now() > end) break;
          await sleep(100);
        }
        if (finished) notes.push(`wizard of ${s.name} on replicas ${used.join(',')} finished, but no job within 5 s`);
        if (Date.now() > giveUpAt) throw new Error(`${s.name}: no job after ${attempt} wizard attempts:\n${notes.filter((n) => n.includes(s.name)).join('\n')}`);
        wizardRetries++;
        await sleep(500);
      }
    };
    const queue = [...world.setups];
    const submitters = Array.from({ length: 4 }, async () => {
      for (let s = queue.shift(); s; s = queue.shift()) await submitOne(s);
    });

    // ---- the approvers: Approve on each approval message, on a random replica; every third also on a second
    // replica at once; clicked again (like a person) when the approval is still pending 5 s later
    const clickedAt = new Map<string, number>();
    let doubleClicks = 0;
    let reclicks = 0;
    const approver = (async () => {
      while (!stop) {
        await sleep(200);
        const pending = new Set((await db.all<{ id: string }>("select id from approvals where state = 'pending'").catch(() => [])).map((a) => a.id));
        for (const { message, approvalId } of approvalMessages(emu)) {
          if (!pending.has(approvalId)) continue;
          const last = clickedAt.get(approvalId);
          if (last && Date.now() - last < 5000) continue;
          if (last) reclicks++;
          clickedAt.set(approvalId, Date.now());
          const first = upReplica(set);
          if (!first) continue;
          const who = APPROVERS[clickedAt.size % APPROVERS.length];
          const clicks = [approve(emu, first, who, message)];
          // two replicas when there are two up (with one replica: the same click twice at once)
          const second = clickedAt.size % 3 === 0 ? (upReplica(set, first) ?? first) : undefined;
          if (second) {
            doubleClicks++;
            clicks.push(approve(emu, second, who, message));
          }
          await Promise.allSettled(clicks);
        }
      }
    })();

    let rows: JobRow[] = [];
    try {
      await Promise.all(submitters);
      // every job final (they are real setups: a few minutes at most)
      const deadline = Date.now() + 8 * 60_000;
      while (Date.now() < deadline) {
        rows = await jobs();
        if (rows.length >= SETUPS && rows.every((j) => FINAL.includes(j.state))) break;
        await sleep(500);
      }
    } finally {
      // the last restart completes: every replica is up for the drain below and for afterAll
      stop = true;
      await chaos;
      await approver;
    }
    // the Slack writes still queued go out (1 post/s/channel); a replica that is down cannot send them
    const drainEnd = Date.now() + 120_000;
    while (Date.now() < drainEnd) {
      const left = await db.all<{ n: number }>("select count(*) as n from slack_outbox where state in ('pending', 'sending')");
      if (Number(left[0].n) === 0) break;
      await sleep(500);
    }
    await sleep(1500); // a chat.update answered after the row was marked lands in the emulator

    const context = JSON.stringify({ kills, wizardRetries, wizardsAcrossReplicas, doubleClicks, reclicks, notes: notes.slice(-20), failures });
    process.stderr.write(`chaos: ${DIALECT}, ${REPLICAS} replica(s), ${kills} kills, ${wizardRetries} wizard retries, ${wizardsAcrossReplicas} wizards across replicas, ${doubleClicks} double clicks, ${reclicks} re-clicks\n`);
    expect(failures, context).toEqual([]);
    if (KILLS > 0) expect(kills, context).toBeGreaterThan(0);
    // the pages of one wizard really were answered by different replicas (and the wizards still finished)
    if (REPLICAS > 1) expect(wizardsAcrossReplicas, context).toBeGreaterThan(0);

    // ---- every job finished, succeeded, one per setup
    expect(rows.map((j) => j.deployment).sort()).toEqual(world.setups.map((s) => s.name).sort());
    expect(rows.filter((j) => j.state !== 'succeeded').map((j) => `${j.deployment}: ${j.state} ${j.error ?? ''}`), context).toEqual([]);

    // ---- each approved helm upgrade reached the cluster exactly once
    const helm = createHelmAdapter({ kubeconfigPath: world.kube.kubeconfigPath });
    for (const j of rows) {
      const history = await helm.history('astro-agent', j.deployment);
      const reached = history.filter((h) => h.description?.startsWith(`re-bot job ${j.id}`) && /deployed|superseded/.test(h.status));
      expect(reached.length, `${j.deployment}: ${JSON.stringify(history)}`).toBe(1);
      expect(history.at(-1)!.status, j.deployment).toBe('deployed');
      // the release secrets helm keeps in the cluster: one stored revision per upgrade applied
      const releases = world.kube.list('v1', 'Secret', j.deployment).filter((s) => s.type === 'helm.sh/release.v1');
      expect(releases.length, `${j.deployment}: ${releases.map((s) => s.metadata.name).join(', ')}`).toBe(history.length);
    }

    // ---- each approval decided once: one approved request per job, one vote, one approval.decided row
    const approvals = await db.all<{ id: string; job_id: string; state: string }>('select id, job_id, state from approvals');
    const votes = await db.all<{ approval_id: string; user: string }>('select approval_id, "user" from approval_votes');
    const decided = await db.all<{ job_id: string }>("select job_id from audit_events where action = 'approval.decided'");
    for (const j of rows) {
      const mine = approvals.filter((a) => a.job_id === j.id);
      expect(mine.map((a) => a.state), j.deployment).toEqual(['approved']);
      expect(votes.filter((v) => v.approval_id === mine[0].id), j.deployment).toHaveLength(1);
      expect(decided.filter((d) => d.job_id === j.id), j.deployment).toHaveLength(1);
    }

    // ---- Slack: every outbox row sent exactly once, no post repeated, every thread complete
    // A write in flight when its sender died has an unknown outcome (src/slack/outbox-store.ts, docs/ha.md §3). A
    // post is looked up in Slack by its metadata key: found, its row is recorded sent with the ts found (one post in
    // Slack, one sent row: counted like any other), else posted once. Only when the lookup cannot be made does the
    // old window reopen: a thread parent re-sent (a duplicate when Slack had it), a reply left `unknown` (lost when
    // Slack did not). An ephemeral in flight stays `unknown` (it cannot be read back). Those are counted against the
    // outbox's own "unknown outcome" warnings and reported; they fail (the Done-when; RE_BOT_CHAOS_STRICT=0 only reports
    // them). Anything else doubled or lost always fails.
    const inFlightAtKill = set.replicas.reduce((n, r) => n + [...r.log().matchAll(/"entries":(\d+)[^\n]*unknown outcome/g)].reduce((k, m) => k + Number(m[1]), 0), 0);
    const foundAfterKill = set.replicas.reduce((n, r) => n + [...r.log().matchAll(/had reached Slack; recorded, not posted again/g)].length, 0);
    const outbox = await db.all<{ key: string; kind: string; channel: string; state: string; ts: string | null }>('select key, kind, channel, state, ts from slack_outbox');
    const unknownReplies = outbox.filter((o) => o.state === 'unknown' && o.kind === 'post').map((o) => `${o.key} ${o.kind} unknown`);
    const unknownEphemerals = outbox.filter((o) => o.state === 'unknown' && o.kind === 'ephemeral').map((o) => `${o.key} ephemeral unknown`);
    expect.soft(outbox.filter((o) => o.state !== 'sent' && o.state !== 'unknown').map((o) => `${o.key} ${o.kind} ${o.state}`), 'outbox rows not sent').toEqual([]);
    const postRows = outbox.filter((o) => o.kind === 'post' && o.state === 'sent');
    expect.soft(postRows.filter((o) => !o.ts || !emu.messages.has(`${o.channel}/${o.ts}`)).length, 'sent posts whose message is not in Slack').toBe(0);
    // each sent row's message carries the row's key (the idempotency key a lookup matches), found ones included
    expect.soft(postRows.filter((o) => o.ts && (emu.messages.get(`${o.channel}/${o.ts}`)?.metadata as any)?.event_payload?.key !== o.key).map((o) => o.key), 'sent posts whose message does not carry their key').toEqual([]);
    expect.soft(new Set(postRows.map((o) => o.ts)).size, 'two rows with one ts').toBe(postRows.length);
    const posts = emu.callsTo('chat.postMessage').filter((c) => c.status === 200 && c.response.ok);
    // what a reader sees twice: the same text posted twice in one thread, or twice as a parent in one channel
    const seen = new Map<string, number>();
    for (const p of posts) {
      const k = `${p.args.channel} ${p.args.thread_ts ?? 'parent'} ${String(p.args.text).slice(0, 200)}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    const doubled = [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${n}× ${k}`);
    const doubledParents = doubled.filter((d) => / parent /.test(d));
    expect.soft(doubled.filter((d) => !/ parent /.test(d)), 'replies posted twice').toEqual([]);
    // every successful post is one sent row, plus the re-sent parents, plus the replies of the known window that
    // reached Slack before their sender died (`unknown`: landed or not, never re-sent)
    const landed = posts.length - doubledParents.length;
    expect.soft(landed, 'posts in Slack vs sent post rows').toBeGreaterThanOrEqual(postRows.length);
    expect.soft(landed, `posts in Slack vs sent post rows plus unknown replies (${unknownReplies.length})`).toBeLessThanOrEqual(postRows.length + unknownReplies.length);
    const windowHits = [...doubledParents, ...unknownReplies];
    process.stderr.write(`chaos: ${inFlightAtKill} writes in flight at kills, ${foundAfterKill} posts found in Slack by their key and not re-posted\n`);
    if (windowHits.length) process.stderr.write(`chaos: KNOWN OUTBOX WINDOW (${inFlightAtKill} writes in flight at kills): ${windowHits.join(' | ')}\n`);
    if (unknownEphemerals.length) process.stderr.write(`chaos: ephemerals in flight at kills, not re-sent (cannot be looked up): ${unknownEphemerals.join(' | ')}\n`);
    expect.soft(windowHits.length + unknownEphemerals.length + foundAfterKill, `more doubled parents/unknown writes/found posts than writes in flight at kills: ${windowHits.join(' | ')}`).toBeLessThanOrEqual(inFlightAtKill);
    if (STRICT) expect.soft(windowHits, 'doubled parents / lost replies (RE_BOT_CHAOS_STRICT=0 only reports them)').toEqual([]);
    for (const s of world.setups) {
      const j = rows.find((r) => r.deployment === s.name)!;
      const parentRow = outbox.find((o) => o.key === `job:${j.id}:parent`);
      const parent = parentRow?.ts ? emu.messages.get(`${s.channel}/${parentRow.ts}`) : undefined;
      expect.soft(parent, `${s.name}: the thread parent`).toBeDefined();
      const steps = (((parent?.blocks ?? []) as any[]).find((b) => b.block_id === 'steps')?.text?.text ?? '') as string;
      const lines = steps.split('\n').filter(Boolean);
      expect.soft(lines.length, `${s.name} checklist: ${steps}`).toBe(8);
      for (const line of lines) expect.soft(line, s.name).toMatch(/— (succeeded|warned|skipped)\b/);
      // one result reply per step that ran, the approval request, the final message: none missing
      const replies = parent ? emu.replies(s.channel, parent.ts) : [];
      expect.soft(replies.some((m) => JSON.stringify(m.blocks ?? []).includes('succeeded')), `${s.name}: final reply`).toBe(true);
    }

    // ---- pacing across replicas: two posts in one channel never closer than the outbox's gap
    const byChannel = new Map<string, number[]>();
    for (const p of posts) byChannel.set(p.args.channel, [...(byChannel.get(p.args.channel) ?? []), p.at]);
    const tooClose: string[] = [];
    for (const [channel, times] of byChannel) {
      times.sort((a, b) => a - b);
      for (let i = 1; i < times.length; i++) if (times[i] - times[i - 1] < PACING_MS - PACING_TOLERANCE_MS) tooClose.push(`${channel}: ${times[i] - times[i - 1]} ms`);
    }
    expect.soft(tooClose, 'posts closer than the pacing gap in one channel').toEqual([]);

    // ---- no secret, plain or base64, in any table
    const dump = await db.dumpAll();
    const forms = SCANNED.flatMap((n) => [n, Buffer.from(n).toString('base64')]);
    const hits = Object.entries(dump).flatMap(([table, text]) => forms.filter((f) => text.includes(f)).map((f) => `${table}: ${f.slice(0, 12)}…`));
    expect(hits).toEqual([]);
    expect(Object.keys(dump).length).toBeGreaterThan(5);
  }, 15 * 60_000);
}

describe('chaos harness', () => {
  it('kill9 takes down the whole process group and restart brings the replica back on its port', async () => {
    // covered inside the chaos run (the victim answers /readyz again before the next kill); this checks the group
    const dir = scratchDir('chaos-group');
    const w = await startWorld({ dir, root: ROOT, setups: 0, channels: 1, prefix: 'g', secrets: SECRETS, apiToken: SECRETS.RE_BOT_DEMO_API_TOKEN, spec: (n) => demoSpec(n) });
    const d = await openChaosDb('sqlite', dir);
    const s = await startReplicas({ count: 1, dir, root: ROOT, env: { ...w.env, ...d.env } });
    try {
      const r = s.replicas[0];
      const pid = r.pid()!;
      await r.kill9();
      expect(() => process.kill(-pid, 0)).toThrow();
      expect(r.alive()).toBe(false);
      await r.restart();
      expect(r.pid()).not.toBe(pid);
      expect(r.starts).toBe(2);
      const ready = await fetch(`http://127.0.0.1:${r.port}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await s.stopAll();
      await d.close();
      await w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
