/**
 * The steps of a `rotate-token` job (src/spec/rotate-plan.ts): plan and one approval, create the new token, write
 * it into the Secret, roll the agents, verify, and only then delete the old token. A failure before the last step
 * leaves the old token in the Astro API, so the agents still running with it keep working.
 */
import { createHash } from 'node:crypto';
import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import {
  astroTokensOf, createAgentTokenOnce, currentAgentToken, newAgentToken, newTokenText, recordOf, writeAgentTokenSecret,
  TOKEN_ID_ANNOTATION, type AgentTokenRecord, type NewAgentToken,
} from './agent-token.ts';
import { tokenUrls } from './agents.ts';
import { podFailure, sleep, waitForAgentPods } from './release.ts';
import { verify } from './verify.ts';
import { MAX_AGENT_TOKENS } from '../infra/astro-tokens.ts';
import { agentComponents } from '../spec/plan.ts';
import { createsAgentToken } from '../spec/schema.ts';
import { secretNames } from '../spec/values.ts';

const KEY = 'rotate.new';

interface Approved {
  newToken: NewAgentToken;
  /** the token the Secret holds now; absent when it names none */
  old?: AgentTokenRecord & { state: string };
  approvedBy: string[];
}

interface Created {
  newToken: AgentTokenRecord;
  sealed?: string;
  planned: NewAgentToken;
  old?: Approved['old'];
}

const outputOf = <T>(ctx: StepContext, id: string): T => {
  const o = ctx.outputOf(id) as T | undefined;
  if (!o) throw new StepFailure(`step ${id} has no recorded result; retry the job`);
  return o;
};

/** Reads only: what the rotation will do, as one approval request covering every step. */
async function planRotation(ctx: StepContext): Promise<{ newToken: NewAgentToken; old?: Approved['old']; lines: string[] }> {
  const { spec } = ctx;
  const create = createsAgentToken(spec);
  if (!create) {
    throw new StepFailure('agent.token is a secret reference (a pasted token): re-bot rotates only tokens it creates, or the next setup would write the pasted one back', {
      field: 'agent.token',
      hint: 'set agent.token: { create: { expiresInDays: 90 } } and run the setup once; after that /re rotate-token works',
    });
  }
  const astro = astroTokensOf(ctx);
  const ns = spec.cluster.namespace;
  const secret = secretNames(spec).agentToken;
  const cur = await currentAgentToken(ctx);
  if (cur.state === 'none') {
    throw new StepFailure(`Secret ${ns}/${secret} does not exist: there are no agents to rotate the token of`, { hint: `run the setup of ${spec.deployment.name} first` });
  }
  const existing = await astro.listAgentTokens(spec.deployment.organizationId, spec.deployment.id, { signal: ctx.signal });
  if (existing.length >= MAX_AGENT_TOKENS) {
    throw new StepFailure(`Deployment ${spec.deployment.id} already has ${existing.length} agent tokens, the maximum is ${MAX_AGENT_TOKENS}: a new one cannot be created`, {
      hint: 'delete unused agent tokens in the Astro UI (Deployment → Access → Agent tokens), then retry',
    });
  }
  const newToken = await newAgentToken(ctx, 'rotate', create.expiresInDays);
  const old = cur.id ? { id: cur.id, name: cur.token?.name ?? '(name unknown)', ...(cur.token?.endAt ? { endAt: cur.token.endAt } : {}), state: cur.state } : undefined;
  const comps = agentComponents(spec);
  const lines = [
    `1. ${newTokenText(newToken)}`,
    `2. write it into Secret ${ns}/${secret} (key token)`,
    `3. rollout restart of ${comps.join(', ')} (release ${spec.cluster.release} in ${ns})`,
    `4. wait for Ready agent pods${spec.verify.enabled ? ` and a successful run of test DAG ${spec.verify.testDag}` : ''}`,
    old
      ? `5. delete the old agent token ${old.name} (${old.id}${old.state === 'live' ? '' : `, already ${old.state}`})`
      : `5. the Secret names no token re-bot created: nothing is deleted (delete the pasted token in the Astro UI yourself)`,
    'a failure before step 5 leaves the old token working',
  ];
  return { newToken, old, lines };
}

