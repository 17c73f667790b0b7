/**
 * The Slack app (harness.ts: real Bolt app, signed HTTP requests, Slack Web API emulator) wired to the
 * REAL runtime (src/app/wire.ts createRuntime: the real job engine, the eight real checklist steps, real
 * helm, the sealed-secret box and its erase-on-finish listener) against a shared fake Kubernetes API and
 * the Astro/Airflow stand-ins of src/devkit/local-setup.ts.
 *
 * What the wizard cannot point at the stand-ins: it has no field for a local chart (only
 * `cluster.chart.version`, i.e. the public Astronomer repository, unreachable here) nor for the Astro API
 * base URL (`deployment.astroApiUrl`, default https://api.astronomer.io). Everything else is typed into the
 * wizard like a user would (the stand-in deployment API and Airflow API URLs, the agent namespace, the
 * tokens), and the runtime's `kubeconfigPath` option points every job at the fake cluster. The two missing
 * fields are set by the thinnest possible wrapper: `submit` of the engine handed to the Slack app rewrites
 * exactly `cluster.chart` (→ the local chart src/devkit/chart) and `deployment.astroApiUrl` (→ the Astro
 * stand-in) before the real engine stores the job. The stored job spec, plan, values hash, approval facts
 * and `/re status` therefore all tell the truth about what was installed; every other engine method is
 * the real runtime's, untouched.
 */
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createRuntime, type Runtime } from '../../src/app/wire.ts';
import { startLocalSetup, type LocalSetup } from '../../src/devkit/local-setup.ts';
import type { FakeKube } from '../../src/devkit/fake-kube/index.ts';
import type { FakeDag } from '../../src/devkit/fake-airflow.ts';
import type { SlackEmulator } from '../../src/devkit/slack-emulator/server.ts';
import { createLogger, logger, setLogger } from '../../src/log.ts';
import { approvalPolicyFrom, loadSlackConfig } from '../../src/slack/config.ts';
import { appendAudit } from '../../src/store/audit.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import type { ApprovalPolicy, JobEngine } from '../../src/jobs/types.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { demoSpec } from '../e2e/support.ts';
import { startHarness, wizardPages, SECRET, SECRETS, type Harness, type HarnessOptions } from './harness.ts';

export const ROOT = resolve('.');
export const LOCAL_CHART = resolve(ROOT, 'src/devkit/chart');
/** ids the wizard pages of harness.ts type (the Astro stand-in must know the same deployment) */
const WIZARD_IDS = { id: 'clx0abc123', organizationId: 'org0abc123', workspaceId: 'wsp0abc123', namespace: 'cosmic-nebula-1234' };

export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `re-bot-${prefix}-`));
}

/** the process logger (engine, steps, helm/kube adapters) into a buffer, for the secrets scan */
export function captureProcessLogs(): { text(): string } {
  let buf = '';
  setLogger(createLogger({}, new Writable({ write: (c, _e, cb) => ((buf += String(c)), cb()) })));
  return { text: () => buf };
}

/** The slack env the harness uses, plus overrides (the engine policy is derived from the same config). */
export function slackEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-test-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: 'http://127.0.0.1:1/api/', RE_BOT_APPROVERS: 'S0APPROVERS', RE_BOT_OPERATORS: '*', ...extra };
}

/** Wraps the real engine: only `submit` changes, and only the two fields the wizard cannot express. */
export function pointAtStandIns(engine: JobEngine, local: LocalSetup): JobEngine & { submitted: SetupSpec[] } {
  const submitted: SetupSpec[] = [];
  return {
    ...engine,
    submitted,
    submit(input) {
      const spec = structuredClone(input.spec);
      submitted.push(structuredClone(input.spec));
      spec.cluster.chart = { path: LOCAL_CHART };
      spec.deployment.astroApiUrl = local.spec.deployment.astroApiUrl;
      return engine.submit({ ...input, spec });
    },
  };
}

export interface RealSlack {
  h: Harness;
  rt: Runtime;
  engine: JobEngine & { submitted: SetupSpec[] };
  local: LocalSetup;
  /** every job event, serialized before any redaction (what Slack messages and logs are built from) */
  events: string[];
  name: string;
  namespace: string;
  dbPath: string;
  /** the wizard pages with the stand-in URLs and this setup's agent namespace */
  pages(): Array<Record<string, string>>;
  /** stop the Slack app, the engine and the store; start all of them again on the same DB and emulator */
  restart(): Promise<RealSlack>;
  close(): Promise<void>;
}

