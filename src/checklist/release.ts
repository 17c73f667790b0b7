import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import type { ChartRef, HelmReleaseInfo, HelmUpgradeInput, PodState } from '../infra/types.ts';
import { redact } from '../redact.ts';
import { releaseDescription, releaseDescriptionDeployment } from '../infra/ownership.ts';
import { agentComponents } from '../spec/plan.ts';

/**
 * Shared by step 2 (first install) and step 7 (roll to the new client image). Planning only reads: the
 * release's history (is it re-bot's, another chart, pending?), and a diff of the new values against it.
 * Applying runs after the approval: recovery of re-bot's own pending release (audited), then an idempotent
 * `helm upgrade --install` whose description marks the revision as re-bot's for this deployment.
 */

export function chartRefOf(chart: { path?: string; repo?: string; name?: string; version?: string }): ChartRef {
  return chart.path ? { path: chart.path } : { repo: chart.repo, chart: chart.name, version: chart.version };
}

export function chartLabel(ref: ChartRef): string {
  return ref.path ? `local chart ${ref.path}` : `${ref.chart} ${ref.version}`;
}

/** sha256 over everything the approver sees: values hash, chart, diff text and the other plan lines. */
export function approvalHash(valuesHash: string, chart: ChartRef, diffText: string, lines: string[] = []): string {
  return createHash('sha256').update(JSON.stringify([valuesHash, chart.repo ?? '', chart.chart ?? '', chart.version ?? '', chart.path ?? '', diffText, ...(lines.length ? [lines] : [])])).digest('hex');
}

export interface RolloutInput {
  /** checkpoint key prefix, distinct per rollout within a step */
  key: string;
  values: unknown;
  valuesHash: string;
}

export interface RolloutResult {
  revision: number;
  approvalHash: string;
  approvedBy: string[];
  changed: boolean;
}

/** What happens to a release left pending-*, decided in the plan and shown to the approver. */
export type Recovery = { action: 'rollback'; revision: number; status: string; pendingRevision: number } | { action: 'uninstall'; status: string; pendingRevision: number };

export interface ReleasePlan {
  /** chart name and version the upgrade installs */
  chart: { name: string; version: string };
  chartLabel: string;
  firstInstall: boolean;
  /** revision of the live release, when one exists */
  currentRevision?: number;
  /** chart of the live release as helm lists it (`name-version`), when one exists */
  currentChart?: string;
  /** a release of the agent chart installed without re-bot: the upgrade adopts it */
  adopts?: { revision: number };
  recovery?: Recovery;
  diffText: string;
  changedKeys: string[];
  /** nothing to do: the release is deployed, re-bot's and already has these values */
  unchanged: boolean;
  /** plan lines for the approver: adoption, recovery, install/upgrade */
  lines: string[];
}

const chartNameOf = (chart: string) => chart.replace(/-v?\d+(\.\d+)*([-+][\w.+-]*)?$/, '');

export function upgradeInput(ctx: StepContext, input: RolloutInput): HelmUpgradeInput {
  const { spec } = ctx;
  return {
    release: spec.cluster.release,
    namespace: spec.cluster.namespace,
    chart: chartRefOf(spec.cluster.chart),
    values: input.values,
    kubeContext: spec.cluster.kubeContext,
    description: releaseDescription(spec.deployment.name, ctx.jobId, input.valuesHash),
  };
}

/**
 * Reads only. Fails (naming the release and what to do) when the release name is taken by another chart or
 * by re-bot for another deployment, or is pending in a way re-bot did not cause.
 */
