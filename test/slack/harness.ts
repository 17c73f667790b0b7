import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { openStore } from '../../src/store/db.ts';
import { createSecretBox } from '../../src/store/crypto.ts';
import { Writable } from 'node:stream';
import { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { signRequest, slashCommandBody, interactiveBody } from '../../src/devkit/slack-emulator/signer.ts';
import { createSlackApp, type SlackRuntime } from '../../src/slack/app.ts';
import { loadSlackConfig } from '../../src/slack/config.ts';
import { SqliteOutboxStore } from '../../src/slack/outbox.ts';
import { createLogger } from '../../src/log.ts';
import type { JobEngine } from '../../src/jobs/types.ts';

export const SECRET = 'test-signing-secret-123';
export const CHANNEL = 'C0123CHAN';

/** records which values were sealed through the real secret box (so tests can look for them) */
export class TestVault {
  values = new Map<string, string>();
  constructor(private inner: (value: string, purpose: string) => string) {}
  seal = (value: string, purpose: string) => {
    const id = this.inner(value, purpose);
    this.values.set(id, value);
    return id;
  };
}

export interface Harness {
  emu: SlackEmulator;
  rt: SlackRuntime;
  url: string;
  logs: string[];
  db: Database.Database;
  dbPath: string;
  vault: TestVault;
  command(user: string, text: string): Promise<{ status: number; body: string; trigger: string }>;
  interact(payload: unknown): Promise<{ status: number; body: string }>;
  raw(body: string, headers: Record<string, string>): Promise<{ status: number; body: string }>;
  click(user: string, actionId: string, value: string, messageTs?: string): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

export async function startHarness(opts: {
  engine: JobEngine;
  emu?: SlackEmulator;
  env?: Record<string, string>;
  dbPath?: string;
  pacingMs?: number;
  retryAfterUnitMs?: number;
  deployments?: () => string[];
}): Promise<Harness> {
  const emu = opts.emu ?? (await new SlackEmulator({ usergroups: { S0APPROVERS: ['U0APPROVER2', 'U0APPROVER3', 'U0REQUESTR'] } }).start());
  const dbPath = opts.dbPath ?? join(mkdtempSync(join(tmpdir(), 're-bot-slack-')), 'bot.db');
  // the real store (migrations, WAL) and the real AES-256-GCM secret box
  const store = openStore({ path: dbPath });
  const db = store.sqlite;
  const box = createSecretBox(store, randomBytes(32));
  const logs: string[] = [];
  const logger = createLogger({}, new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const config = loadSlackConfig({
    RE_BOT_SLACK_MODE: 'http',
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: emu.apiUrl,
    RE_BOT_APPROVERS: 'S0APPROVERS',
    ...opts.env,
  });
  const vault = new TestVault(box.sealSecret);
  const rt = createSlackApp({
    engine: opts.engine,
    config,
    logger,
    outboxStore: new SqliteOutboxStore(db),
    sealSecret: vault.seal,
    deployments: opts.deployments ?? (() => []),
    pacingMs: opts.pacingMs ?? 5,
    retryAfterUnitMs: opts.retryAfterUnitMs ?? 20,
    baseBackoffMs: 10,
    port: 0,
  });
  const server = (await rt.start())!;
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  const raw = async (body: string, headers: Record<string, string>) => {
    const r = await fetch(url, { method: 'POST', body, headers });
    return { status: r.status, body: await r.text() };
  };
  const send = (body: string) => {
    const s = signRequest(SECRET, body);
    return raw(s.body, s.headers);
  };
  return {
    emu,
    rt,
    url,
    logs,
    db,
    dbPath,
    vault,
    raw,
    async command(user, text) {
      const trigger = emu.issueTrigger(user);
      const r = await send(
        slashCommandBody({ token: 'x', team_id: emu.teamId, channel_id: CHANNEL, channel_name: 'release-train', user_id: user, user_name: user, command: '/re', text, api_app_id: 'A0123APPID', is_enterprise_install: 'false', response_url: 'http://127.0.0.1:1/none', trigger_id: trigger }),
      );
      return { ...r, trigger };
    },
    interact: (payload) => send(interactiveBody(payload)),
    click(user, actionId, value, messageTs = '1700000000.000100') {
      return send(
        interactiveBody({
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
          response_url: 'http://127.0.0.1:1/none',
          actions: [{ action_id: actionId, block_id: 'x', value, type: 'button', action_ts: '1700000050.123456' }],
        }),
      );
    },
    async close() {
      await rt.stop();
      db.close();
      if (!opts.emu) await emu.close();
    },
  };
}

export function viewSubmission(emu: SlackEmulator, user: string, values: Record<string, string>) {
  const top = emu.topView(user);
  if (!top) throw new Error(`no modal open for ${user}`);
  const state: Record<string, Record<string, unknown>> = {};
  for (const [block, value] of Object.entries(values)) {
    state[block] = { v: block === 'xcom_type' ? { type: 'static_select', selected_option: { value } } : { type: 'plain_text_input', value } };
  }
  return {
    type: 'view_submission',
    team: { id: emu.teamId, domain: 'acme' },
    user: { id: user, username: user, name: user, team_id: emu.teamId },
    api_app_id: 'A0123APPID',
    token: 'x',
    trigger_id: emu.issueTrigger(user),
    view: emu.viewObject(top as any, state),
    response_urls: [],
    is_enterprise_install: false,
  };
}

export const GOOD_WIZARD = {
  dep_name: 'sales-prod',
  dep_id: 'clx0abc123',
  org_id: 'org0abc123',
  ws_id: 'wsp0abc123',
  dep_ns: 'cosmic-nebula-1234',
  api_url: 'https://clx0abc123.api.astronomer.run/remote',
  airflow_url: 'https://clx0abc123.astronomer.run/api/v2',
  api_token: 'deploy-token-SUPERSECRET-111',
  namespace: 'astro-agent',
  chart_version: '2.3.3',
  agent_image: 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.2.3',
  agent_token: 'agent-token-TOPSECRET-222',
  xcom_type: 'none',
};

export async function until<T>(fn: () => T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
