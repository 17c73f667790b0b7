/**
 * Slack call budget: `jobs` concurrent setup jobs reporting to ONE channel through the real Slack app
 * (createSlackApp: progress → persisted outbox → Web API client) against the Slack Web API emulator, with
 * a share of all calls answered 429 (Retry-After 1). The jobs are real: real engine, the eight real steps,
 * approvals at both Helm upgrades; cluster, Helm and the image builder are the in-memory test doubles
 * (test/checklist/fake-infra.ts), the Astro/Airflow APIs the local stand-ins — Slack traffic is what is
 * measured here, helm is measured in the job-overhead section.
 *
 * Time scale: Slack's limits are per second; the outbox's production pacing is 1 post/s/channel
 * (pacingMs 1000) and Retry-After counts seconds. To keep the run short every one of those durations is
 * divided by `timeScale` (pacingMs = 1000/scale, Retry-After unit = 1000/scale ms) and rates are measured
 * in windows of 1000/scale ms, i.e. in "scaled seconds". timeScale 1 is the production setting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { createInfra } from '../src/app/infra.ts';
import { createRuntime } from '../src/app/wire.ts';
import { startFakeKube, type FakeKube } from '../src/devkit/fake-kube/index.ts';
import { startLocalSetup, type LocalSetup } from '../src/devkit/local-setup.ts';
import { SlackEmulator } from '../src/devkit/slack-emulator/server.ts';
import type { Infra } from '../src/infra/types.ts';
import type { JobView } from '../src/jobs/types.ts';
import type { SetupSpec } from '../src/spec/schema.ts';
import { createLogger } from '../src/log.ts';
import { createSlackApp } from '../src/slack/app.ts';
import { checklistMessage, finalMessage, stepResultMessage } from '../src/slack/blocks.ts';
import { loadSlackConfig } from '../src/slack/config.ts';
import { SqliteOutboxStore } from '../src/slack/outbox.ts';
import { parentKey } from '../src/slack/progress.ts';
import { createFakeInfra, type FakeInfra } from '../test/checklist/fake-infra.ts';
import { BENCH_SECRETS, demoSpec, ROOT } from './lib/spec.ts';
import { max, mean, type Row } from './lib/stats.ts';

export interface BudgetOptions {
  jobs: number;
  timeScale: number;
  /** share of all Web API calls answered 429 */
  fault429: number;
  log: (line: string) => void;
}

const CHANNEL = 'C0PLATFORM1';

/** most events in any window of `windowMs` */
function peakRate(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i] - t[j] >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

