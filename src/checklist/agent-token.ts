/**
 * Agent tokens re-bot creates through the Astro API (`agent.token: { create: … }`). The value is returned once:
 * it goes straight into the agent-token Secret and nowhere else. Between the create call and the Secret write it
 * is sealed (src/store/crypto.ts) under an id kept in the step's checkpoint, so a step killed in between writes
 * the same token on resume instead of creating a second one. When the value was lost anyway (killed before it
 * was sealed, or the sealed copy erased) the orphaned token is deleted and a new one created: a token nobody can
 * present is only a slot used up of the Deployment's 50.
 * The Secret carries the token's id and expiry as annotations: the next plan reads them to tell a live token
 * (left alone) from a deleted or expired one (replaced).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import { foreignSecretMessage, type PreparedSecret } from './secrets.ts';
import { DEPLOYMENT_ANNOTATION, ownerMeta, ownerOf } from '../infra/ownership.ts';
import type { AgentToken, AstroTokensClient } from '../infra/astro-tokens.ts';
import type { SecretInfo } from '../infra/types.ts';
import { createsAgentToken } from '../spec/schema.ts';
import { secretNames } from '../spec/values.ts';
export { expiryText, EXPIRY_WARNING_DAYS } from '../store/agent-tokens.ts';

export const TOKEN_ID_ANNOTATION = 're-bot.astronomer.io/agent-token-id';
export const TOKEN_END_ANNOTATION = 're-bot.astronomer.io/agent-token-end-at';
/** A token to create: what the approver sees. */
export interface NewAgentToken {
  name: string;
  /** absent: never expires */
  expiresInDays?: number;
}

/** What is recorded about a token (never its value). */
export interface AgentTokenRecord {
  id: string;
  name: string;
  endAt?: string;
}

/** A created token whose value has not reached the Secret yet; `sealed`: the id of its sealed value. */
interface InFlight extends AgentTokenRecord {
  sealed?: string;
}

export function astroTokensOf(ctx: StepContext): AstroTokensClient {
  const c = ctx.infra.astroTokens;
  if (!c) {
    throw new StepFailure('agent.token asks re-bot to create the agent token, but no Astro API client is configured', {
      field: 'agent.token',
      hint: 'set deployment.astroApiUrl and deployment.apiToken (a Deployment Admin API token), or paste a token with agent.token: { env: NAME }',
    });
  }
  return c;
}

/** `re-bot-<deployment>-<YYYY-MM-DD>`, the date fixed at the first plan of this step (a plan after midnight asks for the same name). */
export async function newAgentToken(ctx: StepContext, key: string, expiresInDays: number | undefined): Promise<NewAgentToken> {
  const date = await ctx.checkpoint.once(`${key}.date`, () => new Date().toISOString().slice(0, 10));
  return { name: `re-bot-${ctx.spec.deployment.name}-${date}`, ...(expiresInDays ? { expiresInDays } : {}) };
}

export function newTokenText(t: NewAgentToken): string {
  return `create agent token ${t.name} through the Astro API (${t.expiresInDays ? `expires in ${t.expiresInDays} days` : 'never expires'})`;
}

/** The live agent-token Secret (null: none) and the token its annotation names, as the Astro API knows it now. */
export async function currentAgentToken(ctx: StepContext): Promise<{ secret: SecretInfo | null; id?: string; token?: AgentToken; state: 'none' | 'unknown' | 'live' | 'expired' | 'gone' }> {
  const { spec } = ctx;
  const name = secretNames(spec).agentToken;
  const secret = await ctx.infra.kube.readSecret(spec.cluster.namespace, name, { signal: ctx.signal }).catch((err: { code?: string }) => {
    if (err.code === 'not_found') return null;
    throw err;
  });
  if (!secret) return { secret, state: 'none' };
  const owner = ownerOf(secret, spec.deployment.name);
  if (owner !== 'ours') {
    throw new StepFailure(foreignSecretMessage(ctx, name, owner === 'other-deployment' ? secret.annotations[DEPLOYMENT_ANNOTATION] : undefined), { field: 'cluster.resourceNamePrefix' });
  }
  const id = secret.annotations[TOKEN_ID_ANNOTATION];
  if (!id) return { secret, state: 'unknown' };
  const tokens = await astroTokensOf(ctx).listAgentTokens(spec.deployment.organizationId, spec.deployment.id, { signal: ctx.signal });
  const token = tokens.find((t) => t.id === id);
  if (!token) return { secret, id, state: 'gone' };
  const expired = token.endAt !== undefined && Date.parse(token.endAt) <= Date.now();
  return { secret, id, token, state: expired ? 'expired' : 'live' };
}

/**
 * Step 2's plan of the agent-token Secret when re-bot creates the token: left alone while the token it holds is
 * live, otherwise a new token is created and written. Reads only.
 */