export async function planRelease(ctx: StepContext, input: RolloutInput): Promise<ReleasePlan> {
  const { spec, infra } = ctx;
  const { release, namespace } = spec.cluster;
  const deployment = spec.deployment.name;
  const upgrade = upgradeInput(ctx, input);
  const opts = { signal: ctx.signal };
  const chart = await infra.helm.chartMetadata(upgrade.chart, opts);
  const label = `${chart.name} ${chart.version}`;
  const history = await infra.helm.history(release, namespace, opts).catch((err: { code?: string }) => {
    if (err.code === 'not_found') return [];
    throw err;
  });
  const lines: string[] = [];
  const current = history.at(-1);
  let adopts: ReleasePlan['adopts'];
  let recovery: Recovery | undefined;
  if (current) {
    if (chartNameOf(current.chart) !== chart.name) {
      throw new StepFailure(`release ${release} in ${namespace} is chart ${current.chart}, not ${chart.name}; choose another cluster.release`, { field: 'cluster.release' });
    }
    const marks = history.map((h) => releaseDescriptionDeployment(h.description)).filter((d): d is string => d !== undefined);
    const ours = marks.some((d) => d === deployment || d === '');
    const other = marks.find((d) => d !== deployment && d !== '');
    if (!ours && other) {
      throw new StepFailure(`release ${release} in ${namespace} was installed by re-bot for deployment ${other}, not ${deployment}; choose another cluster.release`, { field: 'cluster.release' });
    }
    if (/^pending-/.test(current.status)) {
      if (!ours) {
        throw new StepFailure(`release ${release} in ${namespace} is ${current.status} (revision ${current.revision}) and was not created by re-bot; finish or roll back that helm operation yourself, then retry`, { field: 'cluster.release' });
      }
      recovery = await pendingRecovery(ctx, input.key, history);
      lines.push(recovery.action === 'rollback'
        ? `recovers release ${release}: revision ${recovery.pendingRevision} was left ${recovery.status} by an interrupted helm of re-bot; rolls back to revision ${recovery.revision} first`
        : `recovers release ${release}: its first install (revision ${recovery.pendingRevision}) was left ${recovery.status} by an interrupted helm of re-bot; uninstalls it first`);
    } else if (!ours) {
      adopts = { revision: current.revision };
      lines.push(`adopts existing release ${release} (revision ${current.revision}, installed without re-bot): re-bot will upgrade and own it`);
    }
  }
  ctx.progress('computing the diff against the current release');
  const diff = await infra.helm.diff(upgrade, opts);
  const firstInstall = diff.firstInstall || recovery?.action === 'uninstall';
  const unchanged = !firstInstall && !adopts && !recovery && diff.changedKeys.length === 0 && current?.status === 'deployed';
  if (!unchanged) {
    lines.push(firstInstall
      ? `helm install ${release} (${label}) in ${namespace}, description "re-bot … deployment ${deployment}"`
      : `helm upgrade ${release} (${label}) in ${namespace} from revision ${current!.revision}: ${diff.changedKeys.length} change(s)`);
  }
  return {
    chart, chartLabel: label, firstInstall, currentRevision: current?.revision, currentChart: current?.chart, adopts, recovery,
    diffText: redact(diff.text), changedKeys: diff.changedKeys, unchanged, lines,
  };
}

/**
 * After the approval: recovers re-bot's pending release when the plan said so (audited), then upgrades —
 * exactly once, also when a crash lands between the upgrade and the checkpoint.
 */
export async function applyRelease(ctx: StepContext, input: RolloutInput, grant: { hash: string; approvedBy: string[] }): Promise<RolloutResult> {
  const { spec, infra } = ctx;
  const upgrade = upgradeInput(ctx, input);
  const done = ctx.checkpoint.get<RolloutResult & { valuesHash: string }>(`${input.key}.done`);
  if (done && done.valuesHash === input.valuesHash) return done;

  // a crash during `helm upgrade` leaves the release pending; one between it and the checkpoint leaves a revision carrying our description
  let history = await infra.helm.history(spec.cluster.release, spec.cluster.namespace, { signal: ctx.signal }).catch(() => []);
  if (/^pending-/.test(history.at(-1)?.status ?? '')) {
    const marks = history.map((h) => releaseDescriptionDeployment(h.description));
    if (!marks.some((d) => d === spec.deployment.name || d === '') && !startedByThisStep(ctx, input.key, history)) {
      throw new StepFailure(`release ${spec.cluster.release} in ${spec.cluster.namespace} became ${history.at(-1)!.status} after the approval and was not created by re-bot; not touching it`);
    }
    const recovery = await pendingRecovery(ctx, input.key, history);
    await recover(ctx, recovery);
    history = await infra.helm.history(spec.cluster.release, spec.cluster.namespace, { signal: ctx.signal }).catch(() => []);
  }
  const applied = history.find((h) => h.description === upgrade.description && /deployed|superseded/.test(h.status));
  if (applied) {
    const result = { revision: applied.revision, approvalHash: grant.hash, approvedBy: grant.approvedBy, changed: true, valuesHash: input.valuesHash };
    ctx.checkpoint.set(`${input.key}.done`, result);
    return result;
  }

  ctx.progress(`helm upgrade --install ${spec.cluster.release} (approved by ${grant.approvedBy.join(', ')})`);
  const info = await infra.helm.upgradeInstall(upgrade, {
    signal: ctx.signal,
    onSpawn: (pid) => ctx.checkpoint.set(`${input.key}.helm`, { pid, host: hostname(), after: history.at(-1)?.revision ?? 0 }),
  });
  const result = { revision: info.revision, approvalHash: grant.hash, approvedBy: grant.approvedBy, changed: true, valuesHash: input.valuesHash };
  ctx.checkpoint.set(`${input.key}.done`, result);
  return result;
}

