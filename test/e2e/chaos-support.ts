/**
 * The pieces of the chaos test (test/e2e/chaos.test.ts) and the job-level benchmark (bench/pg-jobs.ts) around
 * the replicas of replicas.ts: the shared world (one Slack emulator, one fake Kubernetes API, one Astro/Airflow
 * stand-in pair per setup), the database (a SQLite file, or a database on a throwaway PostgreSQL cluster), a
 * user driving the setup wizard and the Approve button through signed requests, and raw reads of every table.
 *
 * How a wizard reaches the stand-ins: the wizard has no field for a local chart or the Astro API URL (see
 * test/slack/e2e-support.ts), and `re-bot start` runs the real engine with nothing in between. So each deployment
 * gets one earlier job, submitted and cancelled straight in the database before the replicas start (it never
 * runs, touches no cluster, posts nothing); `/re setup <deployment>` then prefills the wizard from that job's
 * spec, which points at the stand-ins, and the user submits every page as prefilled (typing the two tokens on
 * some setups, which then travel as sealed secrets).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { startLocalSetup, type LocalSetup } from '../../src/devkit/local-setup.ts';
import { pressInMessage, viewSubmission } from '../../src/devkit/slack-emulator/payloads.ts';
import { SlackEmulator, type StoredMessage } from '../../src/devkit/slack-emulator/server.ts';
import { interactiveBody, signRequest, slashCommandBody } from '../../src/devkit/slack-emulator/signer.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import { openRepository } from '../../src/store/repo.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { startPostgres, type PgCluster } from '../support/postgres.ts';
import type { Replica, ReplicaSet } from './replicas.ts';

export const SIGNING_SECRET = 'chaos-signing-secret-5d1e';
export const BOT_TOKEN = 'xoxb-chaos-bot-token-77c2';
export const APPROVERS = ['U0APPRVR01', 'U0APPRVR02'];
export const requesterOf = (i: number) => `U0REQ${String(i).padStart(3, '0')}`;

export type Dialect = 'sqlite' | 'postgres';

// ---------------------------------------------------------------- the database

/** Reads of the shared database, the same SQL on both dialects (plain selects of snake_case columns). */
export interface ChaosDb {
  dialect: Dialect;
  /** what the replicas get: RE_BOT_DB or RE_BOT_DATABASE_URL */
  env: Record<string, string>;
  /** SQLite path or PostgreSQL URL (openRepository's argument) */
  repoArgs: [url: string | undefined, sqlitePath: string | undefined];
  all<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** every row of every table, as text (the secrets scan) */
  dumpAll(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/** `durable`: PostgreSQL with fsync/synchronous_commit on, as a real server (benchmarks) */
export async function openChaosDb(dialect: Dialect, dir: string, o: { durable?: boolean } = {}): Promise<ChaosDb> {
  if (dialect === 'sqlite') {
    const path = join(dir, 're-bot.db');
    let db: Database.Database | undefined;
    const handle = () => (db ??= new Database(path, { readonly: true, fileMustExist: true }));
    const all = async <T,>(sql: string) => handle().prepare(sql).all() as T[];
    return {
      dialect,
      env: { RE_BOT_DB: path },
      repoArgs: [undefined, path],
      all,
      async dumpAll() {
        const tables = (await all<{ name: string }>("select name from sqlite_master where type = 'table'")).map((t) => t.name);
        return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, JSON.stringify(await all(`select * from "${t}"`))] as const)));
      },
      async close() {
        db?.close();
      },
    };
  }
  const cluster: PgCluster = await startPostgres({ durable: o.durable });
  const url = await cluster.createDatabase('chaos');
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const all = async <T,>(sql: string) => (await pool.query(sql)).rows as T[];
  return {
    dialect,
    env: { RE_BOT_DATABASE_URL: url },
    repoArgs: [url, undefined],
    all,
    async dumpAll() {
      const tables = await all<{ schema: string; name: string }>(
        "select table_schema as schema, table_name as name from information_schema.tables where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')",
      );
      const out: Record<string, string> = {};
      for (const t of tables) {
        const rows = await all<{ row: string }>(`select t::text as row from "${t.schema}"."${t.name}" t`);
        out[`${t.schema}.${t.name}`] = rows.map((r) => r.row).join('\n');
      }
      return out;
    },
    async close() {
      await pool.end().catch(() => undefined);
      cluster.stop();
    },
  };
}

// ---------------------------------------------------------------- the world