export async function planCreatedAgentToken(ctx: StepContext): Promise<PreparedSecret> {
  const create = createsAgentToken(ctx.spec)!;
  const ns = ctx.spec.cluster.namespace;
  const name = secretNames(ctx.spec).agentToken;
  const cur = await currentAgentToken(ctx);
  if (cur.state === 'live' && cur.token) {
    return { kind: 'agent-token', namespace: ns, name, type: 'Opaque', keys: ['token'], hash: cur.secret!.contentHash, action: 'unchanged', token: recordOf(cur.token) };
  }
  const t = await newAgentToken(ctx, 'install.agentToken', create.expiresInDays);
  // the content is not known before the approval: the hash covers what will be created
  const hash = createHash('sha256').update(JSON.stringify(['new-agent-token', t.name, t.expiresInDays ?? null])).digest('hex');
  return { kind: 'agent-token', namespace: ns, name, type: 'Opaque', keys: ['token'], hash, action: cur.secret ? 'update' : 'create', newToken: t };
}

export const recordOf = (t: AgentToken | AgentTokenRecord): AgentTokenRecord => ({ id: t.id, name: t.name, ...(t.endAt ? { endAt: t.endAt } : {}) });

/**
 * Creates the token, once per `key`: a create interrupted before its answer was checkpointed leaves a token
 * only its description identifies; it is deleted (its value is lost) before the next create.
 */
export async function createAgentTokenOnce(ctx: StepContext, key: string, t: NewAgentToken): Promise<InFlight & { value?: string }> {
  const done = ctx.checkpoint.get<InFlight>(`${key}.token`);
  if (done) return done;
  const astro = astroTokensOf(ctx);
  const { organizationId: org, id: dep } = ctx.spec.deployment;
  const opts = { signal: ctx.signal };
  const interrupted = ctx.checkpoint.get<string>(`${key}.creating`);
  if (interrupted) {
    for (const orphan of (await astro.listAgentTokens(org, dep, opts)).filter((x) => x.description === interrupted)) {
      ctx.progress(`deleting agent token ${orphan.id} (${orphan.name}): an interrupted run created it and its value was never saved`);
      await astro.deleteAgentToken(org, dep, orphan.id, opts);
      ctx.audit?.('agent-token.discarded', { tokenId: orphan.id, name: orphan.name, reason: 'created by an interrupted run; value never saved' });
    }
  }
  const description = `created by re-bot job ${ctx.jobId} (${key} ${randomUUID().slice(0, 8)})`;
  ctx.checkpoint.set(`${key}.creating`, description);
  ctx.progress(newTokenText(t));
  const r = await astro.createAgentToken(org, dep, { name: t.name, description, expiresInDays: t.expiresInDays }, opts);
  const sealed = await ctx.sealSecret?.(r.value, `agent token ${r.token.id} in flight`);
  const rec: InFlight = { ...recordOf(r.token), ...(sealed ? { sealed } : {}) };
  ctx.checkpoint.set(`${key}.token`, rec);
  ctx.audit?.('agent-token.created', { tokenId: rec.id, name: rec.name, endAt: rec.endAt ?? null });
  return { ...rec, value: r.value };
}

/**
 * Writes a created token's value into the agent-token Secret (with its id and expiry as annotations), then erases
 * the sealed copy. A value that cannot be recovered any more: that token is deleted and a new one created.
 */
export async function writeAgentTokenSecret(ctx: StepContext, key: string, t: NewAgentToken, created: InFlight & { value?: string }): Promise<{ token: AgentTokenRecord; action: 'created' | 'updated' | 'unchanged' }> {
  const written = ctx.checkpoint.get<{ token: AgentTokenRecord; action: 'created' | 'updated' | 'unchanged' }>(`${key}.written`);
  if (written) return written;
  let rec = created;
  let value = rec.value ?? (rec.sealed ? await ctx.resolveSecret({ stored: rec.sealed }).catch(() => undefined) : undefined);
  if (!value) {
    const { organizationId: org, id: dep } = ctx.spec.deployment;
    ctx.progress(`agent token ${rec.id} was created but its value was lost before it reached the Secret: deleting it and creating another`);
    await astroTokensOf(ctx).deleteAgentToken(org, dep, rec.id, { signal: ctx.signal });
    ctx.audit?.('agent-token.discarded', { tokenId: rec.id, name: rec.name, reason: 'value lost before it was written' });
    ctx.checkpoint.set(`${key}.token`, undefined);
    ctx.checkpoint.set(`${key}.creating`, undefined);
    rec = await createAgentTokenOnce(ctx, key, t);
    value = rec.value!;
  }
  const { spec } = ctx;
  const ns = spec.cluster.namespace;
  const name = secretNames(spec).agentToken;
  const meta = ownerMeta(spec.deployment.name);
  const annotations = { ...meta.annotations, [TOKEN_ID_ANNOTATION]: rec.id, ...(rec.endAt ? { [TOKEN_END_ANNOTATION]: rec.endAt } : {}) };
  ctx.progress(`writing agent token ${rec.name} into Secret ${ns}/${name}`);
  let action: 'created' | 'updated' | 'unchanged';
  try {
    action = (await ctx.infra.kube.applySecret({ namespace: ns, name, type: 'Opaque', stringData: { token: value }, labels: meta.labels, annotations, ownedBy: spec.deployment.name }, { signal: ctx.signal })).action;
  } catch (err) {
    if ((err as { code?: string }).code === 'conflict') throw new StepFailure(foreignSecretMessage(ctx, name), { field: 'cluster.resourceNamePrefix' });
    throw err;
  }
  const result = { token: recordOf(rec), action };
  ctx.checkpoint.set(`${key}.written`, result);
  if (rec.sealed) await ctx.eraseSecret?.(rec.sealed);
  return result;
}
