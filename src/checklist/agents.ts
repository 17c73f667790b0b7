import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { reviewOf, valuesDiff } from './review.ts';
import { StepFailure } from './types.ts';
import { renderValues, valuesHash, secretNames } from '../spec/values.ts';
import { applyRelease, approvalHash, chartRefOf, planRelease, releaseUnchanged, waitForAgentPods, expectedComponents, type Recovery, type RolloutInput } from './release.ts';
import { planSecret, PREPARED_SECRETS, secretData, secretLine, type PreparedSecret } from './secrets.ts';
import { astroTokensOf, createAgentTokenOnce, planCreatedAgentToken, writeAgentTokenSecret, type AgentTokenRecord } from './agent-token.ts';
import { createsAgentToken } from '../spec/schema.ts';
import { ownerMeta, secretContentHash } from '../infra/ownership.ts';
import { STEP_IDS } from '../spec/plan.ts';

const KEY = 'install';

/** The whole change step 2 applies after one approval; names, key names and content hashes only. */
export interface ChangeSet {
  hash: string;
  approvedBy: string[];
  createNamespace: boolean;
  secrets: PreparedSecret[];
  recovery?: Recovery;
  adopts?: { revision: number };
  /** the plan's lines, as the approver saw them */
  lines: string[];
}

/** URLs that receive a token during the setup (listed in the plan so the approver sees where credentials go). */
export function tokenUrls(ctx: StepContext): string[] {
  const d = ctx.spec.deployment;
  const out = [`${d.apiUrl} receives the agent token from the agent pods`];
  if (ctx.infra.astro) out.push(`${d.astroApiUrl} (Astro API) receives the Deployment API token in steps 1 and 6`);
  if (ctx.spec.verify.enabled && d.airflowApiUrl) out.push(`${d.airflowApiUrl} (Airflow API) receives the Deployment API token in step 8`);
  return out;
}

/**
 * Step 2: the plan (reads only: namespace, every Secret of steps 2–6, the release and its diff), one approval
 * for that whole change set, then apply: namespace, Secrets, Helm; then wait for Ready pods.
 */
export const agents: StepHandler = {
  id: 'agents',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const ns = spec.cluster.namespace;
    const names = secretNames(spec);
    const values = renderValues(spec);
    const hash = valuesHash(values, spec.cluster.chart);
    const input: RolloutInput = { key: KEY, values, valuesHash: hash };

    let change = ctx.checkpoint.get<ChangeSet>(`${KEY}.approved`);
    let unchangedRelease: ReturnType<typeof releaseUnchanged> | undefined;
    if (!change && !ctx.checkpoint.get(`${KEY}.done`)) {
      const planned = await plan(ctx, input);
      if (planned.nothingToDo) {
        unchangedRelease = releaseUnchanged(ctx, input, planned.release);
        change = { hash: '', approvedBy: [], createNamespace: false, secrets: planned.secrets, lines: [] };
      } else {
        const grant = await ctx.requireApproval(planned.request);
        change = { ...planned.change, hash: grant.hash, approvedBy: grant.approvedBy };
        // from here on the approved change is applied, also after a crash: it is never planned (or asked) again
        ctx.checkpoint.set(`${KEY}.approved`, change);
      }
    }

    const applied = change ? await apply(ctx, change) : { namespaceCreated: ctx.checkpoint.get<boolean>('namespaceCreated') === true, actions: {} };
    const result = unchangedRelease ?? await applyRelease(ctx, input, { hash: change?.hash ?? '', approvedBy: change?.approvedBy ?? [] });

    const comps = expectedComponents(spec);
    const secretSummary = (change?.secrets ?? []).map((s) => `${s.name} (${applied.actions[s.name] ?? s.action})`).join(', ');
    ctx.progress(`waiting for a Ready pod of each of ${comps.length} components: ${comps.join(', ')}`);
    const pods = await waitForAgentPods(ctx, (spec.agent.readyTimeoutSeconds ?? 300) * 1000);
    return {
      status: 'succeeded',
      summary: `${spec.cluster.release} revision ${result.revision}${result.changed ? '' : ' (unchanged)'}; ${comps.length} components Ready${secretSummary ? `; Secrets ${secretSummary}` : ''}${change?.adopts ? `; adopted revision ${change.adopts.revision}` : ''}`,
      output: {
        namespace: ns,
        namespaceCreated: applied.namespaceCreated,
        secrets: (change?.secrets ?? []).map((s) => s.name).filter((n) => n === names.agentToken || n === names.pullSecret),
        appliedSecrets: (change?.secrets ?? []).map((s) => ({ name: s.name, type: s.type, keys: s.keys, hash: s.hash, action: applied.actions[s.name] ?? s.action })),
        ...(change?.adopts ? { adoptedRevision: change.adopts.revision } : {}),
        ...(change?.recovery ? { recovered: change.recovery } : {}),
        ...agentTokenOutput(ctx, change?.secrets ?? []),
        helmRevision: result.revision,
        valuesHash: hash,
        approvalHash: result.approvalHash,
        approvedBy: result.approvedBy,
        pods: pods.components,
      },
    };
  },
};

