/**
 * The running bot (`re-bot start`): config → runtime (store, engine with the approver policy) → Slack app →
 * metrics with live sources → health routes (on the Slack receiver's port in HTTP mode, their own server in
 * Socket Mode). Tests start it in-process with stub step handlers.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobEvent } from '../jobs/types.ts';
import { logger as rootLogger, type Logger } from '../log.ts';
import { createMetrics, observeJobEvents, type Metrics } from '../metrics.ts';
import { createSlackApp, type SlackAppDeps, type SlackRuntime } from '../slack/app.ts';
import { approvalPolicyFrom, ConfigError, loadSlackConfig, type SlackConfig } from '../slack/config.ts';
import type { OutboxStore } from '../slack/outbox.ts';
import type { HistoryRow } from '../slack/status-blocks.ts';
import { specPolicyFromEnv } from '../policy-env.ts';
import { defaultDbPath } from '../store/db.ts';
import type { Dialect } from '../store/repo.ts';
import { healthRoutes, httpHostFromEnv, httpPortFromEnv, startHealthServer, urlFor, type HealthServer, type ReadyResult } from './http.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from './wire.ts';
import { checkDatabase, postgresProbe, sqliteProbe } from './readiness.ts';
import { ACTIVE_JOBS_SQL, startJobWorker, workerIdleSecondsFromEnv, type JobWorker } from './job-worker.ts';
import { maxChildProcessesFromEnv } from '../infra/child-limit.ts';

export interface BotOptions {
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** tests: stub handlers, adapters, faster polling */
  runtime?: Partial<Omit<RuntimeOptions, 'dbPath' | 'policy'>>;
  /** tests: faster outbox pacing */
  slack?: Partial<Pick<SlackAppDeps, 'pacingMs' | 'updateIntervalMs' | 'retryAfterUnitMs' | 'baseBackoffMs'>>;
  /** address of the health server (and the Slack receiver in HTTP mode); default RE_BOT_HTTP_HOST, else 127.0.0.1 */
  host?: string;
  /**
   * run setup jobs in this process instead of a `re-bot worker` child (default: only when tests inject
   * handlers or adapters, which cannot cross a process boundary)
   */
  jobsInProcess?: boolean;
}

export interface Bot {
  config: SlackConfig;
  /** the `re-bot worker` child (undefined when jobs run in this process) */
  worker?: JobWorker;
  runtime: Runtime;
  slack: SlackRuntime;
  metrics: Metrics;
  /** base URL of /healthz, /readyz, /metrics (and /slack/events in HTTP mode) */
  url: string;
  port: number;
  ready(): Promise<ReadyResult>;
  /** graceful: finish in-flight Slack writes briefly, stop the app and engine, close the DB */
  stop(): Promise<void>;
}

/** Variables the bot reads besides the Slack ones (config.ts); bad values are config errors (exit 2). */
function botSettings(env: Record<string, string | undefined>, config: SlackConfig) {
  const problems: Array<{ variable: string; message: string }> = [];
  let port = 8080;
  try {
    // HTTP mode shares the port with the Slack receiver; PORT still works when RE_BOT_HTTP_PORT is unset
    port = !env.RE_BOT_HTTP_PORT && env.PORT && config.mode === 'http' ? config.port : httpPortFromEnv(env);
  } catch (err) {
    problems.push({ variable: 'RE_BOT_HTTP_PORT', message: (err as Error).message.replace(/^RE_BOT_HTTP_PORT: /, '') });
  }
  let host = '';
  try {
    host = httpHostFromEnv(env);
  } catch (err) {
    problems.push({ variable: 'RE_BOT_HTTP_HOST', message: (err as Error).message.replace(/^RE_BOT_HTTP_HOST: /, '') });
  }
  const rawConcurrency = env.RE_BOT_CONCURRENCY;
  const concurrency = rawConcurrency ? Number(rawConcurrency) : 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) problems.push({ variable: 'RE_BOT_CONCURRENCY', message: `expected a positive integer, got "${rawConcurrency}"` });
  try {
    workerIdleSecondsFromEnv(env); // read by the worker; checked here so a typo fails at start
  } catch (err) {
    problems.push({ variable: 'RE_BOT_WORKER_IDLE_SECONDS', message: (err as Error).message.replace(/^RE_BOT_WORKER_IDLE_SECONDS: /, '') });
  }
  try {
    maxChildProcessesFromEnv(env); // read by the worker's helm/image adapters; checked here so a typo fails at start
  } catch (err) {
    problems.push({ variable: 'RE_BOT_MAX_CHILD_PROCESSES', message: (err as Error).message.replace(/^RE_BOT_MAX_CHILD_PROCESSES: /, '') });
  }
  const spec = specPolicyFromEnv(env);
  problems.push(...spec.problems);
  if (problems.length) throw new ConfigError(problems);
  const databaseUrl = env.RE_BOT_DATABASE_URL?.trim() || undefined;
  return { port, host, concurrency, dbPath: resolve(env.RE_BOT_DB || defaultDbPath()), databaseUrl, specPolicy: spec.policy };
}