export interface ChaosSetup {
  index: number;
  name: string;
  channel: string;
  requester: string;
  /** type the two tokens into the wizard (sealed secrets) instead of keeping the env refs */
  typesSecrets: boolean;
  local: LocalSetup;
}

export interface World {
  emu: SlackEmulator;
  kube: FakeKube;
  setups: ChaosSetup[];
  secretKey: string;
  /** env for every replica (Slack, kube, tokens, key; not the database) */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startWorld(o: {
  dir: string;
  root: string;
  setups: number;
  channels: number;
  prefix: string;
  secrets: Record<string, string>;
  spec: (name: string) => Promise<SetupSpec>;
  apiToken: string;
  /** type the tokens into the wizard on every other setup (default true) */
  typeSecrets?: boolean;
}): Promise<World> {
  const users: Record<string, { name: string; realName?: string }> = {};
  for (let i = 0; i < o.setups; i++) users[requesterOf(i)] = { name: `req${i}`, realName: `Requester ${i}` };
  for (const a of APPROVERS) users[a] = { name: a.toLowerCase(), realName: `Approver ${a}` };
  const emu = await new SlackEmulator({ users }).start();
  const kube = await startFakeKube({ dir: join(o.dir, 'kube'), podReadyDelayMs: 100 });
  const setups: ChaosSetup[] = [];
  const close = async () => {
    for (const s of setups) await s.local.stop().catch(() => undefined);
    await kube.close().catch(() => undefined);
    await emu.close().catch(() => undefined);
  };
  try {
    for (let i = 0; i < o.setups; i++) {
      const name = `${o.prefix}-${String(i).padStart(2, '0')}`;
      const local = await startLocalSetup(await o.spec(name), { dir: join(o.dir, 'local', name), root: o.root, apiToken: o.apiToken, sharedKube: kube, registry: false, dag: { durationMs: 200 } });
      setups.push({ index: i, name, channel: `C0CHAOS${String(i % o.channels).padStart(3, '0')}`, requester: requesterOf(i), typesSecrets: o.typeSecrets !== false && i % 2 === 1, local });
    }
  } catch (err) {
    await close();
    throw err;
  }
  const secretKey = randomBytes(32).toString('base64');
  const env = {
    ...o.secrets,
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: emu.apiUrl,
    RE_BOT_SECRET_KEY: secretKey,
    RE_BOT_APPROVERS: APPROVERS.join(','),
    RE_BOT_OPERATORS: '*',
    KUBECONFIG: kube.kubeconfigPath,
    LOG_LEVEL: 'info',
  };
  return { emu, kube, setups, secretKey, env, close };
}

/** One cancelled job per deployment, straight in the database: the wizard's prefill (see the file comment). */
export async function seedDeployments(db: ChaosDb, w: World): Promise<void> {
  const repo = await openRepository(db.repoArgs[0], { sqlitePath: db.repoArgs[1], secretKey: Buffer.from(w.secretKey, 'base64') });
  try {
    for (const s of w.setups) {
      const id = `job_seed_${s.name}`;
      await repo.jobs.submit({ spec: s.local.spec, requestedBy: { id: s.requester }, origin: { kind: 'slack', channel: s.channel }, id, plan: buildPlan(s.local.spec) });
      await repo.jobs.cancel((await repo.jobs.get(id))!, { id: s.requester });
    }
  } finally {
    await repo.close();
  }
}

export const isSeed = (jobId: string) => jobId.startsWith('job_seed_');

// ---------------------------------------------------------------- a user, through signed requests

export interface Reply {
  status: number;
  json?: any;
}

export async function send(r: Replica, body: string, timeoutMs = 10_000): Promise<Reply> {
  const s = signRequest(SIGNING_SECRET, body);
  const res = await fetch(r.url, { method: 'POST', body: s.body, headers: s.headers, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

export function slash(emu: SlackEmulator, user: string, channel: string, text: string, responseId?: string): string {
  return slashCommandBody({
    token: 'x', team_id: emu.teamId, team_domain: 'acme', channel_id: channel, channel_name: channel.toLowerCase(), user_id: user, user_name: user,
    command: '/re', text, api_app_id: 'A0123APPID', is_enterprise_install: 'false', response_url: emu.responseUrl(responseId), trigger_id: emu.issueTrigger(user),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `/re setup <deployment>` and every wizard page as prefilled, each request on the replica `pick` gives then (a
 * random live one: Slack spreads a modal's pages over the replicas; the session is in the database). Returns the
 * replicas used, in order. Throws when a replica dies midway or a page is refused: the caller tries again, as a
 * user would after "Run `/re setup` again".
 */
export async function runWizard(emu: SlackEmulator, pick: () => Replica | undefined, s: ChaosSetup, secrets: { apiToken: string; agentToken: string }, used: number[] = []): Promise<number[]> {
  const next = () => {
    const r = pick();
    if (!r) throw new Error('no replica is up');
    used.push(r.index);
    return r;
  };
  emu.closeViews(s.requester);
  const opened = emu.callsTo('views.open').length;
  const ack = await send(next(), slash(emu, s.requester, s.channel, `setup ${s.name}`));
  if (ack.status !== 200) throw new Error(`/re setup answered ${ack.status}`);
  const end = Date.now() + 10_000;
  while (!(emu.callsTo('views.open').length > opened && emu.topView(s.requester))) {
    if (Date.now() > end) throw new Error('the wizard did not open');
    await sleep(20);
  }
  for (let page = 0; page < 12; page++) {
    const top = emu.topView(s.requester);
    if (!top) throw new Error('no wizard page open');
    const typed: Record<string, string> = page === 0 && s.typesSecrets ? { 'deployment.apiToken': secrets.apiToken, 'agent.token': secrets.agentToken } : {};
    const res = await send(next(), interactiveBody(viewSubmission(emu, s.requester, typed)));
    if (res.status !== 200) throw new Error(`wizard page ${page} answered ${res.status}`);
    const applied = emu.applyViewAck(s.requester, top.id, res.json);
    if (!applied.ok) throw new Error(`Slack would refuse the wizard ack: ${applied.error}`);
    if (res.json?.response_action === 'errors') throw new Error(`wizard page ${page}: ${JSON.stringify(res.json.errors)}`);
    const text = JSON.stringify(res.json?.view ?? {});
    if (/session expired|Something went wrong|not allowed/.test(text)) throw new Error(`wizard page ${page}: ${text.slice(0, 300)}`);
    if (!res.json) return used; // the last page: the modal closes and the job is submitted
  }
  throw new Error('the wizard did not finish in 12 pages');
}

/** the approval requests the bot posted (messages with an Approve button), with their approval id */
export function approvalMessages(emu: SlackEmulator): Array<{ message: StoredMessage; approvalId: string }> {
  const out: Array<{ message: StoredMessage; approvalId: string }> = [];
  for (const m of emu.messages.values()) {
    for (const b of (m.blocks ?? []) as any[]) {
      const el = ((b.elements ?? []) as any[]).find((e) => e.action_id === 're_approve');
      if (el) out.push({ message: m, approvalId: String(el.value).split('|')[0] });
    }
  }
  return out;
}

/** an approver presses Approve on a message the bot posted, on the given replica */
export function approve(emu: SlackEmulator, r: Replica, approver: string, m: StoredMessage): Promise<Reply> {
  return send(r, interactiveBody(pressInMessage(emu, approver, m.channel, m.ts, 're_approve')));
}

/** a random replica that is up, or undefined when all are down */
export function upReplica(set: ReplicaSet, not?: Replica): Replica | undefined {
  const up = set.replicas.filter((r) => r.alive() && r !== not);
  return up.length ? up[Math.floor(Math.random() * up.length)] : undefined;
}

/**
 * Whether `re-bot start` accepts RE_BOT_DATABASE_URL (issue 16: it refused it, exit 2, until the engine and the
 * outbox ran on the repository). Asked of the real command: with a well-formed URL of a closed port it either
 * refuses the variable (exit 2 naming it and SQLite) or gets past it and fails to connect.
 */
export function botAcceptsDatabaseUrl(root: string): boolean {
  const r = spawnSync(process.execPath, ['bin/re-bot.mjs', 'start'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    killSignal: 'SIGKILL',
    env: {
      ...process.env, RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: 'http://127.0.0.1:9/api/',
      SLACK_APP_TOKEN: undefined, PORT: '0', RE_BOT_APPROVERS: APPROVERS.join(','), RE_BOT_OPERATORS: '*', RE_BOT_SECRET_KEY: randomBytes(32).toString('base64'),
      RE_BOT_DATABASE_URL: 'postgres://probe@127.0.0.1:9/probe', RE_BOT_DB: undefined, LOG_LEVEL: 'fatal',
    },
  });
  const refused = r.status === 2 && /RE_BOT_DATABASE_URL/.test(r.stderr ?? '') && /SQLite only/.test(r.stderr ?? '');
  return !refused;
}