export interface RealSlackOptions {
  kube: FakeKube;
  /** deployment name = agent namespace = resource prefix (distinct per scenario on the shared cluster) */
  name: string;
  env?: Record<string, string>;
  dag?: Partial<FakeDag>;
  pollMs?: number;
  handlers?: StepHandler[];
  policy?: Partial<ApprovalPolicy>;
  harness?: Partial<HarnessOptions>;
}

async function runtimeFor(o: RealSlackOptions, dbPath: string, local: LocalSetup) {
  const config = loadSlackConfig(slackEnv(o.env));
  const rt = await createRuntime({
    dbPath,
    kubeconfigPath: o.kube.kubeconfigPath,
    // what `re-bot start` should do: the engine enforces the approver list the Slack app is configured with
    policy: { ...approvalPolicyFrom(config), ...o.policy },
    pollMs: o.pollMs ?? 50,
    concurrency: 4,
    handlers: o.handlers,
  });
  return { rt, engine: pointAtStandIns(rt.engine, local) };
}

async function harnessFor(o: RealSlackOptions, rt: Runtime, engine: JobEngine, dbPath: string, reuse?: { emu: SlackEmulator; secretKey: Buffer }): Promise<Harness> {
  return startHarness({
    engine,
    dbPath,
    env: o.env,
    status: rt.status,
    lastSpec: rt.lastSpec,
    deployments: rt.deployments,
    audit: (e) => appendAudit(rt.store!, { actor: e.actor, action: e.action, jobId: e.jobId, deployment: e.deployment, result: e.result, details: e.details }),
    ...o.harness,
    ...(reuse ? { emu: reuse.emu, secretKey: reuse.secretKey, ownsEmu: true } : {}),
  });
}

export async function startRealSlack(o: RealSlackOptions): Promise<RealSlack> {
  const dir = scratch(`slack-${o.name}`);
  const dbPath = join(dir, 'bot.db');
  const seed = await demoSpec(o.name, (s) => {
    Object.assign(s.deployment, WIZARD_IDS);
    delete (s.images as { client?: unknown }).client;
  });
  const local = await startLocalSetup(seed, { dir, root: ROOT, apiToken: SECRETS.apiToken, sharedKube: o.kube, registry: false, dag: { durationMs: 200, ...o.dag } });
  const events: string[] = [];
  const make = async (prev?: RealSlack): Promise<RealSlack> => {
    // the runtime first: it creates the key file beside the DB that the harness's secret box then reads
    const { rt, engine } = await runtimeFor(o, dbPath, local);
    const h = await harnessFor(o, rt, engine, dbPath, prev && { emu: prev.h.emu, secretKey: prev.h.secretKey });
    // like the bot (src/app/bot.ts logs every job event), but whole events at debug: a superset for the scan
    rt.engine.on((e) => {
      events.push(JSON.stringify(e));
      logger().debug({ event: e }, e.type);
    });
    rt.engine.start();
    let stopped = false;
    const self: RealSlack = {
      h, rt, engine, local, events, name: o.name, namespace: o.name, dbPath,
      pages: () => {
        const p = wizardPages(o.name);
        Object.assign(p[0], { 'deployment.apiUrl': local.spec.deployment.apiUrl, 'deployment.airflowApiUrl': local.spec.deployment.airflowApiUrl, 'cluster.namespace': o.name });
        return p;
      },
      async restart() {
        await h.rt.outbox.idle(10_000).catch(() => undefined);
        stopped = true;
        await stopBoth(h, rt);
        return make(self);
      },
      async close() {
        if (stopped) return; // restarted: the new instance owns the emulator and the stand-ins
        stopped = true;
        await stopBoth(h, rt, true);
        await local.stop();
      },
    };
    return self;
  };
  return make();
}

/** like `re-bot start` on SIGTERM: Slack app, then the engine (jobs stay resumable), then the store */
async function stopBoth(h: Harness, rt: Runtime, closeEmu = false): Promise<void> {
  await h.rt.stop();
  h.store.close();
  await rt.close();
  if (closeEmu) await h.emu.close();
}

/** every needle and its base64 form (Kubernetes Secret data, dockerconfigjson auth) */
export function forms(needles: string[]): string[] {
  return [...new Set(needles.flatMap((n) => [n, Buffer.from(n).toString('base64'), Buffer.from(`cli:${n}`).toString('base64')]))];
}

export function hitsIn(text: string, needles: string[]): string[] {
  return forms(needles).filter((n) => text.includes(n));
}

/** the DB file and its WAL/SHM, as bytes (latin1 keeps every byte) */
export function dbBytes(dbPath: string): string {
  return ['', '-wal', '-shm'].map((s) => dbPath + s).filter(existsSync).map((f) => readFileSync(f).toString('latin1')).join('\n');
}
