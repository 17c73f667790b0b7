/**
 * `re-bot start` runs setup jobs in a `re-bot worker` child: the real eight steps on the fake Kubernetes API.
 * The worker renders the jobs' Slack progress into the shared outbox, the Slack process sends it (once) and
 * gets a lean copy of each state event; a cancel from Slack interrupts a running step.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startBot, type Bot } from '../../src/app/bot.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import type { JobEvent } from '../../src/jobs/types.ts';
import { parentKey } from '../../src/slack/progress.ts';
import { demoSpec, localSetup, scratchDir, SECRETS, setSecretEnv } from '../e2e/support.ts';

// the checklist renderings done in this (the Slack) process, by job id; the worker's own are in its process
const rendered = vi.hoisted(() => [] as string[]);
vi.mock('../../src/slack/blocks.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/slack/blocks.ts')>();
  return {
    ...orig,
    checklistMessage: (...args: Parameters<typeof orig.checklistMessage>) => {
      rendered.push(args[0].id);
      return orig.checklistMessage(...args);
    },
  };
});

let kube: FakeKube;
let emu: SlackEmulator;
let bot: Bot;
const events: JobEvent[] = [];
let wakes = 0;

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
    slack: { pacingMs: 50 },
  });
  bot.runtime.engine.on((e) => events.push(e));
  // the worker's "I wrote outbox rows" reaches the Slack process's sender
  const wake = bot.slack.outbox.wake.bind(bot.slack.outbox);
  bot.slack.outbox.wake = () => {
    wakes++;
    wake();
  };
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

  it('runs the real steps in another process, which renders the Slack thread: parent, step replies, approval, final once each', async () => {
    const local = await localSetup(await demoSpec('wk-run', (s) => { delete (s.images as { client?: unknown }).client; }), { sharedKube: kube });
    try {
      const engine = bot.runtime.engine;
      const job = await engine.submit({ spec: local.spec, requestedBy: { id: 'U0REQUESTER' }, origin: { kind: 'slack', channel: 'C0RUN' } });
      expect(bot.worker!.starts()).toBe(1); // forked by the submit
      let v = await engine.settled(job.id);
      expect(v.state).toBe('waiting_approval');
      expect((await bot.ready()).info).toEqual({ jobWorker: 'running' });
      const pending = v.approvals.find((a) => a.state === 'pending')!;
      expect((await engine.decide(pending.id, { by: { id: 'U0APPROVER' }, decision: 'approve', hash: pending.hash })).ok).toBe(true);
      v = await engine.settled(job.id);
      expect(v.state, JSON.stringify(v.steps.map((s) => [s.stepId, s.state, s.error]))).toBe('succeeded');
      // the steps ran in the worker (this process has no step handlers); a lean copy of each state event
      // reaches us over IPC, a moment after the store says the job is done
      const relayed = Date.now() + 10_000;
      while (!events.some((e) => e.job.id === job.id && e.type === 'job.succeeded') && Date.now() < relayed) await new Promise((r) => setTimeout(r, 20));
      const mine = events.filter((e) => e.job.id === job.id);
      expect(mine.map((e) => e.type)).toEqual(expect.arrayContaining(['job.started', 'step.started', 'step.finished', 'approval.requested', 'job.succeeded']));
      // no progress lines, no full job views: the step the event is about, no approvals, no diff text
      expect(mine.filter((e) => e.type === 'step.progress')).toEqual([]);
      for (const e of mine.filter((e) => e.type !== 'job.queued' && !(e.type === 'approval.updated'))) {
        expect(e.job.steps.length).toBeLessThanOrEqual(1);
        expect(e.job.approvals).toEqual([]);
      }
      const asked = mine.find((e) => e.type === 'approval.requested') as Extract<JobEvent, { type: 'approval.requested' }>;
      expect(asked.approval.diffText).toBe('');
      expect((await engine.job(job.id))!.approvals.find((a) => a.id === asked.approval.id)!.diffText).toMatch(/\S/);
      expect(kube.list('apps/v1', 'Deployment', 'wk-run').length).toBeGreaterThanOrEqual(3);

      // this process rendered the checklist only for the decisions taken here (the submit posts the parent,
      // the approval updates it), none of the relayed events: the worker rendered those
      const here = rendered.filter((id) => id === job.id).length;
      expect(mine.length).toBeGreaterThan(15);
      expect(here).toBe(2);
      expect(wakes).toBeGreaterThan(0);

      // the thread as Slack has it: one parent, showing the final state
      await bot.slack.outbox.idle(20_000);
      const parents = emu.parents('C0RUN').filter((m) => m.text?.includes(job.id));
      expect(parents).toHaveLength(1);
      const parent = parents[0];
      expect(parent.text).toMatch(/succeeded/i);
      expect(JSON.stringify(parent.blocks)).not.toMatch(/agent pods ready/); // no stale progress line
      const replies = emu.replies('C0RUN', parent.ts);
      // one reply per step that ran (a step the plan skips has none), numbered as the step; a prepared step's
      // second step.finished (when the step applying it reached the cluster) is its only reply
      const ran = new Set(mine.filter((e) => e.type === 'step.finished' || e.type === 'step.skipped').map((e) => (e as { stepId: string }).stepId));
      const done = v.steps.filter((s) => ran.has(s.stepId));
      expect(done.length).toBeGreaterThanOrEqual(7);
      const stepReplies = replies.filter((m) => /^\d+\. /.test(m.text ?? ''));
      expect(stepReplies.map((m) => Number(m.text!.split('.')[0])).sort((a, b) => a - b)).toEqual(done.map((s) => s.number).sort((a, b) => a - b));
      // one approval request per approval, one final message; nothing else, nothing twice
      const approvalsAsked = replies.filter((m) => JSON.stringify(m.blocks ?? []).includes('approval_head'));
      expect(approvalsAsked).toHaveLength(v.approvals.length);
      expect(approvalsAsked[0].replyBroadcast).toBe(true);
      expect(JSON.stringify(approvalsAsked[0].blocks)).toContain('Approved by'); // updated after the click
      const finals = replies.filter((m) => JSON.stringify(m.blocks ?? []).includes('"final"'));
      expect(finals).toHaveLength(1);
      expect(replies).toHaveLength(stepReplies.length + approvalsAsked.length + finals.length);
      const posted = emu.callsTo('chat.postMessage').filter((c) => c.args.channel === 'C0RUN' && c.response.ok);
      expect(posted).toHaveLength(1 + replies.length);
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
      const job = await engine.submit({ spec: local.spec, requestedBy: { id: 'U0REQUESTER' }, origin: { kind: 'slack', channel: 'C0CANCEL' } });
      const pending = (await engine.settled(job.id)).approvals.find((a) => a.state === 'pending')!;
      await engine.decide(pending.id, { by: { id: 'U0APPROVER' }, decision: 'approve', hash: pending.hash });
      // the worker writes the step's progress line into the parent checklist
      const progressShown = async () => JSON.stringify((await bot.slack.outbox.argsOf(parentKey(job.id))) ?? {}).includes('agent pods ready');
      const waiting = Date.now() + 60_000;
      while (!(await progressShown()) && Date.now() < waiting) await new Promise((r) => setTimeout(r, 50));
      expect(await progressShown()).toBe(true);
      const t0 = Date.now();
      await engine.cancel(job.id, { id: 'U0REQUESTER' });
      // the worker's step stops: no more updates of this job's checklist after a moment
      const parentTs = await bot.slack.outbox.tsOf(parentKey(job.id));
      const parentUpdates = () => emu.callsTo('chat.update').filter((c) => c.args.channel === 'C0CANCEL' && c.args.ts === parentTs).length;
      await new Promise((r) => setTimeout(r, 1500));
      const last = parentUpdates();
      await new Promise((r) => setTimeout(r, 1500));
      expect(parentUpdates()).toBe(last);
      expect(JSON.stringify(await bot.slack.outbox.argsOf(parentKey(job.id)))).not.toContain('agent pods ready');
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect((await engine.job(job.id))!.state).toBe('cancelled');
      expect((await bot.runtime.status('wk-cancel'))!.lock).toBeUndefined();
    } finally {
      kube.heal('wk-cancel-worker-default-worker');
      await local.stop();
    }
  }, 120_000);
});
