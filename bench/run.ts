/**
 * `npm run bench` — every benchmark of BENCHMARKS.md, one table at the end.
 *
 *   npm run bench                      full run (≈ 6–8 min on 2 cores; run it on a quiet machine)
 *   npm run bench -- --smoke           small counts, same code paths, same table (CI; ≈ 1 min)
 *   npm run bench -- --only ack,status sections: status, ack (ack latency + memory/start), overhead, slack, redact
 *   npm run bench -- --only pg         opt-in, not in the default run: PostgreSQL beside SQLite at the store level
 *                                      (needs initdb/pg_ctl, as the PostgreSQL tests do; reports "not run" without)
 *   npm run bench -- --only pg-jobs    opt-in: real `re-bot start` replicas, setups/min and /re status latency, SQLite
 *                                      (1 replica) beside PostgreSQL (1 and 3); bench/pg-jobs.ts
 *   npm run bench -- --set ack.rounds=2,ack.jobs=20   override single counts (a shorter run of one figure)
 *   npm run bench -- --json FILE       also write every figure and raw detail as JSON
 *   npm run bench -- --markdown        also print the table as Markdown (for BENCHMARKS.md)
 *
 * Exit code: 0 unless a benchmark BROKE — it threw, or a sanity gate failed (setup jobs did not succeed,
 * answers were not 200 / not the right reply, a Slack write was lost, a final checklist was wrong), which
 * makes its figures meaningless. A missed timing, rate or count target never changes the exit code.
 */
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { createLogger, setLogger } from '../src/log.ts';
import { runAckBench } from './ack.ts';
import { runOverheadBench } from './overhead.ts';
import { runSlackBudgetBench } from './slack-budget.ts';
import { runStatusBench } from './status.ts';
import { runRedactBench } from './redact.ts';
import { runPgStoreBench } from './pg-store.ts';
import { runPgJobsBench } from './pg-jobs.ts';
import { setBenchSecretEnv } from './lib/spec.ts';
import { markdownTable, textTable, type Row } from './lib/stats.ts';

const SECTIONS = ['status', 'ack', 'overhead', 'slack', 'redact', 'pg', 'pg-jobs'] as const;
/** opt-in sections: run only when named with --only */
const OPT_IN = new Set<string>(['pg', 'pg-jobs']);
type Section = (typeof SECTIONS)[number];

interface Args {
  smoke: boolean;
  only: Set<Section>;
  json?: string;
  markdown: boolean;
  /** --set ack.rounds=2,ack.jobs=20: override single counts (a shorter run of one figure) */
  set: Array<[string, string, number]>;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { smoke: false, only: new Set(SECTIONS.filter((s) => !OPT_IN.has(s))), markdown: false, set: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--smoke') a.smoke = true;
    else if (v === '--markdown') a.markdown = true;
    else if (v === '--json') a.json = argv[++i];
    else if (v === '--only' || v.startsWith('--only=')) {
      const list = (v.includes('=') ? v.split('=')[1] : argv[++i]) ?? '';
      const picked = list.split(',').map((s) => s.trim()).filter(Boolean);
      for (const p of picked) if (!SECTIONS.includes(p as Section)) throw new Error(`--only: unknown section ${p} (${SECTIONS.join(', ')})`);
      a.only = new Set(picked as Section[]);
    } else if (v === '--set') {
      for (const kv of (argv[++i] ?? '').split(',').filter(Boolean)) {
        const m = /^(\w+)\.(\w+)=(\d+(?:\.\d+)?)$/.exec(kv.trim());
        if (!m) throw new Error(`--set: expected section.count=number (e.g. ack.rounds=2), got "${kv}"`);
        a.set.push([m[1], m[2], Number(m[3])]);
      }
    } else throw new Error(`unknown option ${v}\nusage: npm run bench [-- --smoke] [--only ${SECTIONS.join(',')}] [--set ack.rounds=2,…] [--json FILE] [--markdown]`);
  }
  return a;
}

/** counts per mode: full = the issue's figures, smoke = the same code paths in about a minute */
const COUNTS = {
  full: {
    status: { deployments: 10_000, stepRows: 1_000_000, samples: 10_000, hotShare: 0.01 },
    ack: { concurrency: 200, rounds: 10, jobs: 20, starts: 3 },
    overhead: { jobs: 5 },
    slack: { jobs: 50, timeScale: 5, fault429: 0.1 },
    pg: { deployments: 2_000, jobsPerDeployment: 10, claimJobs: 2_000, claimers: 4, samples: 2_000 },
  },
  smoke: {
    status: { deployments: 200, stepRows: 16_000, samples: 1_000, hotShare: 0.01 },
    ack: { concurrency: 20, rounds: 2, jobs: 2, starts: 1 },
    overhead: { jobs: 1 },
    slack: { jobs: 4, timeScale: 20, fault429: 0.1 },
    pg: { deployments: 100, jobsPerDeployment: 5, claimJobs: 200, claimers: 4, samples: 300 },
  },
};

