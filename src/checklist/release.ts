import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import type { ChartRef, HelmReleaseInfo, HelmUpgradeInput, PodState } from '../infra/types.ts';
import { redact } from '../redact.ts';
import { agentComponents } from '../spec/plan.ts';

/**
 * Shared by step 2 (first install) and step 7 (roll to the new client image): diff, approval bound to
 * the exact change, an idempotent `helm upgrade --install`, then waiting for the agent pods.
 */

export function chartRefOf(chart: { path?: string; repo?: string; name?: string; version?: string }): ChartRef {
  return chart.path ? { path: chart.path } : { repo: chart.repo, chart: chart.name, version: chart.version };
}

export function chartLabel(ref: ChartRef): string {
  return ref.path ? `local chart ${ref.path}` : `${ref.chart} ${ref.version}`;
}

export function approvalHash(valuesHash: string, chart: ChartRef, diffText: string): string {
  return createHash('sha256').update(JSON.stringify([valuesHash, chart.repo ?? '', chart.chart ?? '', chart.version ?? '', chart.path ?? '', diffText])).digest('hex');
}

export interface RolloutInput {
  /** checkpoint key prefix, distinct per rollout within a step */
  key: string;
  values: unknown;
  valuesHash: string;
  title: string;
  facts: Record<string, string>;
}

export interface RolloutResult {
  revision: number;
  approvalHash: string;
  approvedBy: string[];
  changed: boolean;
}

export async function rollout(ctx: StepContext, input: RolloutInput): Promise<RolloutResult> {
  const { spec, infra } = ctx;
  const chart = chartRefOf(spec.cluster.chart);
  const upgrade: HelmUpgradeInput = {
    release: spec.cluster.release,
    namespace: spec.cluster.namespace,
    chart,
    values: input.values,
    kubeContext: spec.cluster.kubeContext,
    description: `re-bot job ${ctx.jobId} values ${input.valuesHash.slice(0, 16)}`,
  };

  const done = ctx.checkpoint.get<RolloutResult & { valuesHash: string }>(`${input.key}.done`);
  if (done && done.valuesHash === input.valuesHash) return done;

  // A crash during `helm upgrade` can leave the release pending; one between it and the checkpoint leaves a
  // revision carrying our description.
  let history = await infra.helm.history(spec.cluster.release, spec.cluster.namespace, { signal: ctx.signal }).catch(() => []);
  if (/^pending-/.test(history.at(-1)?.status ?? '')) {
    await settlePendingRelease(ctx, input.key, history);
    history = await infra.helm.history(spec.cluster.release, spec.cluster.namespace, { signal: ctx.signal }).catch(() => []);
  }
  const applied = history.find((h) => h.description === upgrade.description && /deployed|superseded/.test(h.status));
  const pendingHash = ctx.checkpoint.get<string>(`${input.key}.approvalHash`);
  if (applied && pendingHash) {
    const result = { revision: applied.revision, approvalHash: pendingHash, approvedBy: ctx.checkpoint.get<string[]>(`${input.key}.approvedBy`) ?? [], changed: true, valuesHash: input.valuesHash };
    ctx.checkpoint.set(`${input.key}.done`, result);
    return result;
  }

  ctx.progress('computing the diff against the current release');
  const diff = await infra.helm.diff(upgrade, { signal: ctx.signal });
  const hash = approvalHash(input.valuesHash, chart, diff.text);
  const current = history.at(-1);
  if (!diff.firstInstall && diff.changedKeys.length === 0 && current && current.status === 'deployed') {
    const result = { revision: current.revision, approvalHash: hash, approvedBy: [], changed: false, valuesHash: input.valuesHash };
    ctx.checkpoint.set(`${input.key}.done`, result);
    return result;
  }

  const grant = await ctx.requireApproval({
    title: input.title,
    hash,
    diffText: redact(diff.text),
    changedKeys: diff.changedKeys,
    facts: { ...input.facts, chart: chartLabel(chart), release: `${spec.cluster.release} in ${spec.cluster.namespace}`, change: diff.firstInstall ? 'first install' : `${diff.changedKeys.length} change(s)` },
  });
  ctx.checkpoint.set(`${input.key}.approvalHash`, grant.hash);
  ctx.checkpoint.set(`${input.key}.approvedBy`, grant.approvedBy);

  ctx.progress(`helm upgrade --install ${spec.cluster.release} (approved by ${grant.approvedBy.join(', ')})`);
  const info = await infra.helm.upgradeInstall(upgrade, {
    signal: ctx.signal,
    onSpawn: (pid) => ctx.checkpoint.set(`${input.key}.helm`, { pid, host: hostname() }),
  });
  const result = { revision: info.revision, approvalHash: grant.hash, approvedBy: grant.approvedBy, changed: true, valuesHash: input.valuesHash };
  ctx.checkpoint.set(`${input.key}.done`, result);
  return result;
}

const HELM_WAIT_MS = 10 * 60_000;

/**
 * The release is pending-install/upgrade/rollback: a helm of ours was killed with re-bot, or still runs as
 * an orphan. A live one is waited for; after a dead one the release is put back to its last good revision
 * (or removed, when the first install never finished) so the upgrade can be applied again.
 */
async function settlePendingRelease(ctx: StepContext, key: string, history: HelmReleaseInfo[]): Promise<void> {
  const { release, namespace } = ctx.spec.cluster;
  const helm = ctx.infra.helm;
  const ours = ctx.checkpoint.get<{ pid: number; host: string }>(`${key}.helm`);
  const deadline = Date.now() + HELM_WAIT_MS;
  while (ours && processAlive(ours) && Date.now() < deadline && !ctx.signal.aborted) {
    ctx.progress(`waiting for the helm process (pid ${ours.pid}) a previous run started to finish`);
    await sleep(500, ctx.signal);
  }
  let last = history.at(-1)!;
  if (ours) {
    const fresh = await helm.history(release, namespace, { signal: ctx.signal }).catch(() => history);
    last = fresh.at(-1) ?? last;
    if (!/^pending-/.test(last.status)) return;
  } else if (Date.now() - Date.parse(last.updated ?? '') < 60_000) {
    // not started by this step (another tool, or a crash before the pid was saved): give it a minute
    throw new StepFailure(`release ${release} is ${last.status} (revision ${last.revision}, updated ${last.updated}): another helm operation is running`, {
      hint: 'retry once it has finished; re-bot recovers a release that stays pending',
    });
  }
  const good = [...history].reverse().find((h) => h.status === 'deployed' || h.status === 'superseded');
  if (good) {
    ctx.progress(`release ${release} was left ${last.status} by an interrupted helm: rolling back to revision ${good.revision}`);
    await helm.rollback(release, namespace, good.revision, { signal: ctx.signal });
  } else {
    ctx.progress(`release ${release} was left ${last.status} by an interrupted first install: removing it to install again`);
    await helm.uninstall(release, namespace, { signal: ctx.signal });
  }
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

async function podFailure(ctx: StepContext, pod: PodState, component: string): Promise<StepFailure> {
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
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