/**
 * The newest migration in the dialect's journal: readiness checks the DB has it. The two folders are generated
 * separately, so their timestamps differ: PostgreSQL's comes from migrations-pg/.
 */
export function latestMigration(dialect: Dialect): number {
  const folder = dialect === 'postgres' ? 'migrations-pg' : 'migrations';
  const journal = resolve(dirname(fileURLToPath(import.meta.url)), `../../${folder}/meta/_journal.json`);
  const entries = (JSON.parse(readFileSync(journal, 'utf8')) as { entries: Array<{ when: number }> }).entries;
  return Math.max(0, ...entries.map((e) => e.when));
}

/** Outbox depth and the age of its oldest pending write, read at scrape time. */
function outboxStats(store: OutboxStore) {
  return async () => {
    const [depth, oldest] = await Promise.all([store.pendingCount(), store.oldestPendingAt()]);
    return { depth, oldestAgeSeconds: oldest === undefined ? 0 : (Date.now() - oldest) / 1000 };
  };
}

function logJobEvents(log: Logger, e: JobEvent): void {
  if (e.type === 'step.progress') return log.debug({ jobId: e.job.id, stepId: e.stepId, progress: e.message }, e.type);
  const fields: Record<string, unknown> = { jobId: e.job.id, deployment: e.job.deployment, state: e.job.state };
  if ('stepId' in e) fields.stepId = e.stepId;
  if ('approval' in e) Object.assign(fields, { approvalId: e.approval.id, approval: e.approval.state });
  if (e.type === 'step.failed') fields.err = e.error;
  if (e.type === 'job.failed') fields.err = e.job.error;
  log[e.type.endsWith('.failed') ? 'warn' : 'info'](fields, e.type);
}