function sh(cmd: string): string {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

function machine() {
  return {
    cpus: cpus().length,
    nproc: sh('nproc'),
    cpuModel: cpus()[0]?.model ?? '?',
    memTotalGiB: +(totalmem() / 2 ** 30).toFixed(1),
    memFreeGiB: +(freemem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform} ${sh('uname -r')}`,
    helm: sh('.tools/bin/helm version --short'),
    buildah: sh('buildah --version'),
    commit: sh('git rev-parse --short HEAD') + (sh('git status --porcelain --untracked-files=no') ? ' (+ uncommitted changes)' : ''),
    loadavg: loadavg().map((l) => +l.toFixed(2)),
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const mode = args.smoke ? 'smoke' : 'full';
  const counts = structuredClone(COUNTS[mode]);
  const byName = counts as unknown as Record<string, Record<string, number>>;
  for (const [sec, key, n] of args.set) {
    if (!byName[sec] || !(key in byName[sec])) throw new Error(`--set: no count ${sec}.${key} (${Object.entries(counts).map(([s, c]) => Object.keys(c).map((k) => `${s}.${k}`).join(', ')).join(', ')})`);
    byName[sec][key] = n;
  }
  setBenchSecretEnv();
  // the jobs' own logs (steps, engine) would drown the table: keep them in memory, count errors
  const logLines: string[] = [];
  setLogger(createLogger({}, new Writable({ write: (c, _e, cb) => (logLines.length < 50_000 && logLines.push(String(c)), cb()) })));
  const say = (l: string) => process.stdout.write(l + '\n');
  const before = machine();
  say(`re-bot benchmarks (${mode}) — ${before.nproc} CPU(s) ${before.cpuModel}, ${before.memTotalGiB} GiB, node ${before.node}, load average ${before.loadavg.join(' ')}`);
  say(`command: npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`);

  const rows: Row[] = [];
  const detail: Record<string, unknown> = {};
  let broke = false;
  const section = async (name: Section, title: string, run: () => Promise<{ rows: Row[]; detail: Record<string, unknown> }>) => {
    if (!args.only.has(name)) return;
    say(`\n== ${title}`);
    const t = performance.now();
    try {
      const r = await run();
      rows.push(...r.rows);
      detail[name] = r.detail;
      for (const row of r.rows) if (row.gate && row.ok === false) {
        broke = true;
        say(`  BROKEN: ${row.figure}: ${row.value}`);
      }
    } catch (err) {
      broke = true;
      const msg = err instanceof Error ? err.message : String(err);
      say(`  BROKEN: ${err instanceof Error ? err.stack : msg}`);
      rows.push({ section: title, figure: '(benchmark)', value: '', broken: msg.split('\n')[0].slice(0, 120) });
    }
    say(`  (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  };

  const t0 = performance.now();
  await section('status', 'Status at scale', () => runStatusBench({ ...counts.status, log: say }));
  await section('ack', 'Ack latency, memory and start', () => runAckBench({ ...counts.ack, log: say }));
  await section('overhead', 'Job overhead', () => runOverheadBench({ ...counts.overhead, log: say }));
  await section('slack', 'Slack call budget', () => runSlackBudgetBench({ ...counts.slack, log: say }));
  await section('redact', 'Redactor', () => runRedactBench({ smoke: args.smoke, log: say }));
  await section('pg', 'PostgreSQL vs SQLite (store level; the engine is not on PostgreSQL yet)', () => runPgStoreBench({ ...counts.pg, log: say }));
  await section('pg-jobs', 'Jobs end to end, SQLite vs PostgreSQL (real re-bot start replicas)', () => runPgJobsBench({ smoke: args.smoke, log: say }));
  const totalS = (performance.now() - t0) / 1000;
  const after = machine();

  say(`\n${textTable(rows)}`);
  const missed = rows.filter((r) => r.ok === false && !r.gate).map((r) => `${r.section}: ${r.figure.trim()}`);
  say(`\n${mode} run: ${totalS.toFixed(0)} s; load average before ${before.loadavg.join(' ')}, after ${after.loadavg.join(' ')} (${before.nproc} CPUs)`);
  if (missed.length) say(`targets missed: ${missed.join(' | ')}`);
  if (broke) say('a benchmark BROKE (see above): exit code 1');
  if (args.markdown) say(`\n${markdownTable(rows)}`);
  if (args.json) {
    writeFileSync(args.json, JSON.stringify({ mode, command: process.argv.slice(2), totalSeconds: totalS, machine: { before, after }, rows, detail, errorLogLines: logLines.filter((l) => l.includes('"level":50')).slice(0, 20) }, null, 2));
    say(`wrote ${args.json}`);
  }
  return broke ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