/** Marks a release as unchanged without an approval (nothing to apply). */
export function releaseUnchanged(ctx: StepContext, input: RolloutInput, plan: ReleasePlan): RolloutResult {
  const result = { revision: plan.currentRevision ?? 0, approvalHash: '', approvedBy: [], changed: false, valuesHash: input.valuesHash };
  ctx.checkpoint.set(`${input.key}.done`, result);
  return result;
}

/**
 * The pending revision is the one the helm this step spawned creates: the checkpoint written at spawn names
 * the revision that was last then. A killed helm install leaves helm's own description ("Initial install
 * underway") on it, not ours, so the description alone cannot tell.
 */
function startedByThisStep(ctx: StepContext, key: string, history: HelmReleaseInfo[]): boolean {
  const spawned = ctx.checkpoint.get<{ pid: number; host: string; after?: number }>(`${key}.helm`);
  return spawned?.after !== undefined && history.at(-1)!.revision === spawned.after + 1;
}

const HELM_WAIT_MS = 10 * 60_000;

/**
 * The release (re-bot's) is pending-install/upgrade/rollback: a helm of ours was killed with re-bot, or still
 * runs as an orphan. A live one is waited for; after a dead one the release goes back to its last good
 * revision (or is removed, when the first install never finished) so the upgrade can be applied again.
 */
async function pendingRecovery(ctx: StepContext, key: string, history: HelmReleaseInfo[]): Promise<Recovery> {
  const { release, namespace } = ctx.spec.cluster;
  const ours = ctx.checkpoint.get<{ pid: number; host: string }>(`${key}.helm`);
  const deadline = Date.now() + HELM_WAIT_MS;
  while (ours && processAlive(ours) && Date.now() < deadline && !ctx.signal.aborted) {
    ctx.progress(`waiting for the helm process (pid ${ours.pid}) a previous run started to finish`);
    await sleep(500, ctx.signal);
  }
  let last = history.at(-1)!;
  if (ours) {
    const fresh = await ctx.infra.helm.history(release, namespace, { signal: ctx.signal }).catch(() => history);
    history = fresh.length ? fresh : history;
    last = history.at(-1) ?? last;
  } else if (Date.now() - Date.parse(last.updated ?? '') < 60_000) {
    // not started by this step (another job, or a crash before the pid was saved): give it a minute
    throw new StepFailure(`release ${release} is ${last.status} (revision ${last.revision}, updated ${last.updated}): another helm operation is running`, {
      hint: 'retry once it has finished; re-bot recovers its own release that stays pending',
    });
  }
  const good = [...history].reverse().find((h) => h.status === 'deployed' || h.status === 'superseded');
  return good ? { action: 'rollback', revision: good.revision, status: last.status, pendingRevision: last.revision } : { action: 'uninstall', status: last.status, pendingRevision: last.revision };
}

async function recover(ctx: StepContext, r: Recovery): Promise<void> {
  const { release, namespace } = ctx.spec.cluster;
  const helm = ctx.infra.helm;
  const now = await helm.history(release, namespace, { signal: ctx.signal }).catch(() => []);
  if (!/^pending-/.test(now.at(-1)?.status ?? '')) return; // the helm we waited for finished
  if (r.action === 'rollback') {
    ctx.progress(`release ${release} was left ${r.status} by an interrupted helm of re-bot: rolling back to revision ${r.revision}`);
    await helm.rollback(release, namespace, r.revision, { signal: ctx.signal });
  } else {
    ctx.progress(`release ${release} was left ${r.status} by an interrupted first install of re-bot: removing it to install again`);
    await helm.uninstall(release, namespace, { signal: ctx.signal });
  }
  ctx.audit?.(`release.recovered`, { release, namespace, ...r });
}

