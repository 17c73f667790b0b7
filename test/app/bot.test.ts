/**
 * The assembled bot (src/app/bot.ts, what `re-bot start` runs) against the Slack emulator: health, readiness
 * and metrics on the Slack receiver's port (HTTP mode) or their own server (Socket Mode), metrics moving while
 * a real job runs (stub step handlers, real engine and store), JSON logs with job ids and no secrets.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBot, type Bot } from '../../src/app/bot.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { pressInMessage } from '../../src/devkit/slack-emulator/payloads.ts';
import { interactiveBody, signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';
import { createLogger, logger, setLogger } from '../../src/log.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { ConfigError } from '../../src/slack/config.ts';
import { parentKey } from '../../src/slack/progress.ts';

const root = join(import.meta.dirname, '..', '..');
const SIGNING = 'bot-test-signing-secret';
const CHANNEL = 'C0BOTTEST';
const REQUESTER = 'U0REQUESTR';
const APPROVER = 'U0APPROVER2';
const STEP_SECRET = 'probe-token-Zq81xKLm02';

const logs: string[] = [];
const testLogger = createLogger({}, new Writable({ write: (c, _e, cb) => (logs.push(...String(c).split('\n').filter(Boolean)), cb()) }));
testLogger.level = 'debug'; // the per-request lines too
const previousLogger = logger();
let emu: SlackEmulator;
let bot: Bot | undefined;

beforeAll(async () => {
  // steps log through the root logger (engine ctx.log); send it to the same capture
  setLogger(testLogger);
  emu = await new SlackEmulator({ usergroups: { S0APPROVERS: [APPROVER] } }).start();
});
afterEach(async () => {
  await bot?.stop();
  bot = undefined;
});
afterAll(async () => {
  setLogger(previousLogger);
  forgetAllSecrets();
  await emu.close();
});

function stubHandlers(): StepHandler[] {
  return STEP_IDS.map((id) => ({
    id,
    async run(ctx) {
      ctx.progress(`working on ${id}`);
      if (id === 'agents') {
        const grant = await ctx.requireApproval({ title: 'helm upgrade --install', hash: `h-${ctx.plan.valuesHash}`, diffText: '+ image: x', changedKeys: ['image'], facts: {} });
        return { status: 'succeeded', summary: `approved by ${grant.approvedBy.join(', ')}` };
      }
      if (id === 'verify') ctx.log.warn({ err: new Error(`probe failed with token ${STEP_SECRET}`) }, 'probe retried');
      return { status: 'succeeded', summary: `${id} ok` };
    },
  }));
}

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    RE_BOT_SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: 'xoxb-bot-test',
    SLACK_SIGNING_SECRET: SIGNING,
    SLACK_API_URL: emu.apiUrl,
    RE_BOT_APPROVERS: 'S0APPROVERS',
    RE_BOT_OPERATORS: '*',
    RE_BOT_HTTP_PORT: '0',
    RE_BOT_DB: join(mkdtempSync(join(tmpdir(), 're-bot-bot-')), 'bot.db'),
    ...extra,
  };
}

function start(e: Record<string, string>) {
  return startBot({
    env: e,
    logger: testLogger,
    host: '127.0.0.1',
    runtime: { handlers: stubHandlers(), infraFor: async () => ({}) as never, pollMs: 20 },
    slack: { pacingMs: 5, retryAfterUnitMs: 20, baseBackoffMs: 10 },
  });
}

async function get(path: string) {
  const r = await fetch(`${bot!.url}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
}

/** one sample's value from Prometheus text (0 when the series does not exist yet) */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

async function slackPost(body: string) {
  const s = signRequest(SIGNING, body);
  const r = await fetch(`${bot!.url}/slack/events`, { method: 'POST', body: s.body, headers: s.headers });
  return { status: r.status, body: await r.text() };
}

let responseSeq = 0;
function command(text: string, responseId = `bot-${++responseSeq}`): string {
  return slashCommandBody({ command: '/re', text, user_id: REQUESTER, user_name: 'req', channel_id: CHANNEL, team_id: emu.teamId, trigger_id: emu.issueTrigger(REQUESTER), response_url: emu.responseUrl(responseId), api_app_id: 'A0', token: 'x' });
}

/** status/history ack at once (empty) and answer through the response_url */
async function slackAnswer(text: string) {
  const id = `bot-${++responseSeq}`;
  const acked = await slackPost(command(text, id));
  return { status: acked.status, acked: acked.body, body: JSON.stringify((await emu.waitResponse(id)) ?? null) };
}

async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function spec(): Promise<SetupSpec> {
  const r = await loadSpecFile(join(root, 'examples', 'aws-minimal.yaml'));
  if (!r.ok) throw new Error('example spec does not parse');
  return r.spec;
}