/** 1. Plan, one approval for the whole rotation, then create the new token (its value is sealed for step 2). */
export const tokenCreate: StepHandler = {
  id: 'token-create',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    let approved = ctx.checkpoint.get<Approved>('approved');
    if (!approved) {
      const p = await planRotation(ctx);
      const urls = tokenUrls(ctx);
      const hash = createHash('sha256').update(JSON.stringify(['rotate-token', ...p.lines, ...urls])).digest('hex');
      const ns = spec.cluster.namespace;
      const secret = secretNames(spec).agentToken;
      const grant = await ctx.requireApproval({
        title: `rotate the agent token of ${spec.deployment.name}`,
        hash,
        diffText: [...p.lines, '', 'tokens are sent to:', ...urls.map((u) => `  ${u}`)].join('\n'),
        changedKeys: [
          `agent token ${p.newToken.name} (create)`,
          `Secret/${ns}/${secret} (update)`,
          ...agentComponents(spec).map((c) => `Deployment/${ns}/${c} (rollout restart)`),
          ...(p.old ? [`agent token ${p.old.name} (delete)`] : []),
        ],
        facts: {
          'new token': `${p.newToken.name} (${p.newToken.expiresInDays ? `expires in ${p.newToken.expiresInDays} days` : 'never expires'})`,
          'old token': p.old ? `${p.old.name} (${p.old.id}), deleted last` : 'none recorded: not deleted',
          secret: `${ns}/${secret}`,
          release: `${spec.cluster.release} in ${ns}`,
        },
      });
      approved = { newToken: p.newToken, ...(p.old ? { old: p.old } : {}), approvedBy: grant.approvedBy };
      // from here on the approved rotation is carried out, also after a crash: it is never planned (or asked) again
      ctx.checkpoint.set('approved', approved);
    }
    const created = await createAgentTokenOnce(ctx, KEY, approved.newToken);
    const out: Created = { newToken: recordOf(created), planned: approved.newToken, ...(created.sealed ? { sealed: created.sealed } : {}), ...(approved.old ? { old: approved.old } : {}) };
    return {
      status: 'succeeded',
      summary: `created agent token ${created.name} (${created.id}${created.endAt ? `, expires ${created.endAt}` : ', never expires'}); approved by ${approved.approvedBy.join(', ')}`,
      output: { ...out, approvedBy: approved.approvedBy },
    };
  },
};

/** 2. The new token's value (sealed by step 1) into the Secret; the sealed copy is erased. */
export const tokenSecret: StepHandler = {
  id: 'token-secret',
  async run(ctx): Promise<StepOutcome> {
    const c = outputOf<Created>(ctx, 'token-create');
    const w = await writeAgentTokenSecret(ctx, KEY, c.planned, { ...c.newToken, ...(c.sealed ? { sealed: c.sealed } : {}) });
    const replaced = w.token.id !== c.newToken.id ? ` (token ${c.newToken.id} lost its value before it was written and was replaced)` : '';
    return {
      status: 'succeeded',
      summary: `Secret ${ctx.spec.cluster.namespace}/${secretNames(ctx.spec).agentToken} holds agent token ${w.token.name} (${w.token.id})${replaced}`,
      output: { agentToken: w.token },
    };
  },
};

