/**
 * Drives the real Bolt app (HTTP mode, signed requests) against the Slack Web API emulator, with the
 * real store and AES-256-GCM secret box. Works with any JobEngine: pass one, or a factory that gets the
 * harness's store and secret box (the real engine needs both).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { openStore, type Store } from '../../src/store/db.ts';
import { sqliteRepository } from '../../src/store/repo.ts';
import type { WizardStore } from '../../src/slack/wizard-store.ts';
import { createSecretBox, loadSecretKey, type SecretBox } from '../../src/store/crypto.ts';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { signRequest, slashCommandBody, interactiveBody } from '../../src/devkit/slack-emulator/signer.ts';
import { pressInMessage, pressInView, selectInView, viewClosed, viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';
import { createSlackApp, type SlackAppDeps, type SlackRuntime } from '../../src/slack/app.ts';
import { loadSlackConfig } from '../../src/slack/config.ts';
import { SqliteOutboxStore } from '../../src/slack/outbox.ts';
import { parentKey } from '../../src/slack/progress.ts';
import { createLogger } from '../../src/log.ts';
import type { JobEngine } from '../../src/jobs/types.ts';

export const SECRET = 'test-signing-secret-123';
export const CHANNEL = 'C0123CHAN';
export const REQUESTER = 'U0REQUESTR';
export const APPROVER = 'U0APPROVER2';

/** records which values were sealed through the real secret box (so tests can look for them) */
export class TestVault {
  values = new Map<string, string>();
  erased = new Set<string>();
  constructor(private box: SecretBox) {}
  seal = async (value: string, purpose: string) => {
    const id = this.box.sealSecret(value, purpose);
    this.values.set(id, value);
    return id;
  };
  erase = async (id: string) => {
    this.box.eraseSecret(id);
    this.erased.add(id);
  };
}

type Reply = { status: number; body: string; json?: any };
type OptionalDeps = Partial<Pick<SlackAppDeps, 'status' | 'lastSpec' | 'history' | 'audit' | 'updateIntervalMs' | 'operatorCheckBudgetMs'>>;

export interface HarnessOptions extends OptionalDeps {
  engine: JobEngine | ((env: { store: Store; box: SecretBox }) => JobEngine);
  emu?: SlackEmulator;
  env?: Record<string, string>;
  dbPath?: string;
  /** reuse a key across restarts (the sealed secrets must stay readable) */
  secretKey?: Buffer;
  pacingMs?: number;
  retryAfterUnitMs?: number;
  deployments?: SlackAppDeps['deployments'];
  /** internal: a restarted harness still owns the emulator its first instance created */
  ownsEmu?: boolean;
}

