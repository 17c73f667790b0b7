/**
 * `re-bot run` killed with SIGKILL at random moments (the process alone, leaving helm/buildah orphaned, or
 * its whole process group, as when a pod dies), then started again: each job completes, no Helm upgrade
 * is applied twice, and no approval is asked again.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/app/wire.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { createHelmAdapter } from '../../src/infra/helm.ts';
import { usesToolsIfPresent } from '../support/tools.ts';
import { countIn, demoSpec, localSetup, scratchDir, SECRETS, setSecretEnv, writeSpec } from './support.ts';

const KILLS = Number(process.env.RE_BOT_KILL_TEST_KILLS ?? 20);
const KILLS_PER_JOB = 3;

let kube: FakeKube;
beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('kill-kube'), podReadyDelayMs: 100 });
});
afterAll(() => kube?.close());

interface ChildRun { code: number | null; killed: boolean; output: string; ms: number }

function runChild(specFile: string, db: string, killAfterMs: number | undefined, group: boolean): Promise<ChildRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['bin/re-bot.mjs', 'run', specFile, '--yes', '--out', join(db, '..', 'out')], {
      env: { ...process.env, ...SECRETS, RE_BOT_DB: db, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group,
    });
    let output = '';
    let killed = false;
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => {
      killed = true;
      try {
        if (group) process.kill(-child.pid!, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch { /* already gone */ }
    }, killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, killed: killed && code === null, output, ms: Date.now() - t0 });
    });
  });
}

function jobSucceeded(db: string): boolean {
  if (!existsSync(db)) return false;
  const sqlite = new Database(db, { readonly: true });
  try {
    // a kill before the migrations ran leaves the (0600, pre-created) DB file without tables
    if (!sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = 'jobs'").get()) return false;
    const row = sqlite.prepare('select state from jobs order by created_at desc limit 1').get() as { state: string } | undefined;
    return row?.state === 'succeeded';
  } finally {
    sqlite.close();
  }
}

describe('kill -9 at random moments', () => {
  // without buildah + docker-registry step 7 skips: one approval and one upgrade per job
  const builds = usesToolsIfPresent(['buildah', 'docker-registry'], 'kill -9 during step 7: client image build, its approval and roll');
  it(`survives ${KILLS} SIGKILLs: every job completes, no upgrade applied twice, no approval asked again`, async () => {
    let kills = 0;
    let trial = 0;
    let fullRunMs = 8_000; // grows to the longest uninterrupted run seen, so kills can land anywhere in a job
    const allOutput: string[] = [];
    while (kills < KILLS) {
      trial++;
      const name = `kill-${trial}`;
      // every other job also builds and pushes the client image (step 7, a second approval and upgrade)
      const local = await localSetup(await demoSpec(name, (s) => {
        s.verify.podsTimeoutSeconds = 30;
        if (trial % 2 === 0) delete (s.images as { client?: unknown }).client;
        // … and deploys the server image through the Astro Deploys API stand-in (same approval as the client image)
        else s.images.server = { deploy: true, contextDir: 'examples/demo-project', dockerfile: 'Dockerfile', builder: 'buildah', waitTimeoutSeconds: 60, insecureRegistry: true };
      }), { sharedKube: kube, dag: { durationMs: 300 } });
      const dir = scratchDir(name);
      const db = join(dir, 're-bot.db');
      const specFile = writeSpec(local.spec, dir);
      try {
        let finished = false;
        for (let k = 0; k < KILLS_PER_JOB && kills < KILLS && !finished; k++) {
          const r = await runChild(specFile, db, 300 + Math.floor(Math.random() * fullRunMs), (kills + trial) % 2 === 0);
          allOutput.push(r.output);
          if (r.killed) {
            kills++;
            // a kill can land after the job succeeded (while the summary prints): nothing is left to resume
            finished = jobSucceeded(db);
          } else {
            fullRunMs = Math.max(fullRunMs, r.ms);
            expect(r.code, r.output).toBe(0); // finished before the kill landed
            finished = true;
          }
        }
        if (!finished) {
          const final = await runChild(specFile, db, undefined, false);
          allOutput.push(final.output);
          expect(final.code, final.output).toBe(0);
        }

        const rt = await createRuntime({ dbPath: db });
        try {
          const job = (await rt.engine.latestJobFor(name))!;
          expect(job.state).toBe('succeeded');
          expect(rt.store!.sqlite.prepare('select count(*) n from jobs').get()).toEqual({ n: 1 }); // resumed, never restarted
          const rollouts = local.spec.images.client && builds ? 2 : 1;
          // one approval per Helm upgrade, each decided once, none re-asked
          expect(job.approvals.map((a) => a.state), JSON.stringify({ steps: job.steps.map((s) => [s.stepId, s.state, s.summary]), jobs: rt.store!.sqlite.prepare('select id, state from jobs').all() })).toEqual(Array(rollouts).fill('approved'));
          for (const a of job.approvals) expect(a.approvals).toHaveLength(1);
          // each approved upgrade reached the cluster exactly once
          const history = await createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath }).history('astro-agent', name);
          const ours = history.filter((h) => h.description?.startsWith(`re-bot job ${job.id}`) && /deployed|superseded/.test(h.status));
          const perChange = new Map<string, number>();
          for (const h of ours) perChange.set(h.description!, (perChange.get(h.description!) ?? 0) + 1);
          expect([...perChange.values()], JSON.stringify(history)).toEqual(Array(rollouts).fill(1));
          expect(history.at(-1)!.status).toBe('deployed');
          if (local.spec.images.server?.deploy) {
            // one deploy for the job, however often it was killed: a resumed run reuses the deploy id
            const deploys = [...local.astro.deploys.deploys.values()];
            expect(deploys.map((d) => d.status), JSON.stringify(local.astro.deploys.log)).toEqual(['DEPLOYED']);
            expect(local.astro.deploys.log.filter((e) => e.event === 'create')).toHaveLength(1);
          }
        } finally {
          await rt.close();
        }
      } finally {
        await local.stop();
      }
    }
    expect(kills).toBeGreaterThanOrEqual(KILLS);
    expect(countIn(allOutput.join('\n'))).toBe(0);
  }, 20 * 60_000);
});