/** 3. A rollout restart of every agent Deployment, marked with the new token's id; waits for the new pods. */
export const tokenRoll: StepHandler = {
  id: 'token-roll',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const { kube } = ctx.infra;
    const token = outputOf<{ agentToken: AgentTokenRecord }>(ctx, 'token-secret').agentToken;
    if (!kube.restartDeployments || !kube.deploymentRollouts) throw new StepFailure('this Kubernetes adapter cannot restart Deployments');
    const ns = spec.cluster.namespace;
    const comps = agentComponents(spec);
    ctx.progress(`rollout restart of ${comps.join(', ')}`);
    try {
      await kube.restartDeployments(ns, comps, { release: spec.cluster.release, annotation: TOKEN_ID_ANNOTATION, value: token.id }, { signal: ctx.signal });
    } catch (err) {
      if ((err as { code?: string }).code === 'not_found') throw new StepFailure(`${(err as Error).message}: the agents are not installed as planned; run the setup first`);
      throw err;
    }
    const timeoutMs = (spec.agent.readyTimeoutSeconds ?? 300) * 1000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (ctx.signal.aborted) throw new StepFailure('cancelled while waiting for the agents to roll');
      const states = await kube.deploymentRollouts(ns, comps, { signal: ctx.signal });
      const waiting = comps.filter((c) => {
        const s = states.find((x) => x.name === c);
        return !s || s.templateAnnotations[TOKEN_ID_ANNOTATION] !== token.id || s.observedGeneration < s.generation || s.updatedReplicas < s.replicas || s.readyReplicas < s.replicas;
      });
      ctx.progress(`agents rolled: ${comps.length - waiting.length}/${comps.length}${waiting.length ? ` (waiting for ${waiting.join(', ')})` : ''}`);
      if (!waiting.length) break;
      // a new pod that cannot start never finishes the rollout: say why now, not at the timeout
      for (const pod of await kube.listPods(ns, undefined, { signal: ctx.signal })) {
        const c = waiting.find((w) => pod.name.startsWith(`${w}-`));
        const stuck = pod.waitingReason && /ImagePullBackOff|InvalidImageName|CreateContainerConfigError/.test(pod.waitingReason);
        if (c && (stuck || (pod.waitingReason === 'CrashLoopBackOff' && pod.restarts >= 3))) {
          const f = await podFailure(ctx, pod, c);
          throw new StepFailure(`${f.message}; the old token still works (it is deleted only after a successful rotation)`, f.details);
        }
      }
      if (Date.now() > deadline) throw new StepFailure(`agents not rolled after ${Math.round(timeoutMs / 1000)}s: ${waiting.join(', ')}; the old token still works`);
      await sleep(500, ctx.signal);
    }
    const pods = await waitForAgentPods(ctx, timeoutMs);
    return {
      status: 'succeeded',
      summary: `${comps.length} agent Deployments restarted with token ${token.name}; Ready`,
      output: { restarted: comps, pods: pods.components },
    };
  },
};

/** 4. Pods Ready and (when configured) a test DAG run through the Airflow API: the new token works. */
export const tokenVerify: StepHandler = {
  id: 'token-verify',
  async run(ctx): Promise<StepOutcome> {
    if (ctx.spec.verify.enabled) return verify.run(ctx);
    const pods = await waitForAgentPods(ctx, (ctx.spec.verify.podsTimeoutSeconds ?? 120) * 1000);
    return { status: 'succeeded', summary: 'agent pods Ready (verify.enabled is false: no test DAG run)', output: { pods: pods.components } };
  },
};

/** 5. Only now: delete the old token. A token already gone counts as deleted. */
export const tokenDeleteOld: StepHandler = {
  id: 'token-delete-old',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const { old } = outputOf<Created>(ctx, 'token-create');
    const token = outputOf<{ agentToken: AgentTokenRecord }>(ctx, 'token-secret').agentToken;
    if (!old) {
      return {
        status: 'warned',
        summary: `the agents use ${token.name}; no old token was recorded, so none was deleted`,
        warnings: ['the previous agent token was not created by re-bot (or its id was not recorded): delete it in the Astro UI once you are sure nothing else uses it'],
        output: { agentToken: token },
      };
    }
    if (old.id === token.id) return { status: 'succeeded', summary: `the agents already use ${token.name}; nothing to delete`, output: { agentToken: token } };
    const r = await astroTokensOf(ctx).deleteAgentToken(spec.deployment.organizationId, spec.deployment.id, old.id, { signal: ctx.signal });
    ctx.audit?.('agent-token.deleted', { tokenId: old.id, name: old.name, result: r });
    return {
      status: 'succeeded',
      summary: `deleted the old agent token ${old.name} (${old.id}${r === 'gone' ? ', already gone' : ''}); the agents use ${token.name}`,
      output: { agentToken: token, deletedAgentToken: { id: old.id, name: old.name } },
    };
  },
};

export const ROTATE_TOKEN_HANDLERS: StepHandler[] = [tokenCreate, tokenSecret, tokenRoll, tokenVerify, tokenDeleteOld];