function processAlive(p: { pid: number; host: string }): boolean {
  if (p.host !== hostname()) return false; // the pod that ran it is gone with its processes
  try {
    process.kill(p.pid, 0);
    return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes('helm');
  } catch {
    return false;
  }
}

/** Names of the Deployments the agent chart creates, in the chart's naming scheme. */
/** What step 2 and step 7 wait for; `re-bot plan` lists the same (spec/plan.ts). */
export function expectedComponents(spec: StepContext['spec']): string[] {
  return agentComponents(spec);
}

function componentOf(pod: PodState, components: string[]): string | undefined {
  // longest match first: "<p>-worker-a" must not claim pods of "<p>-worker-a-b"
  return [...components].sort((a, b) => b.length - a.length).find((c) => pod.name.startsWith(`${c}-`));
}

export interface PodsReady {
  components: Record<string, { ready: number; total: number }>;
}

/**
 * Waits until every agent component has at least one Ready pod. A pod that keeps crashing fails fast
 * with its waiting reason and a redacted log tail instead of running into the timeout.
 */
export async function waitForAgentPods(ctx: StepContext, timeoutMs: number, pollMs = 500): Promise<PodsReady> {
  const { kube } = ctx.infra;
  const ns = ctx.spec.cluster.namespace;
  const components = expectedComponents(ctx.spec);
  const deadline = Date.now() + timeoutMs;
  let last: PodState[] = [];
  for (;;) {
    if (ctx.signal.aborted) throw new StepFailure('cancelled while waiting for agent pods');
    last = await kube.listPods(ns, undefined, { signal: ctx.signal });
    const status: PodsReady['components'] = {};
    for (const c of components) status[c] = { ready: 0, total: 0 };
    for (const pod of last) {
      const c = componentOf(pod, components);
      if (!c) continue;
      status[c].total++;
      if (pod.ready) status[c].ready++;
      // these never fix themselves and never count restarts: fail at once
      const stuck = pod.waitingReason && /ImagePullBackOff|InvalidImageName|CreateContainerConfigError/.test(pod.waitingReason);
      const crashing = pod.waitingReason === 'CrashLoopBackOff' && pod.restarts >= 3;
      if (stuck || crashing) throw await podFailure(ctx, pod, c);
    }
    const notReady = components.filter((c) => status[c].ready === 0);
    ctx.progress(`agent pods ready: ${components.length - notReady.length}/${components.length}${notReady.length ? ` (waiting for ${notReady.join(', ')})` : ''}`);
    if (!notReady.length) return { components: status };
    if (Date.now() > deadline) {
      const stuck = last.find((p) => notReady.some((c) => p.name.startsWith(`${c}-`)) && p.waitingReason);
      if (stuck) throw await podFailure(ctx, stuck, componentOf(stuck, components) ?? stuck.name);
      throw new StepFailure(`agent pods not Ready after ${Math.round(timeoutMs / 1000)}s: ${notReady.join(', ')}${notReady.some((c) => !status[c].total) ? ' (no pods created)' : ''}`);
    }
    await sleep(pollMs, ctx.signal);
  }
}

export async function podFailure(ctx: StepContext, pod: PodState, component: string): Promise<StepFailure> {
  const tail = await ctx.infra.kube.podLogTail(ctx.spec.cluster.namespace, pod.name, 20, { signal: ctx.signal }).catch((e: Error) => `(log unavailable: ${e.message})`);
  const hint = /403|Forbidden/i.test(tail)
    ? 'a 403 from the Astro API usually means the cluster egress IP is missing from the Deployment\'s allowed IP ranges, or the agent token belongs to another Deployment'
    : undefined;
  return new StepFailure(
    `${component}: pod ${pod.name} is ${pod.waitingReason}${pod.message ? ` (${pod.message})` : ''}, ${pod.restarts} restart(s)`,
    { logTail: redact(tail), hint },
  );
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // the listener is removed when the timer fires: a long poll loop must not pile one up per tick
    const done = () => { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