describe('re-bot start (HTTP mode)', () => {
  it('serves healthz, readyz and metrics on the Slack port; metrics move while a job runs; logs are JSON with job ids and no secrets', async () => {
    registerSecret(STEP_SECRET);
    bot = await start(env());
    expect(bot.config.mode).toBe('http');

    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ok: true, checks: { db: true, migrations: true, slack: true }, info: { jobWorker: 'in process' } });

    const before = (await get('/metrics')).body;
    for (const name of ['re_bot_jobs', 're_bot_step_duration_seconds', 're_bot_approvals_pending', 're_bot_slack_outbox_depth', 're_bot_slack_outbox_oldest_age_seconds', 're_bot_slack_api_calls_total', 're_bot_slack_rate_limited_total', 're_bot_slack_ack_latency_seconds']) {
      expect(before).toContain(`# TYPE ${name} `);
    }
    expect(sample(before, 're_bot_jobs{state="succeeded"}')).toBe(0);
    expect(sample(before, 're_bot_slack_api_calls_total{method="auth.test",outcome="ok"}')).toBe(1);

    // the first post is rate-limited once; the outbox waits and posts again
    emu.injectFault({ method: 'chat.postMessage', kind: 429, count: 1, retryAfterSec: 1 });
    const job = await bot.runtime.engine.submit({ spec: await spec(), requestedBy: { id: REQUESTER }, origin: { kind: 'slack', channel: CHANNEL } });
    await until(async () => (await bot!.runtime.engine.job(job.id))!.state === 'waiting_approval', 'the approval');
    let m = (await get('/metrics')).body;
    expect(sample(m, 're_bot_jobs{state="waiting_approval"}')).toBe(1);
    expect(sample(m, 're_bot_approvals_pending')).toBe(1);
    expect(sample(m, 're_bot_step_duration_seconds_count{step="prerequisites",outcome="succeeded"}')).toBe(1);

    await bot.slack.outbox.idle(5000);
    const parentTs = (await bot.slack.outbox.tsOf(parentKey(job.id)))!;
    const approval = emu.replies(CHANNEL, parentTs).find((x) => JSON.stringify(x.blocks).includes('re_approve'))!;
    expect((await slackPost(interactiveBody(pressInMessage(emu, APPROVER, CHANNEL, approval.ts, 're_approve')))).status).toBe(200);
    await until(async () => (await bot!.runtime.engine.job(job.id))!.state === 'succeeded', 'the job to succeed');
    // status and history from the store (the runtime's deps)
    expect(await slackAnswer('status aws-minimal')).toMatchObject({ status: 200, acked: '', body: expect.stringContaining('aws-minimal') });
    expect(await slackAnswer('history aws-minimal')).toMatchObject({ status: 200, acked: '', body: expect.stringContaining(job.id) });
    await bot.slack.outbox.idle(5000);

    m = (await get('/metrics')).body;
    expect(sample(m, 're_bot_jobs{state="succeeded"}')).toBe(1);
    expect(sample(m, 're_bot_jobs{state="waiting_approval"}')).toBe(0);
    expect(sample(m, 're_bot_approvals_pending')).toBe(0);
    expect(sample(m, 're_bot_step_duration_seconds_count{step="verify",outcome="succeeded"}')).toBe(1);
    expect(sample(m, 're_bot_slack_rate_limited_total{method="chat.postMessage"}')).toBe(1);
    expect(sample(m, 're_bot_slack_api_calls_total{method="chat.postMessage",outcome="rate_limited"}')).toBe(1);
    expect(sample(m, 're_bot_slack_api_calls_total{method="chat.postMessage",outcome="ok"}')).toBe(emu.callsTo('chat.postMessage').filter((c) => c.status === 200).length);
    expect(sample(m, 're_bot_slack_api_calls_total{method="chat.update",outcome="ok"}')).toBeGreaterThan(0);
    expect(sample(m, 're_bot_slack_ack_latency_seconds_count{kind="action"}')).toBe(1);
    expect(sample(m, 're_bot_slack_ack_latency_seconds_count{kind="command"}')).toBe(2);
    expect(sample(m, 're_bot_slack_ack_latency_seconds_bucket{le="3",kind="command"}')).toBe(2);
    expect(sample(m, 're_bot_slack_outbox_depth')).toBe(0);
    expect(sample(m, 're_bot_slack_outbox_oldest_age_seconds')).toBe(0);

    // logs: every line is JSON; job and step events carry the job id; the secret in a step's error is redacted
    const parsed = logs.map((l) => JSON.parse(l));
    expect(parsed.find((l) => l.msg === 'job.succeeded')).toMatchObject({ jobId: job.id, deployment: 'aws-minimal' });
    expect(parsed.find((l) => l.msg === 'step.finished' && l.stepId === 'agents')).toMatchObject({ jobId: job.id });
    const warned = parsed.find((l) => l.msg === 'probe retried')!;
    expect(warned).toMatchObject({ jobId: job.id, stepId: 'verify', err: { message: 'probe failed with token [REDACTED]' } });
    // each Slack request is logged with its id, who asked and what: at debug level (info only when slow)
    const request = parsed.find((l) => l.msg === 'slack request handled' && l.slackRequest === '/re');
    expect(request).toMatchObject({ level: 20, requestId: expect.stringMatching(/^[0-9a-f-]{36}$/), slackUser: expect.stringMatching(/^U/), ackMs: expect.any(Number), ms: expect.any(Number) });
    expect(logs.join('\n')).not.toContain(STEP_SECRET);
    expect(logs.join('\n')).not.toContain('xoxb-bot-test');
  });

  it('is not ready once the DB is closed', async () => {
    const b = await start(env());
    expect((await b.ready()).ok).toBe(true);
    await b.slack.stop();
    await b.runtime.engine.stop();
    b.runtime.db!.close();
    const r = await b.ready();
    expect(r.ok).toBe(false);
    expect(r.checks.db).not.toBe(true);
  });

  it('refuses bad variables with ConfigError naming them', async () => {
    await expect(start(env({ RE_BOT_HTTP_PORT: 'http' }))).rejects.toThrow(ConfigError);
    await expect(start(env({ RE_BOT_CONCURRENCY: '0' }))).rejects.toThrow(/RE_BOT_CONCURRENCY/);
    await expect(start(env({ RE_BOT_MAX_CHILD_PROCESSES: 'two' }))).rejects.toThrow(/RE_BOT_MAX_CHILD_PROCESSES: expected a positive integer/);
    await expect(start(env({ SLACK_SIGNING_SECRET: '' }))).rejects.toThrow(/SLACK_SIGNING_SECRET/);
  });
});

