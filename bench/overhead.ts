/**
 * Job overhead: real setup jobs (real engine, the eight real steps, real helm against the fake Kubernetes API,
 * real buildah + docker-registry for step 7, the Astro/Airflow stand-ins), one after another, with every
 * adapter call timed. Per job: wall time (submit → job.succeeded) minus the time spent in helm, buildah, the
 * Kubernetes API, the Astro/Airflow APIs and the sleeps between polls of the cluster / the DAG run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInfra } from '../src/app/infra.ts';
import { createRuntime } from '../src/app/wire.ts';
import { startFakeKube, type FakeKube } from '../src/devkit/fake-kube/index.ts';
import { startLocalSetup } from '../src/devkit/local-setup.ts';
import { BENCH_SECRETS, demoSpec, ROOT } from './lib/spec.ts';
import { max, ms, p50, type Row } from './lib/stats.ts';
import { pollGaps, timedInfra, unionMs, type Call, type Category } from './lib/timed-infra.ts';

export interface OverheadOptions {
  jobs: number;
  log: (line: string) => void;
}

interface JobBreakdown {
  deployment: string;
  state: string;
  wallMs: number;
  byCategory: Record<Category, number>;
  pollSleepMs: number;
  approvalWaitMs: number;
  calls: number;
  /** wall − helm − buildah − kube API (the issue's definition) */
  strictMs: number;
  /** wall − every external call − poll sleeps − approval waits: re-bot's own time */
  overheadMs: number;
  steps: Record<string, string>;
}

export async function runOverheadBench(o: OverheadOptions): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const work = mkdtempSync(join(tmpdir(), 'rebot-bench-overhead-'));
  let kube: FakeKube | undefined;
  const calls = new Map<string, Call[]>();
  const rt = await createRuntime({
    dbPath: join(work, 're-bot.db'),
    policy: { approvers: [], required: 1, allowSelfApproval: false },
    infraFor: async (spec, resolveSecret) => {
      const infra = await createInfra(spec, { deploymentApiToken: () => resolveSecret(spec.deployment.apiToken) });
      const list = calls.get(spec.deployment.name) ?? [];
      calls.set(spec.deployment.name, list);
      return timedInfra(infra, (c) => list.push(c));
    },
  });
  const approvalWaits = new Map<string, Array<[number, number]>>();
  const off = rt.engine.on((e) => {
    if (e.type !== 'approval.requested') return;
    const start = performance.now();
    void rt.engine.decide(e.approval.id, { by: { id: 'U0BENCHAPPROVER' }, decision: 'approve', hash: e.approval.hash }).then((r) => {
      if (!r.ok) o.log(`  approval refused: ${r.message}`);
      const list = approvalWaits.get(e.job.deployment) ?? [];
      list.push([start, performance.now()]);
      approvalWaits.set(e.job.deployment, list);
    });
  });
  const results: JobBreakdown[] = [];
  try {
    kube = await startFakeKube({ dir: join(work, 'kube'), nodes: [{ name: 'n1', singleProcessOOMKill: true }] });
    rt.engine.start();
    for (let i = 0; i < o.jobs; i++) {
      const name = `ovh-${String(i).padStart(2, '0')}`;
      const local = await startLocalSetup(await demoSpec(name), { dir: join(work, 'local', name), root: ROOT, apiToken: BENCH_SECRETS.RE_BOT_DEMO_API_TOKEN, sharedKube: kube });
      try {
        const t0 = performance.now();
        const job = await rt.engine.submit({ spec: local.spec, requestedBy: { id: 'U0BENCHREQ' }, origin: { kind: 'cli' } });
        let v = await rt.engine.settled(job.id);
        while (v.state === 'waiting_approval') {
          await new Promise((r) => setTimeout(r, 5));
          v = await rt.engine.settled(job.id);
        }
        const wallMs = performance.now() - t0;
        const mine = calls.get(name) ?? [];
        const by = (cats: Category[]) => unionMs(mine.filter((c) => cats.includes(c.category)).map((c) => [c.start, c.end]));
        const byCategory = Object.fromEntries((['helm', 'images', 'kube', 'airflow', 'astro', 'probe'] as Category[]).map((c) => [c, by([c])])) as Record<Category, number>;
        const gaps = pollGaps(mine);
        const waits = approvalWaits.get(name) ?? [];
        const external = unionMs([...mine.map((c) => [c.start, c.end] as [number, number]), ...gaps, ...waits]);
        const strict = wallMs - by(['helm', 'images', 'kube']);
        const b: JobBreakdown = {
          deployment: name, state: v.state, wallMs, byCategory, pollSleepMs: unionMs(gaps), approvalWaitMs: unionMs(waits), calls: mine.length,
          strictMs: strict, overheadMs: wallMs - external, steps: Object.fromEntries(v.steps.map((s) => [s.stepId, s.state])),
        };
        results.push(b);
        if (v.state !== 'succeeded') {
          const failed = v.steps.find((s) => s.state === 'failed');
          o.log(`  ${name}: ${v.state}${failed ? ` at step ${failed.stepId}: ${failed.error ?? ''}` : ''}${v.error ? ` (${v.error})` : ''}`);
        }
        o.log(`  ${name}: ${v.state} in ${ms(wallMs)}; helm ${ms(byCategory.helm)}, buildah ${ms(byCategory.images)}, kube ${ms(byCategory.kube)}, Astro/Airflow ${ms(byCategory.airflow + byCategory.astro + byCategory.probe)}, poll sleeps ${ms(b.pollSleepMs)} → overhead ${ms(b.overheadMs)}`);
      } finally {
        await local.stop();
      }
    }
  } finally {
    off();
    await rt.close();
    await kube?.close();
    rmSync(work, { recursive: true, force: true });
  }
  const ok = results.filter((r) => r.state === 'succeeded');
  const over = results.map((r) => r.overheadMs);
  const strict = results.map((r) => r.strictMs);
  const avg = (f: (r: JobBreakdown) => number) => results.reduce((a, r) => a + f(r), 0) / Math.max(1, results.length);
  const deploy = results.map((r) => r.steps.deploy).join(',');
  const sec = 'Job overhead';
  const rows: Row[] = [
    { section: sec, figure: `per job: wall − helm − buildah − kube API − Astro/Airflow API − poll sleeps (p50 / max of ${results.length})`, value: `${ms(p50(over))} / ${ms(max(over))}`, target: '≤ 1 s', ratio: `${(max(over) / 1000).toFixed(2)}× of target (max)`, ok: max(over) <= 1000 },
    { section: sec, figure: '  wall − helm − buildah − kube API only (p50 / max)', value: `${ms(p50(strict))} / ${ms(max(strict))}`, target: '(info)', ratio: 'includes the test DAG run and poll sleeps' },
    {
      section: sec, figure: '  mean per job: wall = helm + buildah + kube + Astro/Airflow + poll sleeps + overhead',
      value: `${ms(avg((r) => r.wallMs))} = ${ms(avg((r) => r.byCategory.helm))} + ${ms(avg((r) => r.byCategory.images))} + ${ms(avg((r) => r.byCategory.kube))} + ${ms(avg((r) => r.byCategory.airflow + r.byCategory.astro + r.byCategory.probe))} + ${ms(avg((r) => r.pollSleepMs))} + ${ms(avg((r) => r.overheadMs))}`,
      target: '(info)', ratio: `step 7: ${deploy}`,
    },
    { section: sec, figure: '  jobs succeeded', value: `${ok.length}/${results.length}`, target: `all ${results.length}`, ok: ok.length === results.length, gate: true },
  ];
  return { rows, detail: { jobs: results } };
}
