/**
 * Status at scale: a DB created by openStore (real schema, real indexes) seeded with N deployments and
 * M job_steps rows in one transaction, then p50/p99 of building the `/re status` reply
 * (statusReport(store, name) + statusMessage(report)) for random deployments.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { statusReport } from '../src/jobs/status.ts';
import { statusMessage } from '../src/slack/status-blocks.ts';
import { buildPlan } from '../src/spec/plan.ts';
import { openStore } from '../src/store/db.ts';
import { demoSpec } from './lib/spec.ts';
import { ms, p50, p99, type Row } from './lib/stats.ts';

export interface StatusOptions {
  deployments: number;
  stepRows: number;
  samples: number;
  /** share of all jobs that belong to one "hot" deployment (measured separately) */
  hotShare: number;
  log: (line: string) => void;
}

export interface StatusResult {
  rows: Row[];
  detail: Record<string, unknown>;
}

/** deterministic PRNG (mulberry32) so every run measures the same deployments */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SUMMARY: Record<string, string> = {
  prerequisites: 'Kubernetes v1.33.1, Helm v4.1.4, 3 node(s), permissions ok, API token valid',
  agents: 'astro-agent revision 1; 4 components Ready; Secrets x-agent-token (created), x-pull-secret (created)',
  'secrets-backend': 'airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend → AWS Secrets Manager in us-east-1; applied by the Helm upgrade of step 2',
  'xcom-backend': 'airflow.providers.common.io.xcom.backend.XComObjectStorageBackend → s3://aws_default@xcom-bucket/xcom; applied by the Helm upgrade of step 2',
  'dag-sources': "airflow.providers.git.bundles.git.GitDagBundle 'dags' tracking main of https://github.com/acme/dags.git (subdir dags), refreshed every 60s",
  logging: 'remote logging to s3://logs/logs via connection aws_default (aws) in us-east-1; OpenLineage → https://o11y.astronomer.io; Sentinel on',
  deploy: 'pushed registry.example.com/acme/client:deploy-2026-01-01T00-00 (2bbaa1360082); astro-agent revision 2, agents on the new image',
  verify: 'agent pods Ready; test DAG re_bot_smoke run manual__2026-01-01T00:00:00+00:00 succeeded (hello_remote_agent=success)',
};