describe('re-bot start (Socket Mode)', () => {
  it('serves health on RE_BOT_HTTP_PORT and is ready once the socket is connected', async () => {
    const e = env({ RE_BOT_SLACK_MODE: 'socket', SLACK_APP_TOKEN: 'xapp-1-bot-test' });
    delete e.SLACK_SIGNING_SECRET;
    bot = await start(e);
    expect(bot.config.mode).toBe('socket');
    expect(bot.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await get('/healthz')).status).toBe(200);
    const ready = await until(async () => {
      const r = await get('/readyz');
      return r.status === 200 && r;
    }, 'readiness');
    expect(JSON.parse(ready.body).checks.slack).toBe(true);
    expect((await get('/slack/events')).status).toBe(404);
    const m = (await get('/metrics')).body;
    expect(sample(m, 're_bot_slack_api_calls_total{method="auth.test",outcome="ok"}')).toBe(1);
  });
});

describe('re-bot start (CLI)', () => {
  it('starts, logs JSON with its port, answers /readyz, and exits 0 on SIGTERM', async () => {
    const e = env();
    const child = execa('node', [join(root, 'bin', 're-bot.mjs'), 'start'], { reject: false, env: { PATH: process.env.PATH!, HOME: tmpdir(), ...e }, extendEnv: false, timeout: 60_000 });
    let err = '';
    child.stderr!.on('data', (c) => (err += String(c)));
    const started = await until(() => err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.port !== undefined), 'the start-up log line', 30_000);
    expect(started).toMatchObject({ app: 're-bot', mode: 'http' });
    const r = await fetch(`http://127.0.0.1:${started.port}/readyz`);
    expect(r.status).toBe(200);
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    expect(err).toContain('"signal":"SIGTERM"');
    expect(err).not.toContain('xoxb-bot-test');
  });


  it('fails closed: without RE_BOT_APPROVERS and RE_BOT_OPERATORS (unset or empty) it exits 2 naming each, before any Slack call', async () => {
    const calls = emu.calls.length;
    // approvers unset, operators empty (the base manifest's value); ' , ' and `*` are in test/unit/policy-env.test.ts
    const e: Record<string, string> = { ...env(), RE_BOT_OPERATORS: '' };
    delete e.RE_BOT_APPROVERS;
    const r = await execa('node', [join(root, 'bin', 're-bot.mjs'), 'start'], { reject: false, env: { PATH: process.env.PATH!, HOME: tmpdir(), ...e }, extendEnv: false, timeout: 60_000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/RE_BOT_APPROVERS:? is not set: list the Slack user ids \(U…\) or user-group ids \(S…\).*or `\*` to allow anyone \(a conscious choice\)/);
    expect(r.stderr).toMatch(/RE_BOT_OPERATORS:? is not set/);
    expect(r.stderr).not.toContain('xoxb-bot-test');
    expect(emu.calls.length).toBe(calls);
  });

  it('exits 2 naming the missing variable', async () => {
    const r = await execa('node', [join(root, 'bin', 're-bot.mjs'), 'start'], { reject: false, env: { PATH: process.env.PATH!, HOME: tmpdir() }, extendEnv: false, timeout: 60_000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('SLACK_BOT_TOKEN');
  });
});