/** Throws ConfigError for bad variables (exit 2); anything else is a start-up failure. */
export async function startBot(opts: BotOptions = {}): Promise<Bot> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? rootLogger();
  const config = loadSlackConfig(env);
  const settings = botSettings(env, config);
  const host = opts.host ?? settings.host;

  const jobsInProcess = opts.jobsInProcess ?? Boolean(opts.runtime?.handlers || opts.runtime?.infraFor);
  const runtime = await createRuntime({
    ...opts.runtime,
    // with a worker, this process only submits, decides and reads jobs: it never runs a step
    ...(jobsInProcess ? {} : { handlers: [] }),
    dbPath: settings.dbPath, databaseUrl: settings.databaseUrl, policy: approvalPolicyFrom(config), concurrency: settings.concurrency,
  });
  const { repo } = runtime;
  const expectedMigration = latestMigration(repo.dialect);
  // SQLite: one prepared statement on the runtime's handle, asked on every worker exit and watch
  const active = runtime.db?.prepare(ACTIVE_JOBS_SQL);
  // the repository's outbox: SQLite's rows on the runtime's handle, or PostgreSQL's (RE_BOT_DATABASE_URL)
  const outboxStore = repo.outbox;
  const metrics = createMetrics({
    jobCounts: () => repo.metrics.jobCounts(),
    approvalsPending: () => repo.metrics.approvalsPending(),
    outbox: outboxStats(outboxStore),
  });

  const hasWork = (): boolean | Promise<boolean> => (active ? Boolean((active.get() as { active: number }).active) : repo.metrics.hasActiveJobs());
  let slackUp = false;
  const dbProbe = repo.dialect === 'postgres' ? postgresProbe({ url: repo.location, ping: (ms) => repo.ping(ms) }) : sqliteProbe(runtime.db!, settings.dbPath);
  const ready = async (): Promise<ReadyResult> => {
    const checks: Record<string, boolean | string> = {};
    checks.db = await checkDatabase(dbProbe);
    if (checks.db === true) try {
      const applied = await repo.metrics.lastMigrationAt();
      checks.migrations = applied >= expectedMigration || `latest applied migration ${applied}, expected ${expectedMigration}`;
    } catch (err) {
      checks.db = `query failed: ${(err as Error).message}`;
    }
    checks.slack = slackUp || (config.mode === 'socket' ? 'socket not connected' : 'auth.test has not succeeded yet');
    // shown, but not a reason to stop taking Slack requests: a dead worker is restarted and resumes its jobs
    const info = { jobWorker: jobsInProcess ? 'in process' : worker?.alive() ? 'running' : (await Promise.resolve(hasWork()).catch(() => false)) ? 'starting' : 'idle (starts on the next job)' };
    return { ok: Object.values(checks).every((v) => v === true), checks, info };
  };
  const health = { metrics, ready };

  const slack = createSlackApp({
    ...opts.slack,
    engine: runtime.engine,
    config,
    logger: log,
    outboxStore: outboxStore,
    sealSecret: runtime.sealSecret,
    eraseSecret: runtime.eraseSecret,
    wizardStore: runtime.repo.wizards,
    deployments: runtime.deployments,
    status: runtime.status,
    lastSpec: runtime.lastSpec,
    history: (deployment): Promise<HistoryRow[]> => repo.metrics.recentJobs(deployment, 10),
    audit: (e) => void runtime.repo.audit.append(e).catch((err) => log.error({ err: String(err) }, 'audit write failed')),
    specPolicy: settings.specPolicy,
    metrics,
    ...(config.mode === 'http' ? { customRoutes: healthRoutes(health), port: settings.port, host } : {}),
  });
  if (config.mode === 'socket') {
    // Bolt keeps its SocketModeClient on the (private) receiver; its events are the connection state
    const socket = (slack.app as unknown as { receiver: { client: { on(e: string, f: () => void): void } } }).receiver.client;
    socket.on('connected', () => (slackUp = true));
    for (const e of ['disconnecting', 'disconnected', 'reconnecting']) socket.on(e, () => (slackUp = false));
  }
  const offMetrics = observeJobEvents(metrics, runtime.engine);
  const offLog = runtime.engine.on((e) => logJobEvents(log, e));

  let server: HealthServer | undefined;
  let worker: JobWorker | undefined;
  let port = settings.port;
  try {
    // Socket Mode: probes answer while Slack connects (readyz says so)
    if (config.mode === 'socket') {
      server = await startHealthServer({ ...health, port: settings.port, host });
      port = server.port;
    }
    if (jobsInProcess) runtime.engine.start();
    else worker = startJobWorker(runtime.engine, { env: { ...env, RE_BOT_DB: settings.dbPath }, log, hasWork, onDrop: () => metrics.dropped.inc({ queue: 'relay' }), onOutbox: () => slack.outbox.wake() });
    const httpServer = await slack.start();
    if (httpServer) port = (httpServer.address() as { port: number }).port;
    if (config.mode === 'http') slackUp = true;
  } catch (err) {
    offMetrics();
    offLog();
    await worker?.stop().catch(() => undefined);
    await slack.stop().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await runtime.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    config,
    runtime,
    slack,
    metrics,
    worker,
    url: server?.url ?? urlFor(host, port),
    port,
    ready,
    stop() {
      stopping ??= (async () => {
        await slack.outbox.idle(10_000).catch(() => undefined);
        slackUp = false;
        await slack.stop();
        await worker?.stop();
        offMetrics();
        offLog();
        await server?.close();
        await runtime.close();
      })();
      return stopping;
    },
  };
}
