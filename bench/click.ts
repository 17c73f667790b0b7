/**
 * The cost of one button click and one `/re status`, one request at a time, on the real `re-bot start` (HTTP
 * mode, its own process) against the bare Bolt app (bench/workers/bare-bolt.ts): the "one request at a time
 * after the load" figures of bench/ack.ts without the 20 setup jobs, so a change to the click path shows in
 * a minute instead of in a full ack run.
 *
 *   node bin/run-ts.mjs bench/click.ts [--n 200] [--json FILE]
 *   BENCH_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" node bin/run-ts.mjs bench/click.ts   # profile
 *
 * The DB is seeded before re-bot starts: `jobs` finished setup jobs of examples/demo.yaml, each with two
 * approvals an approver granted (as in the ack run once its jobs are done). Then, sequentially, each series
 * to re-bot and to the bare app:
 *  - status: `/re status <deployment>` (re-bot answers through response_url; the bench waits for the answers);
 *  - first click: Approve on a decided request by a user who has not clicked it yet (a refusal: the decision
 *    path, an audit row and an ephemeral answer);
 *  - repeat click: the same user and request again (acked only);
 *  - mixed: the ack bench's sequential clicks (load users over all requests, most of them repeats).
 * Per series: p50 latency (first byte written → last byte read) and event-loop CPU of the app's main thread
 * per request (/proc/<pid>/schedstat, the work after the ack included), each as a ratio to the bare app.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlackEmulator } from '../src/devkit/slack-emulator/server.ts';
import { interactiveBody, slashCommandBody } from '../src/devkit/slack-emulator/signer.ts';
import { createApprovals } from '../src/jobs/approvals.ts';
import { createJobEngine } from '../src/jobs/engine.ts';
import { claimNext, completeJob, getJob } from '../src/jobs/queue.ts';
import { SuspendForApproval } from '../src/jobs/runner.ts';
import { jobView } from '../src/jobs/views.ts';
import { DEFAULT_POLICY } from '../src/app/wire.ts';
import { SLACK_PROCESS_NODE_FLAGS } from '../src/app/heap.ts';
import { appendAudit } from '../src/store/audit.ts';
import { openStore } from '../src/store/db.ts';
import { BENCH_SECRETS, demoSpec, ROOT, setBenchSecretEnv, withoutClientImage } from './lib/spec.ts';
import { freePort, loopCpuMs, sleep, spawnNode, waitReady, type Child } from './lib/proc.ts';
import { ms, p50, p99, ratio, x, type Row } from './lib/stats.ts';

export interface ClickOptions {
  /** requests per series */
  n: number;
  /** finished setup jobs in the DB (two decided approvals each) */
  jobs: number;
  log: (line: string) => void;
}

const SECRET = 'bench-signing-secret-8c1f0e2d';
const CHANNEL = 'C0BENCHCHAN';
const REQUESTER = 'U0BENCHREQ';
const APPROVER = 'U0APPROVER2';
const loadUser = (i: number) => `U0LOAD${String(i).padStart(3, '0')}`;

/** a helm values diff of the size the demo's approvals carry */
const DIFF = Array.from({ length: 60 }, (_, i) => `+ agent.workers[${i}].resources.limits.memory: ${512 + i}Mi`).join('\n');

async function seed(dbPath: string, names: string[]): Promise<Array<{ id: string; hash: string }>> {
  const store = openStore({ path: dbPath });
  try {
    const engine = createJobEngine({ store, handlers: [], buildContext: () => { throw new Error('not used'); }, policy: { ...DEFAULT_POLICY, approvers: [] } });
    const iso = () => new Date().toISOString();
    const audit = (j: { id: string; deployment: string; valuesHash: string | null }, actor: string, action: string, extra: Record<string, unknown> = {}) =>
      void appendAudit(store, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash ?? undefined, ...extra });
    const ap = createApprovals({
      store, policy: { ...DEFAULT_POLICY, approvers: [], required: 1 }, now: Date.now, iso, emit: () => {}, view: (id) => jobView(store, id)!,
      audit, failJob: () => {}, kick: () => {},
    });
    const out: Array<{ id: string; hash: string }> = [];
    for (const name of names) {
      const v = await engine.submit({ spec: await demoSpec(name, withoutClientImage), requestedBy: { id: REQUESTER }, origin: { kind: 'slack', channel: CHANNEL } });
      const steps = v.steps.filter((s) => s.state === 'pending').slice(1, 3).map((s) => s.stepId);
      for (const [k, stepId] of steps.entries()) {
        claimNext(store, { owner: 'bench', now: Date.now(), leaseMs: 60_000, at: iso(), exclude: [] });
        const hash = `h${k}-${name}-${'0'.repeat(52)}`;
        const err = await ap.requireApproval(getJob(store, v.id)!, stepId, { title: `helm upgrade ${name} (step ${stepId})`, hash, diffText: DIFF, changedKeys: ['agent.workers'], facts: { chart: 'astro-agent' } })
          .then(() => undefined, (e) => e);
        if (!(err instanceof SuspendForApproval)) throw new Error(`seeding ${name}: expected an approval request, got ${String(err)}`);
        const r = await ap.decide(err.approvalId, { by: { id: APPROVER, display: 'Alex Approver' }, decision: 'approve', hash });
        if (!r.ok) throw new Error(`seeding ${name}: approval refused (${r.reason})`);
        out.push({ id: err.approvalId, hash });
      }
      claimNext(store, { owner: 'bench', now: Date.now(), leaseMs: 60_000, at: iso(), exclude: [] });
      completeJob(store, v.id, iso());
    }
    return out;
  } finally {
    store.close();
  }
}