/** Reads only: what applying this spec would change, as an approval request. */
async function plan(ctx: StepContext, input: RolloutInput) {
  const { spec } = ctx;
  const ns = spec.cluster.namespace;
  const live = await ctx.infra.kube.readNamespace(ns, { signal: ctx.signal });
  if (!live && !spec.cluster.createNamespace) {
    throw new StepFailure(`namespace ${ns} does not exist and cluster.createNamespace is false`, {
      field: 'cluster.namespace',
      hint: `create the namespace (kubectl create namespace ${ns}) or set cluster.createNamespace: true`,
    });
  }
  const createNamespace = !live;
  ctx.progress('planning: Secrets, release, diff (nothing is changed before the approval)');
  if (createsAgentToken(spec)) astroTokensOf(ctx);
  const secrets: PreparedSecret[] = [createsAgentToken(spec) ? await planCreatedAgentToken(ctx) : await planSecret(ctx, 'agent-token'), await planSecret(ctx, 'pull-secret')];
  // Secrets steps 3–6 prepared for this upgrade (planned again: the cluster may have changed since)
  for (const id of STEP_IDS) {
    if (id === 'agents') continue;
    for (const p of (ctx.outputOf(id)?.[PREPARED_SECRETS] as PreparedSecret[] | undefined) ?? []) {
      if (!secrets.some((s) => s.name === p.name)) secrets.push(await planSecret(ctx, p.kind));
    }
  }
  const release = await planRelease(ctx, input);
  const meta = ownerMeta(spec.deployment.name);
  const nsLine = createNamespace
    ? `Namespace ${ns}: create (labels ${Object.entries(meta.labels).map(([k, v]) => `${k}=${v}`).join(', ')}; annotation ${Object.entries(meta.annotations).map(([k, v]) => `${k}=${v}`).join(', ')})`
    : `Namespace ${ns}: exists, not changed`;
  const secretLines = secrets.map(secretLine);
  const urls = tokenUrls(ctx);
  const lines = [nsLine, ...secretLines, ...release.lines];
  const nothingToDo = !createNamespace && secrets.every((s) => s.action === 'unchanged') && release.unchanged;
  const diffText = [...lines, '', 'tokens are sent to:', ...urls.map((u) => `  ${u}`), '', `helm diff (${release.chartLabel}):`, release.diffText].join('\n');
  const chart = chartRefOf(spec.cluster.chart);
  const hash = approvalHash(input.valuesHash, chart, release.diffText, [...lines, ...urls]);
  const writes = secrets.filter((s) => s.action !== 'unchanged');
  const oldValues = release.firstInstall ? undefined : await ctx.infra.helm.getValues(spec.cluster.release, ns, { signal: ctx.signal }).catch(() => undefined);
  const request = {
    review: reviewOf(spec, release, createNamespace, secrets, valuesDiff(oldValues, input.values), urls),
    title: `helm upgrade --install ${spec.cluster.release} (agents for ${spec.deployment.name})${release.adopts ? ', adopting the existing release' : ''}`,
    hash,
    diffText,
    changedKeys: [
      ...(createNamespace ? [`Namespace/${ns} (create)`] : []),
      ...writes.map((s) => `Secret/${ns}/${s.name} (${s.action})`),
      ...(release.adopts ? [`release ${spec.cluster.release} (adopt revision ${release.adopts.revision})`] : []),
      ...(release.recovery ? [`release ${spec.cluster.release} (${release.recovery.action} the pending revision first)`] : []),
      ...release.changedKeys,
    ],
    facts: {
      'values hash': input.valuesHash.slice(0, 16),
      image: String((input.values as { image?: string }).image ?? 'chart default'),
      namespace: createNamespace ? `${ns} (created by re-bot)` : `${ns} (exists)`,
      chart: release.chartLabel,
      release: `${spec.cluster.release} in ${ns}${release.adopts ? ` — adopts revision ${release.adopts.revision}, installed without re-bot` : ''}${release.recovery ? ` — recovers the ${release.recovery.status} revision first` : ''}`,
      change: release.firstInstall ? 'first install' : release.adopts ? 'adopt and upgrade' : `${release.changedKeys.length} change(s)`,
      secrets: secrets.map((s) => `${s.name} ${s.action}`).join(', '),
      'tokens sent to': urls.map((u) => u.split(' ')[0]).join(', '),
    },
  };
  const change: Omit<ChangeSet, 'hash' | 'approvedBy'> = { createNamespace, secrets, recovery: release.recovery, adopts: release.adopts, lines };
  return { request, change, nothingToDo, release, secrets };
}