export async function runSlackBudgetBench(o: BudgetOptions): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const work = mkdtempSync(join(tmpdir(), 'rebot-bench-slack-'));
  const unit = 1000 / o.timeScale;
  const emu = await new SlackEmulator({ users: { U0BENCHREQ: { name: 'req' }, U0APPROVER2: { name: 'appr' } } }).start();
  const locals: LocalSetup[] = [];
  let kube: FakeKube | undefined;
  const logs: string[] = [];
  const logger = createLogger({}, new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const fakes = new Map<string, FakeInfra>();
  const rt = await createRuntime({
    dbPath: join(work, 're-bot.db'),
    concurrency: o.jobs,
    policy: { approvers: [], required: 1, allowSelfApproval: false },
    infraFor: async (spec, resolveSecret) => {
      // Astro/Airflow clients and the probe are real (stand-ins); kube/helm/images in memory, one per deployment
      const real = await createInfra(spec, { deploymentApiToken: () => resolveSecret(spec.deployment.apiToken) });
      let fake = fakes.get(spec.deployment.name);
      if (!fake) fakes.set(spec.deployment.name, (fake = createFakeInfra()));
      const infra: Infra = { ...real, kube: fake.kube, helm: fake.helm, images: fake.images };
      return infra;
    },
  });
  const config = loadSlackConfig({ RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-bench-token', SLACK_SIGNING_SECRET: 'bench-signing-secret-8c1f0e2d', SLACK_API_URL: emu.apiUrl, RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: '*' });
  const slack = createSlackApp({
    engine: rt.engine, config, logger, outboxStore: new SqliteOutboxStore(rt.db!), sealSecret: rt.sealSecret, deployments: rt.deployments, status: rt.status,
    pacingMs: unit, retryAfterUnitMs: unit, baseBackoffMs: 500 / o.timeScale, port: 0,
  });
  const off = rt.engine.on((e) => {
    // an approver clicks Approve as soon as the request is posted (Slack-side effect: the approval.updated event)
    if (e.type === 'approval.requested') void rt.engine.decide(e.approval.id, { by: { id: 'U0APPROVER2' }, decision: 'approve', hash: e.approval.hash });
  });
  try {
    // each deployment has its own Astro and Airflow API (as on Astro); the cluster is only a placeholder here
    kube = await startFakeKube({ dir: join(work, 'kube') });
    const specs: SetupSpec[] = [];
    for (let i = 0; i < o.jobs; i++) {
      const name = `budget-${String(i).padStart(2, '0')}`;
      const l = await startLocalSetup(await demoSpec(name), { dir: join(work, 'local', name), root: ROOT, apiToken: BENCH_SECRETS.RE_BOT_DEMO_API_TOKEN, sharedKube: kube, registry: false });
      locals.push(l);
      // the in-memory image builder "pushes" (step 7 then rolls the agents: the second approval)
      if (l.spec.images.client) l.spec.images.client = { ...l.spec.images.client, push: true, repository: `127.0.0.1:5000/re-bot/${name}` };
      specs.push(l.spec);
    }
    await slack.start();
    emu.injectFault({ method: '*', kind: 429, fraction: o.fault429, retryAfterSec: 1 });
    rt.engine.start();
    const t0 = Date.now();
    const jobs: JobView[] = [];
    for (const spec of specs) jobs.push(await rt.engine.submit({ spec, requestedBy: { id: 'U0BENCHREQ' }, origin: { kind: 'slack', channel: CHANNEL } }));
    const deadline = Date.now() + 120_000 + o.jobs * 14 * unit * 3;
    const terminal = async () => (await Promise.all(jobs.map((j) => rt.engine.job(j.id)))).every((v) => ['succeeded', 'failed', 'cancelled'].includes(v!.state));
    while (!(await terminal()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const jobsDoneMs = Date.now() - t0;
    await slack.outbox.idle(Math.max(60_000, deadline - Date.now()));
    const drainedMs = Date.now() - t0;
    emu.clearFaults();

    // ---- what reached Slack ----
    const posts = emu.calls.filter((c) => c.method === 'chat.postMessage');
    const okPosts = posts.filter((c) => c.status === 200 && c.response.ok);
    const updates = emu.calls.filter((c) => c.method === 'chat.update');
    const okUpdates = updates.filter((c) => c.status === 200 && c.response.ok);
    const got429 = emu.calls.filter((c) => c.status === 429).length;
    const outboxStates = rt.db!.prepare('SELECT state, count(*) AS n FROM slack_outbox GROUP BY state').all() as Array<{ state: string; n: number }>;
    const notSent = outboxStates.filter((s) => s.state !== 'sent').reduce((a, s) => a + s.n, 0);

    const views = await Promise.all(jobs.map((j) => rt.engine.job(j.id)));
    const parents = new Map(await Promise.all(jobs.map(async (j) => [j.id, await slack.outbox.tsOf(parentKey(j.id))] as const)));
    const perJob = jobs.map((j, i) => {
      const v = views[i]!;
      const ts = parents.get(j.id);
      const parent = ts ? emu.messages.get(`${CHANNEL}/${ts}`) : undefined;
      const replies = ts ? emu.replies(CHANNEL, ts) : [];
      const tsSet = new Set([ts, ...replies.map((r) => r.ts)]);
      const nUpdates = okUpdates.filter((c) => tsSet.has(c.args.ts)).length;
      const problems: string[] = [];
      if (v.state !== 'succeeded') problems.push(`job ${v.state}: ${v.error ?? ''}`);
      if (!parent) problems.push('no parent message');
      else if (!isDeepStrictEqual(parent.blocks, checklistMessage(v).blocks) || parent.text !== checklistMessage(v).text) problems.push('parent checklist is not the final state');
      // one reply per step (result), per approval, and the final message — each exactly once
      const expected = [...v.steps.map((s) => stepResultMessage(v, s.stepId).text), finalMessage(v).text];
      const texts = replies.map((r) => String(r.text));
      for (const e of expected) {
        const n = texts.filter((t) => t === e).length;
        if (n !== 1) problems.push(`"${e.slice(0, 40)}" posted ${n}×`);
      }
      const approvalReplies = replies.filter((r) => JSON.stringify(r.blocks).includes('approval_head'));
      if (approvalReplies.length !== v.approvals.length) problems.push(`${approvalReplies.length} approval messages for ${v.approvals.length} approvals`);
      for (const a of approvalReplies) if (!JSON.stringify(a.blocks).includes('Approved by')) problems.push('an approval message does not show the decision');
      if (replies.length !== expected.length + v.approvals.length) problems.push(`${replies.length} replies, expected ${expected.length + v.approvals.length}`);
      return { job: j.id, deployment: v.deployment, steps: v.steps.length, posts: replies.length + (parent ? 1 : 0), updates: nUpdates, exact: problems.length === 0, problems };
    });
    const inexact = perJob.filter((p) => !p.exact);
    const postsPerJob = perJob.map((p) => p.posts);
    const updatesPerJob = perJob.map((p) => p.updates);
    const steps = perJob[0]?.steps ?? 8;
    const postTimes = okPosts.filter((c) => c.args.channel === CHANNEL).map((c) => c.at);
    const peakPosts = peakRate(postTimes, unit);
    const sortedPosts = [...postTimes].sort((a, b) => a - b);
    const minGap = Math.min(...sortedPosts.slice(1).map((t, i) => t - sortedPosts[i]));
    const peakPostAttempts = peakRate(posts.map((c) => c.at), unit);
    const peakUpdates = peakRate(okUpdates.map((c) => c.at), unit);
    const peakAll = peakRate([...postTimes, ...okUpdates.map((c) => c.at)], unit);
    o.log(`  ${o.jobs} jobs done in ${(jobsDoneMs / 1000).toFixed(1)} s, outbox drained at ${(drainedMs / 1000).toFixed(1)} s; ${okPosts.length} posts, ${okUpdates.length} updates, ${got429} × 429`);
    for (const p of inexact.slice(0, 5)) o.log(`  ${p.deployment}: ${p.problems.join('; ')}`);

    const sec = 'Slack call budget';
    const scaleNote = o.timeScale === 1 ? '' : ` (time ×${o.timeScale}: per ${unit.toFixed(0)} ms)`;
    const rows: Row[] = [
      { section: sec, figure: `posts per job (${o.jobs} concurrent jobs, one channel) mean / max`, value: `${mean(postsPerJob).toFixed(1)} / ${max(postsPerJob)}`, target: `≤ ${steps + 4} (steps + 4)`, ratio: `${max(postsPerJob)}/${steps + 4}`, ok: max(postsPerJob) <= steps + 4 },
      { section: sec, figure: 'updates per job mean / max', value: `${mean(updatesPerJob).toFixed(1)} / ${max(updatesPerJob)}`, target: '(info)', ratio: `${updates.length - okUpdates.length} refused` },
      { section: sec, figure: `peak messages per second in the channel${scaleNote}`, value: `${peakPosts}`, target: '≤ 1', ratio: `closest posts ${minGap} ms apart (pacing ${unit.toFixed(0)} ms); with updates ${peakAll}`, ok: peakPosts <= 1 },
      { section: sec, figure: `429s received / writes lost (${Math.round(o.fault429 * 100)}% of calls answered 429)`, value: `${got429} / ${notSent}`, target: 'all handled', ratio: `outbox ${outboxStates.map((s) => `${s.n} ${s.state}`).join(', ')}`, ok: notSent === 0, gate: true },
      { section: sec, figure: 'final checklists exact (parent = final state, every reply once)', value: `${perJob.length - inexact.length}/${perJob.length}`, target: 'all', ok: inexact.length === 0 && perJob.length === o.jobs, gate: true },
      { section: sec, figure: '  time to drain the outbox after the jobs finished', value: `${((drainedMs - jobsDoneMs) / 1000).toFixed(1)} s`, target: '(info)', ratio: `${okPosts.length} posts at 1/${unit.toFixed(0)} ms` },
    ];
    return {
      rows,
      detail: {
        smallestPostGapsMs: sortedPosts.slice(1).map((t, i) => t - sortedPosts[i]).sort((a, b) => a - b).slice(0, 10),
        jobs: o.jobs, timeScale: o.timeScale, windowMs: unit, fault429: o.fault429, jobsDoneMs, drainedMs, posts: okPosts.length, postAttempts: posts.length,
        updates: okUpdates.length, updateAttempts: updates.length, got429, outboxStates, peakPosts, peakPostAttempts, peakUpdates, peakAll,
        postsPerJob: { mean: mean(postsPerJob), max: max(postsPerJob) }, updatesPerJob: { mean: mean(updatesPerJob), max: max(updatesPerJob) },
        inexact: inexact.map((p) => ({ deployment: p.deployment, problems: p.problems })), errorsLogged: logs.filter((l) => l.includes('"level":50')).length,
      },
    };
  } finally {
    off();
    await slack.stop().catch(() => undefined);
    await rt.close();
    for (const l of locals) await l.stop().catch(() => undefined);
    await kube?.close();
    await emu.close();
    rmSync(work, { recursive: true, force: true });
  }
}
