/**
 * Job throughput and `/re status` latency of the running bot, SQLite beside PostgreSQL (issue 16), end to end:
 * real `re-bot start` replicas (test/e2e/replicas.ts: HTTP mode, each with its forked job worker) against one
 * Slack emulator and one fake Kubernetes API, with the REAL eight checklist steps (real helm into the fake API,
 * the Astro/Airflow stand-ins; no client image, so step 7 skips: one approval and one helm upgrade per setup).
 *
 * Each configuration (SQLite with 1 replica; PostgreSQL with 1 and with N replicas) gets a fresh world and
 * database. `setups` setups are started through the wizard by signed requests to random replicas, each approved
 * by a signed click as soon as its approval message appears; meanwhile one user after the other asks
 * `/re status <random deployment>` of a random replica. Figures:
 *  - throughput: setups / minute from the first `/re setup` to the last job succeeded;
 *  - `/re status` ack (signed request → HTTP 200) p50/p99, and answer (→ the response_url post) p50/p99;
 * and the ratios PostgreSQL / SQLite. The PostgreSQL cluster is local (test/support/postgres.ts) with fsync and
 * synchronous_commit on; a server elsewhere adds a round trip per statement.
 *
 * Opt-in: `npm run bench -- --only pg-jobs` (`--smoke` for 3 setups). Knobs: RE_BOT_BENCH_PG_JOBS_SETUPS,
 * RE_BOT_BENCH_PG_JOBS_REPLICAS (the multi-replica run, default 3). Without PostgreSQL, or while the bot refuses
 * RE_BOT_DATABASE_URL, the PostgreSQL rows say "not run" and why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  APPROVERS, approvalMessages, approve, isSeed, openChaosDb, requesterOf, runWizard, seedDeployments, send, slash, startWorld, upReplica,
  type ChaosDb, type Dialect, type World,
} from '../test/e2e/chaos-support.ts';
import { startReplicas, type ReplicaSet } from '../test/e2e/replicas.ts';
import { postgresMissing } from '../test/support/postgres.ts';
import { BENCH_SECRETS, demoSpec, ROOT, withoutClientImage } from './lib/spec.ts';
import { ms, p50, p99, ratio, x, type Row } from './lib/stats.ts';

export interface PgJobsOptions {
  smoke: boolean;
  log: (line: string) => void;
}

const SECTION = 'Jobs end to end, SQLite vs PostgreSQL';
const FINAL = ['succeeded', 'failed', 'cancelled'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunResult {
  label: string;
  dialect: Dialect;
  replicas: number;
  setups: number;
  succeeded: number;
  wallMs: number;
  perMin: number;
  ack: number[];
  answer: number[];
  failures: string[];
}

async function runOne(dialect: Dialect, replicas: number, setups: number, log: (l: string) => void): Promise<RunResult> {
  const label = `${dialect}, ${replicas} replica${replicas > 1 ? 's' : ''}`;
  const dir = mkdtempSync(join(tmpdir(), 'rebot-bench-pgjobs-'));
  let world: World | undefined;
  let db: ChaosDb | undefined;
  let set: ReplicaSet | undefined;
  let stop = false;
  try {
    world = await startWorld({
      dir, root: ROOT, setups, channels: Math.max(1, Math.ceil(setups / 4)), prefix: `bj${dialect[0]}${replicas}`, secrets: BENCH_SECRETS,
      apiToken: BENCH_SECRETS.RE_BOT_DEMO_API_TOKEN, spec: (name) => demoSpec(name, withoutClientImage), typeSecrets: false,
    });
    db = await openChaosDb(dialect, dir, { durable: true });
    await seedDeployments(db, world);
    set = await startReplicas({ count: replicas, dir, root: ROOT, env: { ...world.env, ...db.env, RE_BOT_CONCURRENCY: '4', LOG_LEVEL: 'warn' } });
    const { emu } = world;
    const w = world;
    const d = db;
    const s = set;
    const jobs = async () => (await d.all<{ id: string; state: string }>('select id, state from jobs')).filter((j) => !isSeed(j.id));

    const approver = (async () => {
      const clicked = new Set<string>();
      while (!stop) {
        await sleep(100);
        for (const { message, approvalId } of approvalMessages(emu)) {
          if (clicked.has(approvalId)) continue;
          const r = upReplica(s);
          if (!r) continue;
          clicked.add(approvalId);
          await approve(emu, r, APPROVERS[0], message).catch(() => clicked.delete(approvalId));
        }
      }
    })();
    const ack: number[] = [];
    const answer: number[] = [];
    let asked = 0;
    const statusUser = requesterOf(0);
    const asker = (async () => {
      while (!stop) {
        const r = upReplica(s)!;
        const dep = w.setups[Math.floor(Math.random() * w.setups.length)];
        const id = `st-${++asked}`;
        const t = performance.now();
        const res = await send(r, slash(emu, statusUser, dep.channel, `status ${dep.name}`, id)).catch(() => undefined);
        const acked = performance.now();
        if (res?.status === 200) {
          ack.push(acked - t);
          const got = await emu.waitResponse(id, 10_000);
          if (got) answer.push(performance.now() - t);
        }
        await sleep(50);
      }
    })();

    const t0 = performance.now();
    const queue = [...w.setups];
    const failures: string[] = [];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await runWizard(emu, () => upReplica(s), next, { apiToken: BENCH_SECRETS.RE_BOT_DEMO_API_TOKEN, agentToken: BENCH_SECRETS.RE_BOT_DEMO_AGENT_TOKEN }).catch((err) => failures.push(`${next.name}: ${err}`));
      }
    }));
    const deadline = Date.now() + 15 * 60_000;
    let rows = await jobs();
    while (Date.now() < deadline) {
      rows = await jobs();
      if (rows.length >= setups - failures.length && rows.every((j) => FINAL.includes(j.state))) break;
      await sleep(250);
    }
    const wallMs = performance.now() - t0;
    stop = true;
    await approver;
    await asker;
    const succeeded = rows.filter((j) => j.state === 'succeeded').length;
    const perMin = succeeded / (wallMs / 60_000);
    log(`  ${label}: ${succeeded}/${setups} succeeded in ${(wallMs / 1000).toFixed(1)} s (${perMin.toFixed(1)} setups/min); /re status ack p50 ${ms(p50(ack))} p99 ${ms(p99(ack))}, answer p50 ${ms(p50(answer))} p99 ${ms(p99(answer))} (${ack.length} asked)`);
    return { label, dialect, replicas, setups, succeeded, wallMs, perMin, ack, answer, failures };
  } finally {
    stop = true;
    await set?.stopAll();
    await db?.close();
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runPgJobsBench(o: PgJobsOptions): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const setups = Number(process.env.RE_BOT_BENCH_PG_JOBS_SETUPS ?? (o.smoke ? 3 : 20));
  const many = Number(process.env.RE_BOT_BENCH_PG_JOBS_REPLICAS ?? 3);
  const results: RunResult[] = [];
  const notRun: Array<{ label: string; why: string }> = [];
  results.push(await runOne('sqlite', 1, setups, o.log));
  const missing = postgresMissing();
  for (const n of [1, many]) {
    const label = `postgres, ${n} replica${n > 1 ? 's' : ''}`;
    if (missing) {
      notRun.push({ label, why: `no PostgreSQL: ${missing}` });
      continue;
    }
    try {
      results.push(await runOne('postgres', n, setups, o.log));
    } catch (err) {
      const why = String(err instanceof Error ? err.message : err).split('\n').find((l) => /RE_BOT_DATABASE_URL/.test(l)) ?? String(err).split('\n')[0];
      // the bot refusing RE_BOT_DATABASE_URL is "not run"; anything else breaks the section
      if (!/RE_BOT_DATABASE_URL/.test(why)) throw err;
      notRun.push({ label, why: why.slice(0, 160) });
      o.log(`  ${label}: not run: ${why}`);
    }
  }
  const base = results[0];
  const rows: Row[] = [];
  for (const r of results) {
    const vs = r === base ? undefined : `vs SQLite: ${x(ratio(r.perMin, base.perMin))} throughput, status ack p50 ${x(ratio(p50(r.ack), p50(base.ack)))} p99 ${x(ratio(p99(r.ack), p99(base.ack)))}`;
    rows.push(
      { section: SECTION, figure: `${r.label}: setups/min (real steps, wizard → approval → succeeded)`, value: r.perMin.toFixed(1), target: '(info)', ratio: vs },
      { section: SECTION, figure: `${r.label}: /re status ack p50 / p99 (${r.ack.length} asked during the jobs)`, value: `${ms(p50(r.ack))} / ${ms(p99(r.ack))}`, target: '< 3 s', ok: p99(r.ack) < 3000 },
      { section: SECTION, figure: `${r.label}: /re status answer (response_url) p50 / p99`, value: `${ms(p50(r.answer))} / ${ms(p99(r.answer))}`, target: '(info)', ratio: r === base ? undefined : `vs SQLite: ${x(ratio(p50(r.answer), p50(base.answer)))} / ${x(ratio(p99(r.answer), p99(base.answer)))}` },
      { section: SECTION, figure: `${r.label}: setups that succeeded`, value: `${r.succeeded}/${r.setups}`, target: `all ${r.setups}`, ok: r.succeeded === r.setups, gate: true, ratio: r.failures.length ? r.failures.join('; ').slice(0, 160) : undefined },
    );
  }
  for (const n of notRun) rows.push({ section: SECTION, figure: `${n.label}`, value: 'not run', target: '(info)', ratio: n.why });
  return {
    rows,
    detail: {
      setups,
      runs: results.map((r) => ({ label: r.label, succeeded: r.succeeded, wallMs: r.wallMs, perMin: r.perMin, ack: { p50: p50(r.ack), p99: p99(r.ack), n: r.ack.length }, answer: { p50: p50(r.answer), p99: p99(r.answer), n: r.answer.length }, failures: r.failures })),
      notRun,
    },
  };
}