export async function runClickBench(o: ClickOptions): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const work = mkdtempSync(join(tmpdir(), 'rebot-bench-click-'));
  const children: Child[] = [];
  const users: Record<string, { name: string; realName?: string }> = { [REQUESTER]: { name: 'req', realName: 'Rita Requester' }, [APPROVER]: { name: 'appr', realName: 'Alex Approver' } };
  for (let i = 0; i < Math.max(50, o.n); i++) users[loadUser(i)] = { name: `load${i}`, realName: `Load User ${i}` };
  const emu = await new SlackEmulator({ users }).start();
  let gen: ReturnType<typeof fork> | undefined;
  try {
    const names = Array.from({ length: o.jobs }, (_, i) => `click-${String(i).padStart(2, '0')}`);
    const dbPath = join(work, 're-bot.db');
    const approvals = await seed(dbPath, names);
    o.log(`  seeded ${names.length} finished jobs with ${approvals.length} decided approvals`);

    const port = await freePort();
    const rebot = spawnNode([...SLACK_PROCESS_NODE_FLAGS, 'bin/re-bot.mjs', 'start'], {
      logFile: join(work, 're-bot.log'),
      env: {
        ...BENCH_SECRETS,
        RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-bench-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: emu.apiUrl,
        PORT: String(port), RE_BOT_DB: dbPath, SLACK_APP_TOKEN: undefined, RE_BOT_HTTP_PORT: undefined,
        RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: REQUESTER,
      },
    });
    children.push(rebot);
    await waitReady(`http://127.0.0.1:${port}`, SECRET, rebot, 60_000);
    const barePort = await freePort();
    const bare = spawnNode(['bin/run-ts.mjs', 'bench/workers/bare-bolt.ts'], {
      logFile: join(work, 'bare.log'),
      env: { PORT: String(barePort), SLACK_SIGNING_SECRET: SECRET, SLACK_BOT_TOKEN: 'xoxb-bench-token', SLACK_API_URL: emu.apiUrl },
    });
    children.push(bare);
    await waitReady(`http://127.0.0.1:${barePort}`, SECRET, bare, 60_000);
    const urls = { rebot: `http://127.0.0.1:${port}/slack/events`, bare: `http://127.0.0.1:${barePort}/slack/events` };
    const pids = { rebot: rebot.pid, bare: bare.pid };

    gen = fork(join(ROOT, 'bin/run-ts.mjs'), [join(ROOT, 'bench/workers/loadgen.ts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      gen!.once('message', () => resolve());
      gen!.once('exit', (c) => reject(new Error(`load generator exited (${c})`)));
    });
    let seq = 0;
    const pending = new Map<number, (r: { latencies: number[]; statuses: number[] }) => void>();
    gen.on('message', (m: any) => {
      if (typeof m?.id === 'number') pending.get(m.id)?.(m);
    });
    const sequential = (url: string, bodies: string[]) =>
      new Promise<{ latencies: number[]; statuses: number[] }>((resolve) => {
        const id = ++seq;
        pending.set(id, (r) => {
          pending.delete(id);
          resolve(r);
        });
        gen!.send({ id, url, secret: SECRET, bodies, sequential: true });
      });

    const click = (user: string, a: { id: string; hash: string }) =>
      interactiveBody({
        type: 'block_actions', user: { id: user, username: user, name: user, team_id: emu.teamId }, api_app_id: 'A0123APPID', token: 'x',
        container: { type: 'message', message_ts: '1700000000.000100', channel_id: CHANNEL, is_ephemeral: false }, trigger_id: `${Date.now()}.1.${user}`,
        team: { id: emu.teamId, domain: 'acme' }, channel: { id: CHANNEL, name: 'platform' }, message: { ts: '1700000000.000100', text: '', blocks: [] },
        state: { values: {} }, response_url: emu!.responseUrl(),
        actions: [{ action_id: 're_approve', block_id: 'approval', value: `${a.id}|${a.hash}`, type: 'button', action_ts: `${Date.now() / 1000}` }],
      });
    const status = (i: number, tag: string) =>
      slashCommandBody({
        token: 'x', team_id: emu.teamId, team_domain: 'acme', channel_id: CHANNEL, channel_name: 'platform', user_id: loadUser(i % 50),
        user_name: `load${i % 50}`, command: '/re', text: `status ${names[i % names.length]}`, api_app_id: 'A0123APPID', is_enterprise_install: 'false',
        response_url: emu.responseUrl(`${tag}-${i}`), trigger_id: `${Date.now()}.${i}.bench`,
      });
    // each series' users: a fresh range per app, so "first" is a first click for re-bot (the bare app keeps nothing)
    // users 0–49: first clicks (a user/request pair not clicked before), then the same again (repeats)
    const firstClicks = () => Array.from({ length: o.n }, (_, i) => click(loadUser(i % 50), approvals[(i + Math.floor(i / 50)) % approvals.length]));
    // users 100–149: the ack bench's sequential clicks (user i % 50 on request i % count: first clicks, then repeats)
    const mixed = () => Array.from({ length: o.n }, (_, i) => click(loadUser(100 + (i % 50)), approvals[i % approvals.length]));

    type Series = 'status' | 'first click' | 'repeat click' | 'mixed click';
    const res: Record<'rebot' | 'bare', Record<Series, { p50: number; p99: number; cpu: number }>> = { rebot: {} as never, bare: {} as never };
    const measure = async (who: 'rebot' | 'bare', series: Series, bodies: string[], after?: () => Promise<unknown>) => {
      const c0 = loopCpuMs(pids[who]);
      const r = await sequential(urls[who], bodies);
      await after?.();
      await sleep(100); // the work after the last ack
      const bad = r.statuses.filter((s) => s !== 200).length;
      if (bad) throw new Error(`${who} ${series}: ${bad} non-200 answers`);
      res[who][series] = { p50: p50(r.latencies), p99: p99(r.latencies), cpu: (loopCpuMs(pids[who]) - c0) / bodies.length };
    };
    // warm both apps (not measured): JIT, connections, and re-bot's directory (display names) for the users
    // that click, as the ack run's load had (clicks on a request that does not exist)
    for (const who of ['rebot', 'bare'] as const) {
      await sequential(urls[who], Array.from({ length: 50 }, (_, i) => status(i, `warm-${who}`)));
      await sequential(urls[who], Array.from({ length: 100 }, (_, i) => click(loadUser(i < 50 ? i : 50 + i), { id: 'apr_warm', hash: 'x' })));
    }
    for (const who of ['rebot', 'bare'] as const) {
      await measure(who, 'status', Array.from({ length: o.n }, (_, i) => status(i, `s-${who}`)), () =>
        who === 'rebot' ? Promise.all(Array.from({ length: o.n }, (_, i) => emu.waitResponse(`s-rebot-${i}`, 30_000))) : Promise.resolve());
      await measure(who, 'first click', firstClicks());
      await measure(who, 'repeat click', firstClicks());
      await measure(who, 'mixed click', mixed());
    }

    const rows: Row[] = [];
    const sec = 'Click and status, one at a time';
    for (const s of ['status', 'first click', 'repeat click', 'mixed click'] as const) {
      const a = res.rebot[s];
      const b = res.bare[s];
      rows.push({ section: sec, figure: `${s}: p50 latency`, value: `${ms(a.p50)} (bare ${ms(b.p50)})`, target: '≤ 2× bare', ratio: x(ratio(a.p50, b.p50)), ok: ratio(a.p50, b.p50) <= 2 });
      rows.push({ section: sec, figure: `${s}: event-loop CPU per request`, value: `${ms(a.cpu)} (bare ${ms(b.cpu)})`, target: '(info)', ratio: x(ratio(a.cpu, b.cpu)) });
    }
    return { rows, detail: { n: o.n, jobs: o.jobs, approvals: approvals.length, results: res, workDir: work } };
  } finally {
    gen?.kill('SIGTERM');
    for (const c of children) await c.stop().catch(() => undefined);
    await emu.close().catch(() => undefined);
    if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/click.ts')) {
  const args = process.argv.slice(2);
  const opt = (name: string, d: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : d;
  };
  const json = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  setBenchSecretEnv();
  const { textTable } = await import('./lib/stats.ts');
  const { loadavg } = await import('node:os');
  const say = (l: string) => process.stdout.write(l + '\n');
  say(`click bench: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const r = await runClickBench({ n: opt('n', 200), jobs: opt('jobs', 10), log: say });
  say(textTable(r.rows));
  say(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (json) writeFileSync(json, JSON.stringify(r, null, 2));
  process.exit(0);
}
