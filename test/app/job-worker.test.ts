/**
 * `re-bot start` runs setup jobs in a `re-bot worker` child: the real eight steps on the fake Kubernetes API,
 * with their events relayed to the Slack process and a cancel from Slack interrupting a running step.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBot, type Bot } from '../../src/app/bot.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import type { JobEvent } from '../../src/jobs/types.ts';
import { demoSpec, localSetup, scratchDir, SECRETS, setSecretEnv } from '../e2e/support.ts';

let kube: FakeKube;
let emu: SlackEmulator;
let bot: Bot;
const events: JobEvent[] = [];

beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('worker-kube'), podReadyDelayMs: 100 });
  emu = await new SlackEmulator().start();
  bot = await startBot({
    env: {
      ...process.env, ...SECRETS,
      RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-worker-test', SLACK_SIGNING_SECRET: 'worker-test-signing-secret', SLACK_API_URL: emu.apiUrl,
      RE_BOT_HTTP_PORT: '0', RE_BOT_DB: join(scratchDir('worker-db'), 'bot.db'), RE_BOT_ALLOW_SELF_APPROVAL: 'false', RE_BOT_CONCURRENCY: '2',
      RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: '*',
    },
  });
  bot.runtime.engine.on((e) => events.push(e));
}, 60_000);
afterAll(async () => {
  await bot?.stop();
  await emu?.close();
  await kube?.close();
});

describe('setup jobs in the job worker', () => {
  it('readiness shows the job worker: not started before the first job', async () => {
    const r = await bot.ready();
    expect(r.info).toEqual({ jobWorker: 'idle (starts on the next job)' });
    expect(r.ok).toBe(true);
    expect(bot.worker!.starts()).toBe(0);
  });

  it('runs the real steps in another process and relays every event to the Slack process', async () => {
    const local = await localSetup(await demoSpec('wk-run', (s) => { delete (s.images as { client?: unknown }).client; }), { sharedKube: kube });
    try {
      const engine = bot.runtime.engine;
      const job = await engine.submit({ spec: local.spec, requestedBy: { id: 'U0REQUESTER' }, origin: { kind: 'slack', channel: 'C0SETUP' } });
      expect(bot.worker!.starts()).toBe(1); // forked by the submit
      let v = await engine.settled(job.id);
      expect(v.state).toBe('waiting_approval');
      expect((await bot.ready()).info).toEqual({ jobWorker: 'running' });
      const pending = v.approvals.find((a) => a.state === 'pending')!;
      expect((await engine.decide(pending.id, { by: { id: 'U0APPROVER' }, decision: 'approve', hash: pending.hash })).ok).toBe(true);
      v = await engine.settled(job.id);
      expect(v.state, JSON.stringify(v.steps.map((s) => [s.stepId, s.state, s.error]))).toBe('succeeded');
      // the steps ran in the worker (this process has no step handlers), and their events reached us; they
      // come over IPC, a moment after the store says the job is done
      const relayed = Date.now() + 10_000;
      while (!events.some((e) => e.job.id === job.id && e.type === 'job.succeeded') && Date.now() < relayed) await new Promise((r) => setTimeout(r, 20));
      const mine = events.filter((e) => e.job.id === job.id).map((e) => e.type);
      expect(mine).toEqual(expect.arrayContaining(['job.started', 'step.started', 'step.finished', 'approval.requested', 'job.succeeded']));
      // without the approvals' diff text (the store has it, for "View full diff")
      const asked = events.find((e) => e.job.id === job.id && e.type === 'approval.requested') as Extract<JobEvent, { type: 'approval.requested' }>;
      expect(asked.approval.diffText).toBe('');
      expect(asked.approval.changedKeys.length).toBeGreaterThan(0);
      expect(engine.job(job.id)!.approvals.find((a) => a.id === asked.approval.id)!.diffText).toMatch(/\S/);
      expect(kube.list('apps/v1', 'Deployment', 'wk-run').length).toBeGreaterThanOrEqual(3);
    } finally {
      await local.stop();
    }
  }, 120_000);

  it('a cancel from the Slack process stops a step running in the worker at once', async () => {
    const local = await localSetup(await demoSpec('wk-cancel', (s) => {
      delete (s.images as { client?: unknown }).client;
      s.agent.readyTimeoutSeconds = 300; // without the interrupt, step 2 would wait this long
    }), { sharedKube: kube });
    kube.crashLoop('wk-cancel-worker-default-worker', { restarts: 0 }); // not Ready, not yet failing fast
    try {
      const engine = bot.runtime.engine;
      const job = await engine.submit({ spec: local.spec, requestedBy: { id: 'U0REQUESTER' }, origin: { kind: 'slack', channel: 'C0SETUP' } });
      const pending = (await engine.settled(job.id)).approvals.find((a) => a.state === 'pending')!;
      await engine.decide(pending.id, { by: { id: 'U0APPROVER' }, decision: 'approve', hash: pending.hash });
      const waiting = Date.now() + 60_000;
      while (!events.some((e) => e.job.id === job.id && e.type === 'step.progress' && /agent pods ready/.test(e.message)) && Date.now() < waiting) await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await engine.cancel(job.id, { id: 'U0REQUESTER' });
      // the worker's step stops: no more progress of this job after a moment
      await new Promise((r) => setTimeout(r, 1500));
      const last = events.filter((e) => e.job.id === job.id && e.type === 'step.progress').length;
      await new Promise((r) => setTimeout(r, 1500));
      expect(events.filter((e) => e.job.id === job.id && e.type === 'step.progress').length).toBe(last);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(engine.job(job.id)!.state).toBe('cancelled');
      expect(bot.runtime.status('wk-cancel')!.lock).toBeUndefined();
    } finally {
      kube.heal('wk-cancel-worker-default-worker');
      await local.stop();
    }
  }, 120_000);
});