export async function runStatusBench(o: StatusOptions): Promise<StatusResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rebot-bench-status-'));
  const dbPath = join(dir, 'status.db');
  const store = openStore({ path: dbPath });
  try {
    const spec = await demoSpec('seed-template');
    const plan = buildPlan(spec);
    const steps = plan.steps;
    const stepsPerJob = steps.length;
    const totalJobs = Math.floor(o.stepRows / stepsPerJob);
    const hotJobs = Math.max(1, Math.floor(totalJobs * o.hotShare));
    const rand = rng(42);
    const sq = store.sqlite;

    const insDep = sq.prepare('INSERT INTO deployments (name, astro_id, last_spec, updated_at) VALUES (?, ?, ?, ?)');
    const insJob = sq.prepare(`INSERT INTO jobs (id, deployment, state, attempt, requested_by, origin, spec, plan, values_hash, chart,
      lease_owner, lease_expires_at, cancel_requested, error, created_at, started_at, finished_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`);
    const insStep = sq.prepare(`INSERT INTO job_steps (job_id, step_id, number, title, exec_order, state, attempt, started_at, finished_at,
      duration_ms, summary, warnings, output, checkpoint, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const insApr = sq.prepare(`INSERT INTO approvals (id, job_id, step_id, hash, title, facts, changed_keys, diff_text, state, required, policy,
      requested_at, expires_at, decided_at, rejected_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)`);
    const insVote = sq.prepare('INSERT INTO approval_votes (approval_id, user, decision, at) VALUES (?, ?, ?, ?)');

    const names = Array.from({ length: o.deployments }, (_, i) => `dep-${String(i).padStart(5, '0')}`);
    const hot = names[0];
    // jobs per deployment: the hot one gets hotShare of all jobs, the rest share the remainder evenly
    const perDep = new Map<string, number>();
    const rest = totalJobs - hotJobs;
    names.forEach((n, i) => perDep.set(n, n === hot ? hotJobs : Math.floor(rest / (o.deployments - 1)) + (i - 1 < rest % (o.deployments - 1) ? 1 : 0)));
    const specJson = JSON.stringify(spec);
    const planJson = JSON.stringify(plan);
    const smallSpec = JSON.stringify({ deployment: { name: 'x' }, note: 'older job: spec trimmed by the seeder' });
    const policy = JSON.stringify({ approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 86_400_000 });
    const facts = JSON.stringify({ chart: 'astro-remote-execution-agent 2.3.3', release: 'astro-agent in x', change: 'first install' });
    const diff = '+ image: images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.7.1\n+ workers:\n+   - name: default-worker\n'.repeat(4);
    const t0 = Date.parse('2025-01-01T00:00:00Z');
    let seq = 0;
    const started = performance.now();
    let stepRows = 0;

    sq.transaction(() => {
      for (const name of names) {
        insDep.run(name, `cl${createHash('sha1').update(name).digest('hex').slice(0, 14)}`, specJson, new Date(t0).toISOString());
        const n = perDep.get(name)!;
        for (let k = 0; k < n; k++) {
          seq++;
          const latest = k === n - 1;
          const id = `job_${createHash('sha1').update(`${name}/${k}`).digest('hex').slice(0, 32)}`;
          const created = t0 + seq * 1000;
          const r = rand();
          // the latest job of a deployment may be active (it then holds the lock); older ones are finished
          const state = latest ? (r < 0.7 ? 'succeeded' : r < 0.8 ? 'failed' : r < 0.87 ? 'running' : r < 0.94 ? 'waiting_approval' : 'queued')
            : r < 0.85 ? 'succeeded' : r < 0.95 ? 'failed' : 'cancelled';
          const at = (ms: number) => new Date(created + ms).toISOString();
          const finished = ['succeeded', 'failed', 'cancelled'].includes(state);
          // how far the job got: all steps when succeeded, else a random point
          const reached = state === 'succeeded' ? steps.length : state === 'queued' ? 0 : 1 + Math.floor(rand() * (steps.length - 1));
          const byOrder = [...steps].sort((a, b) => a.order - b.order);
          const stateOf = new Map<string, string>();
          byOrder.forEach((s, i) => {
            if (i < reached) stateOf.set(s.id, 'succeeded');
            else if (i === reached) stateOf.set(s.id, state === 'failed' ? 'failed' : state === 'running' ? 'running' : state === 'waiting_approval' ? 'waiting_approval' : state === 'cancelled' ? 'cancelled' : 'pending');
            else stateOf.set(s.id, 'pending');
          });
          const error = state === 'failed' ? 'Agents (namespace, Secrets, Helm release): pods not Ready after 300s: x-worker-default-worker CrashLoopBackOff (5 restarts)' : state === 'cancelled' ? 'cancelled by U0OPERATOR' : null;
          insJob.run(id, name, state, 1 + (rand() < 0.1 ? 1 : 0), `U0REQ${String(seq % 50).padStart(4, '0')}`, JSON.stringify({ kind: 'slack', channel: 'C0PLATFORM' }),
            latest ? specJson : smallSpec, latest ? planJson : smallSpec, plan.valuesHash, plan.chart, state === 'running' ? 'bench-owner' : null,
            state === 'running' ? created + 30_000 : null, error, at(0), state === 'queued' ? null : at(50), finished ? at(60_000) : null, at(60_000));
          for (const s of steps) {
            const st = stateOf.get(s.id)!;
            const done = st === 'succeeded';
            const output = !done ? null : s.id === 'agents' ? JSON.stringify({ helmRevision: 1, components: 4 }) : s.id === 'deploy' ? JSON.stringify({ image: 'registry.example.com/acme/client:deploy-2026', helmRevision: 2, digest: 'sha256:2bbaa1360082' }) : null;
            insStep.run(id, s.id, s.number, s.title, s.order, st, st === 'pending' ? 0 : 1, st === 'pending' ? null : at(100 * s.order), done || st === 'failed' ? at(100 * s.order + 900) : null,
              done || st === 'failed' ? 800 + Math.floor(rand() * 4000) : null, done ? SUMMARY[s.id] : null, null, output, null, st === 'failed' ? 'pods not Ready after 300s' : null);
            stepRows++;
          }
          // step 2 asks for approval once the job got there
          if (reached >= byOrder.findIndex((s) => s.id === 'agents') || state === 'waiting_approval') {
            const aid = `apr_${id.slice(4)}`;
            const pending = state === 'waiting_approval';
            insApr.run(aid, id, 'agents', createHash('sha1').update(aid).digest('hex'), `helm upgrade --install astro-agent (agents for ${name})`, facts, '["image","workers"]', diff,
              pending ? 'pending' : 'approved', policy, at(200), at(86_400_000), pending ? null : at(5000), null);
            if (!pending) insVote.run(aid, 'U0APPROVER2', 'approve', at(5000));
          }
        }
      }
    })();
    const seedMs = performance.now() - started;
    sq.pragma('wal_checkpoint(TRUNCATE)');
    sq.exec('ANALYZE');
    const size = statSync(dbPath).size;
    o.log(`  seeded ${names.length} deployments, ${totalJobs} jobs, ${stepRows} step rows in ${(seedMs / 1000).toFixed(1)} s (${(size / 1e6).toFixed(0)} MB)`);

    const build = (name: string) => {
      const report = statusReport(store, name);
      if (!report) throw new Error(`no status for ${name}`);
      return statusMessage(report);
    };
    // sanity: the reply is the real one
    const sample = build(names[1]);
    if (!sample.text.includes(names[1]) || !JSON.stringify(sample.blocks).includes('Lock')) throw new Error('status reply does not look right');

    const pick = rng(7);
    const warm = Math.min(500, o.samples);
    for (let i = 0; i < warm; i++) build(names[1 + Math.floor(pick() * (names.length - 1))]);
    const times: number[] = [];
    for (let i = 0; i < o.samples; i++) {
      const name = names[1 + Math.floor(pick() * (names.length - 1))];
      const t = performance.now();
      build(name);
      times.push(performance.now() - t);
    }
    const hotTimes: number[] = [];
    for (let i = 0; i < Math.max(50, Math.floor(o.samples / 10)); i++) {
      const t = performance.now();
      build(hot);
      hotTimes.push(performance.now() - t);
    }
    const plans = queryPlans(sq, names[1]);
    const rows: Row[] = [
      { section: 'Status at scale', figure: `/re status reply p50 (${names.length} deployments, ${stepRows.toLocaleString('en-US')} step rows)`, value: ms(p50(times)) },
      { section: 'Status at scale', figure: '/re status reply p99', value: ms(p99(times)), target: '≤ 5 ms', ratio: `${(p99(times) / 5).toFixed(2)}× of target`, ok: p99(times) <= 5 },
      { section: 'Status at scale', figure: `  hot deployment (${hotJobs.toLocaleString('en-US')} jobs) p99`, value: ms(p99(hotTimes)), target: '(info)', ratio: `p50 ${ms(p50(hotTimes))}` },
    ];
    return { rows, detail: { deployments: names.length, jobs: totalJobs, stepRows, hotJobs, seedMs, dbBytes: size, samples: times.length, p50: p50(times), p99: p99(times), hotP50: p50(hotTimes), hotP99: p99(hotTimes), queryPlans: plans } };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SQLite's plan for each query statusReport runs (shown in BENCHMARKS.md when an index is missing). */
function queryPlans(sq: import('better-sqlite3').Database, name: string): Record<string, string[]> {
  const job = sq.prepare('SELECT id FROM jobs WHERE deployment = ? ORDER BY created_at DESC, id DESC LIMIT 1').get(name) as { id: string };
  const apr = sq.prepare('SELECT id FROM approvals WHERE job_id = ? LIMIT 1').get(job.id) as { id: string } | undefined;
  const q: Record<string, [string, unknown[]]> = {
    latestJobId: ['SELECT id FROM jobs WHERE deployment = ? ORDER BY created_at DESC, id DESC LIMIT 1', [name]],
    job: ['SELECT * FROM jobs WHERE id = ?', [job.id]],
    steps: ['SELECT * FROM job_steps WHERE job_id = ? ORDER BY number ASC', [job.id]],
    approvals: ['SELECT * FROM approvals WHERE job_id = ? ORDER BY requested_at ASC', [job.id]],
    votes: ['SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY at ASC', [apr?.id ?? 'x']],
    activeJobFor: ["SELECT * FROM jobs WHERE deployment = ? AND state IN ('queued','running','waiting_approval') LIMIT 1", [name]],
  };
  const out: Record<string, string[]> = {};
  for (const [k, [sql, args]] of Object.entries(q)) out[k] = (sq.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail);
  return out;
}
