/**
 * One runtime for every entry point (CLI `run`/`demo`, the Slack bot): the store, the sealed-secret box,
 * the job engine with the eight checklist steps, and the adapters each step gets.
 */
import type { Infra } from '../infra/types.ts';
import type { StepHandler } from '../checklist/types.ts';
import { createJobEngine, type JobKind, type LocalJobEngine } from '../jobs/engine.ts';
import { JOB_KINDS } from '../spec/rotate-plan.ts';
import { statusReportOf, type StatusReport } from '../jobs/status.ts';
import type { ApprovalPolicy } from '../jobs/types.ts';
import { logger } from '../log.ts';
import { errorMessage } from '../redact.ts';
import { secretRefsOf, type SetupSpec } from '../spec/schema.ts';
import { openStore, type Store } from '../store/index.ts';
import { loadSecretKey, sealedTtlMsFromEnv } from '../store/crypto.ts';
import { openRepository, sqliteRepository, type Repository } from '../store/repo.ts';
import { cachedReads } from './status-cache.ts';
import { reportingSlotWaits, type SlotWaitReporter } from '../infra/child-limit.ts';
import { createSecretResolver, secretResolverForSpec, unresolvedSecretsFailure } from './secrets.ts';

export interface RuntimeOptions {
  dbPath: string;
  /**
   * `postgres://…` (RE_BOT_DATABASE_URL, read by `re-bot start` and its worker): the shared PostgreSQL store of
   * several replicas instead of the SQLite file at `dbPath`. The CLI commands never pass one (they work on SQLite).
   */
  databaseUrl?: string;
  policy?: Partial<ApprovalPolicy>;
  /** kubeconfig for every job (default: the spec's cluster.kubeconfig, else $KUBECONFIG / ~/.kube/config) */
  kubeconfigPath?: string;
  concurrency?: number;
  leaseMs?: number;
  pollMs?: number;
  /** tests swap in other handlers or adapters */
  handlers?: StepHandler[];
  /** job kinds besides the setup; default JOB_KINDS (src/spec/rotate-plan.ts) unless `handlers` are given */
  jobKinds?: Record<string, JobKind>;
  infraFor?: (spec: SetupSpec, resolveSecret: (ref: SetupSpec['deployment']['apiToken']) => Promise<string>) => Promise<Infra>;
  /** sealed secrets no job needs are erased this long after sealing (default RE_BOT_SEALED_TTL_HOURS, 24 h) */
  sealedTtlMs?: number;
}

export interface Runtime {
  /** the SQLite store (undefined on PostgreSQL) */
  store?: Store;
  /** the same database through the async repository (src/store/repo.ts): what call sites move to, one by one (docs/ha.md) */
  repo: Repository;
  engine: LocalJobEngine;
  /** the better-sqlite3 handle (undefined on PostgreSQL) */
  db?: Store['sqlite'];
  sealSecret(value: string, purpose: string): Promise<string>;
  eraseSecret(id: string): Promise<void>;
  /** known deployment names, alphabetical */
  deployments(): Promise<string[]>;
  lastSpec(deployment: string): Promise<SetupSpec | undefined>;
  status(deployment: string): Promise<StatusReport | undefined>;
  close(): Promise<void>;
}

export const DEFAULT_POLICY: ApprovalPolicy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 24 * 3600_000 };