export interface Harness {
  emu: SlackEmulator;
  rt: SlackRuntime;
  engine: JobEngine;
  store: Store;
  box: SecretBox;
  url: string;
  logs: string[];
  /** every HTTP body the app answered with (acks carry views and messages too) */
  acks: string[];
  dbPath: string;
  secretKey: Buffer;
  vault: TestVault;
  /** where the app keeps wizard sessions (the `wizard_sessions` table of this DB) */
  wizardStore: WizardStore;
  /** `/re <text>`; for status/history `json` is what the app posted to the response_url (`acked`: the ack body) */
  command(user: string, text: string, channel?: string): Promise<Reply & { trigger: string; acked?: string }>;
  interact(payload: unknown): Promise<Reply>;
  raw(body: string, headers: Record<string, string>): Promise<Reply>;
  /** a crafted button click (any value), for refusal tests */
  click(user: string, actionId: string, value: string, messageTs?: string): Promise<Reply>;
  /** a click on a button the bot really posted */
  press(user: string, ts: string, actionId: string): Promise<Reply>;
  /** fill the open wizard page (switching dispatch selects first, like a user) and submit it */
  page(user: string, values: Record<string, string>): Promise<any>;
  /** `/re setup [deployment]`, then one `page()` per entry; returns the last ack */
  wizard(user: string, pages: Array<Record<string, string>>, deployment?: string): Promise<any>;
  back(user: string): Promise<void>;
  /** Reject on an approval message: the reason modal opens, the reason is typed and submitted */
  reject(user: string, approvalTs: string, reason: string): Promise<any>;
  closeWizard(user: string): Promise<Reply>;
  parentTs(jobId: string): string | undefined;
  /** the ts Slack gave the outbox post `key` (read from its row at once, for polling predicates) */
  tsOf(key: string): string | undefined;
  /** stop this app and start a new one on the same DB and emulator (same engine unless given) */
  restart(engine?: JobEngine): Promise<Harness>;
  close(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const emu = opts.emu ?? (await new SlackEmulator({ usergroups: { S0APPROVERS: ['U0APPROVER2', 'U0APPROVER3', REQUESTER] }, users: { [REQUESTER]: { name: 'req', realName: 'Rita Requester' } } }).start());
  const dbPath = opts.dbPath ?? join(mkdtempSync(join(tmpdir(), 're-bot-slack-')), 'bot.db');
  const store = openStore({ path: dbPath });
  const tsQuery = store.sqlite.prepare('SELECT ts FROM slack_outbox WHERE key = ?').pluck();
  const tsOf = (key: string) => (tsQuery.get(key) as string | null | undefined) ?? undefined;
  // like the runtime: RE_BOT_SECRET_KEY or a 0600 key file beside the DB, so a runtime on the same DB can open the secrets
  const secretKey = opts.secretKey ?? loadSecretKey(store);
  const box = createSecretBox(store, secretKey);
  const engine = typeof opts.engine === 'function' ? opts.engine({ store, box }) : opts.engine;
  const logs: string[] = [];
  const acks: string[] = [];
  const logger = createLogger({}, new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const config = loadSlackConfig({
    RE_BOT_SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: emu.apiUrl,
    RE_BOT_APPROVERS: 'S0APPROVERS',
    // fail closed unless set: anyone may start setups in these tests unless one says otherwise
    RE_BOT_OPERATORS: '*',
    ...opts.env,
  });
  const vault = new TestVault(box);
  // in the database, as in the bot: a wizard survives restart()
  const wizardStore = sqliteRepository(store).wizards;
  const rt = createSlackApp({
    engine,
    config,
    logger,
    outboxStore: new SqliteOutboxStore(store.sqlite),
    sealSecret: vault.seal,
    eraseSecret: vault.erase,
    wizardStore,
    deployments: opts.deployments ?? (() => []),
    status: opts.status,
    lastSpec: opts.lastSpec,
    history: opts.history,
    audit: opts.audit,
    operatorCheckBudgetMs: opts.operatorCheckBudgetMs,
    pacingMs: opts.pacingMs ?? 5,
    updateIntervalMs: opts.updateIntervalMs,
    retryAfterUnitMs: opts.retryAfterUnitMs ?? 20,
    baseBackoffMs: 10,
    port: 0,
  });
  const server = (await rt.start())!;
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  const raw = async (body: string, headers: Record<string, string>): Promise<Reply> => {
    const r = await fetch(url, { method: 'POST', body, headers });
    const text = await r.text();
    acks.push(text);
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: r.status, body: text, json };
  };
  const send = (body: string) => {
    const s = signRequest(SECRET, body);
    return raw(s.body, s.headers);
  };
  const interact = (payload: unknown) => send(interactiveBody(payload));
  const viewUpdates = () => emu.callsTo('views.update').length;

  const h: Harness = {
    emu, rt, engine, store, box, url, logs, acks, dbPath, secretKey, vault, wizardStore, raw, interact,
    async command(user, text, channel = CHANNEL) {
      const trigger = emu.issueTrigger(user);
      const responseId = `cmd-${trigger}`;
      const r = await send(
        slashCommandBody({ token: 'x', team_id: emu.teamId, team_domain: 'acme', channel_id: channel, channel_name: 'release-train', user_id: user, user_name: user, command: '/re', text, api_app_id: 'A0123APPID', is_enterprise_install: 'false', response_url: emu.responseUrl(responseId), trigger_id: trigger }),
      );
      // answers read from the store come after an empty ack, through response_url (src/slack/commands.ts)
      if (!r.body && /^\s*(status|history)\s+\S/i.test(text)) {
        const json = await emu.waitResponse(responseId);
        return { ...r, json, body: json ? JSON.stringify(json) : '', acked: r.body, trigger };
      }
      return { ...r, trigger };
    },
    click(user, actionId, value, messageTs = '1700000000.000100') {
      return interact({
        type: 'block_actions',
        user: { id: user, username: user, name: user, team_id: emu.teamId },
        api_app_id: 'A0123APPID',
        token: 'x',
        container: { type: 'message', message_ts: messageTs, channel_id: CHANNEL, is_ephemeral: false },
        trigger_id: emu.issueTrigger(user),
        team: { id: emu.teamId, domain: 'acme' },
        channel: { id: CHANNEL, name: 'release-train' },
        message: { ts: messageTs, text: '', blocks: [] },
        state: { values: {} },
        response_url: emu.responseUrl(undefined, { channel: CHANNEL, user }),
        actions: [{ action_id: actionId, block_id: 'x', value, type: 'button', action_ts: '1700000050.123456' }],
      });
    },
    press: (user, ts, actionId) => interact(pressInMessage(emu, user, CHANNEL, ts, actionId)),
    async page(user, values) {
      for (const [block, value] of Object.entries(values)) {
        const b = (emu.topView(user)?.view.blocks as any[] | undefined)?.find((x) => x.block_id === block);
        if (!b?.dispatch_action || b.element.initial_option?.value === value) continue;
        const before = viewUpdates();
        const r = await interact(selectInView(emu, user, block, value));
        if (r.status !== 200) throw new Error(`choice ${block}=${value} answered ${r.status}`);
        await until(() => viewUpdates() > before, 3000, `views.update after choosing ${block}`);
      }
      const top = emu.topView(user)!;
      const r = await interact(viewSubmission(emu, user, values));
      if (r.status !== 200) throw new Error(`view submission answered ${r.status}`);
      const applied = emu.applyViewAck(user, top.id, r.json);
      if (!applied.ok) throw new Error(`Slack would refuse the ack: ${applied.error} ${applied.messages?.join('; ') ?? ''}`);
      return r.json ?? {};
    },
    async wizard(user, pages, deployment) {
      const before = emu.callsTo('views.open').length;
      await h.command(user, `setup${deployment ? ' ' + deployment : ''}`);
      await until(() => emu.callsTo('views.open').length > before && emu.topView(user), 3000, 'the wizard modal');
      let last: any;
      for (const p of pages) last = await h.page(user, p);
      return last;
    },
    async back(user) {
      const before = viewUpdates();
      await interact(pressInView(emu, user, 're_wiz_back'));
      await until(() => viewUpdates() > before, 3000, 'views.update after Back');
    },
    closeWizard: (user) => interact(viewClosed(emu, user)),
    async reject(user, approvalTs, reason) {
      // like a person: if the modal does not open (Slack answered 429 twice, say), press Reject again
      for (let attempt = 1; ; attempt++) {
        const opened = emu.callsTo('views.open').filter((c) => c.status === 200 && c.response.ok).length;
        await h.press(user, approvalTs, 're_reject');
        const ok = await until(() => emu.callsTo('views.open').filter((c) => c.status === 200 && c.response.ok).length > opened && emu.topView(user)?.view.callback_id === 're_reject_reason', 4000, 'the reject modal')
          .then(() => true, (err) => { if (attempt >= 4) throw err; return false; });
        if (ok) return h.page(user, { reason });
      }
    },
    parentTs: (jobId) => tsOf(parentKey(jobId)),
    tsOf,
    async restart(next) {
      await rt.stop();
      store.close();
      return startHarness({ ...opts, engine: next ?? engine, emu, dbPath, secretKey, ownsEmu: !opts.emu || opts.ownsEmu });
    },
    async close() {
      await rt.stop();
      store.close();
      if (!opts.emu || opts.ownsEmu) await emu.close();
    },
  };
  return h;
}

export const SECRETS = {
  apiToken: 'deploy-token-SUPERSECRET-111',
  agentToken: 'agent-token-TOPSECRET-222',
  gitUser: 'git-user-HIDDEN-333',
  gitToken: 'git-token-HIDDEN-444',
};

/** The wizard pages of a complete setup, one object per page (keys are input block ids = spec paths). */
export function wizardPages(name = 'sales-prod'): Array<Record<string, string>> {
  return [
    {
      'deployment.name': name,
      'deployment.id': 'clx0abc123',
      'deployment.organizationId': 'org0abc123',
      'deployment.workspaceId': 'wsp0abc123',
      'deployment.namespace': 'cosmic-nebula-1234',
      'deployment.apiUrl': 'https://clx0abc123.api.astronomer.run/remote',
      'deployment.airflowApiUrl': 'https://clx0abc123.astronomer.run/api/v2',
      'deployment.apiToken': SECRETS.apiToken,
      'cluster.namespace': 'astro-agent',
      'agent.token': SECRETS.agentToken,
    },
    { 'secretsBackend.provider': 'aws-secrets-manager', 'secretsBackend.region': 'us-east-1', 'identity.provider': 'aws', 'identity.roleArn': 'arn:aws:iam::123456789012:role/astro-agent' },
    { 'xcomBackend.type': 's3', 'xcomBackend.bucket': 'sales-xcom' },
    { 'dagSource.type': 'git', 'dagSource.repoUrl': 'https://github.com/acme/dags.git', 'dagSource.credentials.username': SECRETS.gitUser, 'dagSource.credentials.token': SECRETS.gitToken },
    {},
    { 'agent.image': 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.2.3', 'cluster.chart.version': '2.3.3' },
    {},
  ];
}

export async function until<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
