/**
 * `re-bot start` on PostgreSQL (RE_BOT_DATABASE_URL): two bots on one database are two replicas. A job
 * submitted on one is run by whichever claims it, its approval is clicked on the other, the thread is posted
 * once, and both answer /readyz (with PostgreSQL's migrations) and `/re status` from the shared store. A setup
 * wizard whose pages reach different replicas goes on where it was (its session is in the database).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startBot, type Bot } from '../../src/app/bot.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { pressInMessage, pressInView, selectInView, viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';
import { interactiveBody, signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';
import { createLogger } from '../../src/log.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import { parentKey } from '../../src/slack/progress.ts';
import { startPostgres, type PgCluster } from '../support/postgres.ts';
import { describeWithTools } from '../support/tools.ts';
import { SECRETS, wizardPages } from '../slack/harness.ts';
import { Writable } from 'node:stream';

const root = join(import.meta.dirname, '..', '..');
const SIGNING = 'bot-pg-signing-secret';
const CHANNEL = 'C0BOTPG';
const REQUESTER = 'U0REQUESTR';
const APPROVER = 'U0APPROVER2';
const silent = createLogger({}, new Writable({ write: (_c, _e, cb) => cb() }));

describeWithTools(['postgresql'], 're-bot start on PostgreSQL: two replicas on one database', () => {
  let cluster: PgCluster;
  let url: string;
  let emu: SlackEmulator;
  const bots: Bot[] = [];
  const previousKey = process.env.RE_BOT_SECRET_KEY;

  beforeAll(async () => {
    cluster = await startPostgres();
    url = await cluster.createDatabase('bot_pg');
    process.env.RE_BOT_SECRET_KEY = randomBytes(32).toString('base64'); // the same on every replica
    emu = await new SlackEmulator({ usergroups: { S0APPROVERS: [APPROVER] } }).start();
  }, 60_000);
  afterAll(async () => {
    for (const b of bots) await b.stop().catch(() => undefined);
    await emu?.close();
    cluster?.stop();
    if (previousKey === undefined) delete process.env.RE_BOT_SECRET_KEY;
    else process.env.RE_BOT_SECRET_KEY = previousKey;
  });

  const handlers = (): StepHandler[] => STEP_IDS.map((id) => ({
    id,
    async run(ctx) {
      if (id === 'agents') {
        const grant = await ctx.requireApproval({ title: 'helm upgrade --install', hash: `h-${ctx.plan.valuesHash}`, diffText: '+ image: x', changedKeys: ['image'], facts: {} });
        return { status: 'succeeded', summary: `approved by ${grant.approvedBy.join(', ')}` };
      }
      return { status: 'succeeded', summary: `${id} ok` };
    },
  }));

  const start = () => startBot({
    env: {
      RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-bot-pg', SLACK_SIGNING_SECRET: SIGNING, SLACK_API_URL: emu.apiUrl,
      RE_BOT_APPROVERS: 'S0APPROVERS', RE_BOT_OPERATORS: '*', RE_BOT_HTTP_PORT: '0', RE_BOT_DATABASE_URL: url,
    },
    logger: silent,
    host: '127.0.0.1',
    runtime: { handlers: handlers(), infraFor: async () => ({}) as never, pollMs: 20 },
    slack: { pacingMs: 5, retryAfterUnitMs: 20, baseBackoffMs: 10 },
  }).then((b) => (bots.push(b), b));

  const post = async (b: Bot, body: string) => {
    const s = signRequest(SIGNING, body);
    return (await fetch(`${b.url}/slack/events`, { method: 'POST', body: s.body, headers: s.headers })).status;
  };
  const until = async <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 15_000): Promise<T> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('runs a job submitted on one replica, decided on the other, posts its thread once, and both answer status and readiness', async () => {
    const [a, b] = [await start(), await start()];
    expect(a.runtime.repo.dialect).toBe('postgres');
    expect(a.runtime.store).toBeUndefined(); // no SQLite file behind a PostgreSQL replica
    for (const bot of [a, b]) {
      const r = await fetch(`${bot.url}/readyz`);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { checks: unknown }).checks).toEqual({ db: true, migrations: true, slack: true });
    }
    const loaded = await loadSpecFile(join(root, 'examples', 'aws-minimal.yaml'));
    if (!loaded.ok) throw new Error('example spec does not parse');
    const job = await a.runtime.engine.submit({ spec: loaded.spec, requestedBy: { id: REQUESTER }, origin: { kind: 'slack', channel: CHANNEL } });
    await until(async () => (await b.runtime.engine.job(job.id))?.state === 'waiting_approval', 'the approval, seen from the other replica');

    // the approval message: posted by whichever replica holds the channel, once
    const parentTs = await until(async () => (await a.slack.outbox.tsOf(parentKey(job.id))) ?? (await b.slack.outbox.tsOf(parentKey(job.id))), 'the thread parent');
    const approval = await until(async () => emu.replies(CHANNEL, parentTs).find((x) => JSON.stringify(x.blocks).includes('re_approve')), 'the approval message');
    const click = interactiveBody(pressInMessage(emu, APPROVER, CHANNEL, approval.ts, 're_approve'));
    // the same click reaches both replicas (a retried delivery): one vote
    expect(await Promise.all([post(b, click), post(a, click)])).toEqual([200, 200]);
    await until(async () => (await a.runtime.engine.job(job.id))?.state === 'succeeded', 'the job to succeed');

    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const votes = await db.query('SELECT count(*)::int AS n FROM approval_votes');
      expect(votes.rows[0].n).toBe(1);
      const decided = await db.query(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'approval.decided'`);
      expect(decided.rows[0].n).toBe(1);
    } finally {
      await db.end();
    }
    await Promise.all([a.slack.outbox.idle(5000), b.slack.outbox.idle(5000)]);
    const parents = emu.callsTo('chat.postMessage').filter((c) => c.status === 200 && !(c.args as { thread_ts?: string }).thread_ts);
    expect(parents).toHaveLength(1);

    const id = 'bot-pg-status';
    const s = slashCommandBody({ command: '/re', text: 'status aws-minimal', user_id: REQUESTER, user_name: 'req', channel_id: CHANNEL, team_id: emu.teamId, trigger_id: emu.issueTrigger(REQUESTER), response_url: emu.responseUrl(id), api_app_id: 'A0', token: 'x' });
    expect(await post(b, s)).toBe(200);
    expect(JSON.stringify(await emu.waitResponse(id))).toMatch(/aws-minimal/);
  }, 90_000);

  /** like Slack: the user's choices (dispatch selects) and the submission of the open wizard page, sent to `bot` */
  const page = async (bot: Bot, user: string, values: Record<string, string>) => {
    for (const [block, value] of Object.entries(values)) {
      const b = (emu.topView(user)?.view.blocks as any[] | undefined)?.find((x) => x.block_id === block);
      if (!b?.dispatch_action || b.element.initial_option?.value === value) continue;
      const before = emu.callsTo('views.update').length;
      expect(await post(bot, interactiveBody(selectInView(emu, user, block, value)))).toBe(200);
      await until(async () => emu.callsTo('views.update').length > before, `views.update after choosing ${block}`);
    }
    const top = emu.topView(user)!;
    const s = signRequest(SIGNING, interactiveBody(viewSubmission(emu, user, values)));
    const r = await fetch(`${bot.url}/slack/events`, { method: 'POST', body: s.body, headers: s.headers });
    expect(r.status).toBe(200);
    const text = await r.text();
    const ack = text ? JSON.parse(text) : undefined;
    expect(emu.applyViewAck(user, top.id, ack).ok).toBe(true);
    return ack;
  };

  it('a setup wizard whose first page reaches one replica and the others the second starts the job with what was typed on the first', async () => {
    const [a, b] = [await start(), await start()];
    const user = 'U0WIZARDPG';
    const opened = emu.callsTo('views.open').length;
    expect(await post(a, slashCommandBody({ command: '/re', text: 'setup', user_id: user, user_name: 'wiz', channel_id: CHANNEL, team_id: emu.teamId, trigger_id: emu.issueTrigger(user), response_url: emu.responseUrl('wiz-pg'), api_app_id: 'A0', token: 'x' }))).toBe(200);
    await until(async () => emu.callsTo('views.open').length > opened && emu.topView(user), 'the wizard modal');
    const [first, ...rest] = wizardPages('wizard-pg');
    expect((await page(a, user, first)).response_action).toBe('update');

    // what replica B reads: sealed ids, never the typed tokens
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const rows = (await db.query('SELECT * FROM wizard_sessions')).rows;
      expect(rows).toHaveLength(1);
      const raw = JSON.stringify(rows);
      expect(raw).toContain('clx0abc123');
      for (const secret of [SECRETS.apiToken, SECRETS.agentToken]) expect(raw).not.toContain(secret);
    } finally {
      await db.end();
    }

    // Back and forth on B, then every other page there
    const updates = emu.callsTo('views.update').length;
    expect(await post(b, interactiveBody(pressInView(emu, user, 're_wiz_back')))).toBe(200);
    await until(async () => emu.callsTo('views.update').length > updates, 'views.update after Back');
    expect(JSON.stringify(emu.topView(user)!.view.blocks)).toContain('clx0abc123'); // page 1 as typed on A
    await page(b, user, { 'deployment.apiToken': '', 'agent.token': '' });
    let last: unknown;
    for (const p of rest) last = await page(b, user, p);
    expect(last).toBeUndefined(); // the last page closes the modal and starts the job

    const job = await until(async () => a.runtime.engine.latestJobFor('wizard-pg'), 'the job of the wizard');
    expect(job.requestedBy).toBe(user);
    const spec = (await b.runtime.repo.deployments.lastSpec('wizard-pg')) as any;
    expect(spec.deployment).toMatchObject({ name: 'wizard-pg', id: 'clx0abc123', namespace: 'cosmic-nebula-1234' });
    expect(spec.secretsBackend).toMatchObject({ provider: 'aws-secrets-manager', region: 'us-east-1' });
    // the tokens typed on A, sealed there, open on B
    expect(await b.runtime.repo.secrets.open(spec.agent.token.stored)).toBe(SECRETS.agentToken);
    expect(await b.runtime.repo.secrets.open(spec.deployment.apiToken.stored)).toBe(SECRETS.apiToken);
    const notices = JSON.stringify(emu.callsTo('views.update').map((c) => c.args)) + emu.ephemerals.map((e) => e.text).join('\n');
    expect(notices).not.toMatch(/expired|Something went wrong|Setup not started/);
    await b.runtime.engine.cancel(job.id, { id: user });
  }, 90_000);
});