export async function createRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const sealedTtlMs = opts.sealedTtlMs ?? sealedTtlMsFromEnv();
  let store: Store | undefined;
  let repo: Repository;
  if (opts.databaseUrl) {
    // RE_BOT_DATABASE_URL's shape and RE_BOT_SECRET_KEY are checked before connecting (ConfigError, exit 2)
    repo = await openRepository(opts.databaseUrl);
  } else {
    store = openStore({ path: opts.dbPath });
    // the same better-sqlite3 handle: no second connection, one view of every write. The sealed-secret key is read
    // (or its file created) now, so that a malformed RE_BOT_SECRET_KEY stops the start, not the first seal.
    repo = sqliteRepository(store, { secretKey: loadSecretKey(store) });
  }
  const resolveAnySecret = createSecretResolver((id) => repo.secrets.open(id).catch(() => null));
  // the step and adapter modules load on first use: a Slack process whose jobs run in the worker never needs them
  const handlers = opts.handlers ?? (await import('../checklist/index.ts')).ALL_HANDLERS;
  const jobKinds = opts.jobKinds ?? (opts.handlers?.length ? undefined : JOB_KINDS);
  const engine = await createEngineOrClose(repo, store, () => createJobEngine({
    repo,
    handlers,
    policy: { ...DEFAULT_POLICY, ...opts.policy },
    concurrency: opts.concurrency,
    leaseMs: opts.leaseMs,
    pollMs: opts.pollMs,
    jobKinds,
    buildContext: async (job, stepId) => {
      const spec = await specOf(repo, job.id);
      // values resolved for a job are masked until it ends (forgetScope in the engine), not for the process's life
      const resolveSecret = (ref: SetupSpec['deployment']['apiToken']) => resolveAnySecret(ref, job.id);
      // an unresolvable reference names its spec field
      const resolveForJob = secretResolverForSpec(spec, resolveSecret);
      const infra = opts.infraFor
        ? await opts.infraFor(spec, resolveForJob)
        : await (await import('./infra.ts')).createInfra(spec, {
            kubeconfigPath: opts.kubeconfigPath,
            deploymentApiToken: () =>
              // before step 1 has listed the unresolvable references: list them all here, each with its field
              resolveForJob(spec.deployment.apiToken).catch(async (err) => {
                throw await unresolvedSecretsFailure(spec, resolveSecret, err);
              }),
          });
      // a helm/image run waiting for one of the worker's child-process slots shows as the step's progress
      const waits: SlotWaitReporter = {
        progress: (message) => void engine.job(job.id).then((v) => v && engine.relay({ type: 'step.progress', job: v, stepId, message }), () => {}),
        fields: { jobId: job.id, stepId },
      };
      return {
        infra: { ...infra, helm: reportingSlotWaits(infra.helm, waits), images: reportingSlotWaits(infra.images, waits) },
        resolveSecret: resolveForJob,
        // a token an API returns once stays sealed between its creation and its write (src/checklist/agent-token.ts)
        sealSecret: (value: string, purpose: string) => repo.secrets.seal(value, purpose),
        eraseSecret: (id: string) => repo.secrets.erase(id),
      };
    },
  }));

  // Secrets typed into the wizard live (encrypted) only until the job is done with them.
  const offErase = engine.on(async (e) => {
    if (e.type !== 'job.succeeded' && e.type !== 'job.cancelled') return;
    try {
      for (const { ref } of secretRefsOf(await specOf(repo, e.job.id))) if ('stored' in ref) await repo.secrets.erase(ref.stored);
    } catch (err) {
      logger().warn({ jobId: e.job.id, err: errorMessage(err) }, 'could not erase sealed secrets of a finished job');
    }
  });

  // Agent tokens re-bot created or deleted (ids and expiry only), for `/re status`
  const offTokens = engine.on(async (e) => {
    if (e.type !== 'step.finished') return;
    const out = e.job.steps.find((s) => s.stepId === e.stepId)?.output as { agentToken?: { id: string; name: string; endAt?: string }; deletedAgentToken?: { id: string } } | undefined;
    try {
      if (out?.agentToken) await repo.agentTokens.record({ ...out.agentToken, deployment: e.job.deployment, jobId: e.job.id });
      if (out?.deletedAgentToken) await repo.agentTokens.markDeleted(out.deletedAgentToken.id);
    } catch (err) {
      logger().warn({ jobId: e.job.id, err: errorMessage(err) }, 'could not record the agent token');
    }
  });

  // Secrets of abandoned wizards (and of failed jobs nobody retried) are erased once they are older than the TTL.
  const sweep = async () => {
    try {
      const erased = await repo.secrets.sweep(sealedTtlMs);
      if (erased.length) logger().info({ erased: erased.length }, 'erased sealed secrets no job needs any more');
    } catch (err) {
      logger().warn({ err: errorMessage(err) }, 'could not sweep sealed secrets');
    }
  };
  // done before the runtime is handed out: a secret past its TTL is never opened again
  await sweep();
  const sweeper = setInterval(sweep, Math.min(3600_000, sealedTtlMs / 4));
  sweeper.unref();

  return {
    store,
    repo,
    engine,
    db: store?.sqlite,
    sealSecret: (value, purpose) => repo.secrets.seal(value, purpose),
    eraseSecret: (id) => repo.secrets.erase(id),
    deployments: () => repo.deployments.names(),
    lastSpec: async (name) => (await repo.deployments.lastSpec(name)) as SetupSpec | undefined,
    // reused between commits: a burst of `/re status` for the same deployments reads the store once each (the
    // cache keeps the read's promise, so concurrent askers share one read and get the same report object). On
    // PostgreSQL another replica's commits are not seen by data_version: reuse for 1 s only
    status: cachedReads(store?.sqlite ?? null, (name) => statusReportOf(repo, name), store ? {} : { ttlMs: 1000 }),
    async close() {
      clearInterval(sweeper);
      offErase();
      offTokens();
      await engine.stop();
      await repo.close();
      store?.close();
    },
  };
}

/** A refused engine (a step without a handler) must not leave the DB open behind the error. */
async function createEngineOrClose(repo: Repository, store: Store | undefined, create: () => LocalJobEngine): Promise<LocalJobEngine> {
  try {
    return create();
  } catch (err) {
    await repo.close().catch(() => undefined);
    store?.close();
    throw err;
  }
}

async function specOf(repo: Repository, jobId: string): Promise<SetupSpec> {
  const row = await repo.jobs.get(jobId);
  if (!row) throw new Error(`job ${jobId} not found`);
  return row.spec as SetupSpec;
}