/** After the approval: namespace, then every Secret (re-checked: still the approved content, still re-bot's to change). */
async function apply(ctx: StepContext, change: ChangeSet): Promise<{ namespaceCreated: boolean; actions: Record<string, string> }> {
  const { spec } = ctx;
  const ns = spec.cluster.namespace;
  const meta = ownerMeta(spec.deployment.name);
  const opts = { signal: ctx.signal };
  let namespaceCreated = ctx.checkpoint.get<boolean>('namespaceCreated') === true;
  if (change.createNamespace && !namespaceCreated) {
    ctx.progress(`creating namespace ${ns}`);
    namespaceCreated = (await ctx.infra.kube.ensureNamespace(ns, meta, opts)).created;
    if (namespaceCreated) ctx.checkpoint.set('namespaceCreated', true);
  }
  const actions: Record<string, string> = { ...(ctx.checkpoint.get<Record<string, string>>('secretActions') ?? {}) };
  // only what the approver saw changing; an `unchanged` Secret is left alone
  for (const s of change.secrets.filter((x) => x.action !== 'unchanged')) {
    if (actions[s.name]) continue;
    if (s.newToken) {
      // created only now, after the approval; the value goes from the API answer into this Secret
      const created = await createAgentTokenOnce(ctx, `${KEY}.agentToken`, s.newToken);
      await writeAgentTokenSecret(ctx, `${KEY}.agentToken`, s.newToken, created);
      actions[s.name] = s.action === 'create' ? 'created' : 'updated';
      ctx.checkpoint.set('secretActions', actions);
      continue;
    }
    const d = await secretData(ctx, s.kind);
    if (secretContentHash(d.type, d.stringData) !== s.hash) {
      ctx.checkpoint.set(`${KEY}.approved`, undefined);
      throw new StepFailure(`the content of Secret ${ns}/${s.name} changed after the approval (its secret reference now resolves to another value); retry the job to plan and approve again`);
    }
    ctx.progress(`writing Secret ${ns}/${s.name}`);
    try {
      const r = await ctx.infra.kube.applySecret({ namespace: ns, name: s.name, type: d.type, stringData: d.stringData, ...meta, ownedBy: spec.deployment.name }, opts);
      actions[s.name] = r.action === 'unchanged' && s.action === 'update' ? 'updated' : s.action === 'create' ? 'created' : r.action;
    } catch (err) {
      if ((err as { code?: string }).code === 'conflict') {
        throw new StepFailure(`Secret ${ns}/${s.name} appeared after the approval and was not created by re-bot for deployment ${spec.deployment.name}; delete it, or choose another cluster.resourceNamePrefix`, { field: 'cluster.resourceNamePrefix' });
      }
      throw err;
    }
    ctx.checkpoint.set('secretActions', actions);
  }
  return { namespaceCreated, actions };
}

/** `agentToken`: the token re-bot created (now or earlier) that the Secret holds; read by `/re status` for its expiry. */
function agentTokenOutput(ctx: StepContext, secrets: PreparedSecret[]): { agentToken?: AgentTokenRecord } {
  const written = ctx.checkpoint.get<{ token: AgentTokenRecord }>(`${KEY}.agentToken.written`);
  const token = written?.token ?? secrets.find((s) => s.kind === 'agent-token')?.token;
  return token ? { agentToken: token } : {};
}
