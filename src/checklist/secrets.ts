/**
 * The Kubernetes Secrets the agents reference. Steps 2, 5 and 6 *prepare* theirs during the plan phase (name,
 * type, key names, content hash: never a value) and step 2 writes all of them after its approval. The data
 * is built from the spec's secret references each time it is needed and never stored.
 */
import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import { registerSecret } from '../redact.ts';
import { gitConnectionValue, OPENLINEAGE_KEY, secretNames } from '../spec/values.ts';
import { DEPLOYMENT_ANNOTATION, ownerOf, secretContentHash } from '../infra/ownership.ts';

export type SecretKind = 'agent-token' | 'pull-secret' | 'git-connection' | 'openlineage';

/** Safe to store, show and hash into an approval. */
export interface PreparedSecret {
  kind: SecretKind;
  namespace: string;
  name: string;
  type: string;
  keys: string[];
  /** secretContentHash of the data */
  hash: string;
  /** against the live cluster when planned */
  action: 'create' | 'update' | 'unchanged';
  /** agent-token Secret only: a token re-bot creates through the Astro API after the approval (src/checklist/agent-token.ts) */
  newToken?: { name: string; expiresInDays?: number };
  /** agent-token Secret only: the live token it holds, when re-bot created it */
  token?: { id: string; name: string; endAt?: string };
}

/** Key of a step output listing the PreparedSecrets step 2 writes for it. */
export const PREPARED_SECRETS = 'preparedSecrets';

interface SecretData {
  kind: SecretKind;
  name: string;
  type: string;
  stringData: Record<string, string>;
}

/** Builds the data of one Secret from the spec's secret references (values stay in memory). */
export async function secretData(ctx: StepContext, kind: SecretKind): Promise<SecretData> {
  const { spec } = ctx;
  const names = secretNames(spec);
  switch (kind) {
    case 'agent-token': {
      const ref = spec.agent.token;
      // a token re-bot creates is written by src/checklist/agent-token.ts, straight from the API's answer
      if ('create' in ref) throw new StepFailure('the agent token is created through the Astro API; it has no secret reference to read', { field: 'agent.token' });
      return { kind, name: names.agentToken, type: 'Opaque', stringData: { token: await ctx.resolveSecret(ref) } };
    }
    case 'pull-secret': {
      const registry = spec.agent.imagePullRegistry;
      const user = spec.agent.imagePullUsername;
      const password = await ctx.resolveSecret(spec.agent.imagePullToken ?? spec.deployment.apiToken);
      // the dockerconfigjson `auth` field is base64 of user:password, a form the plain value's variants do not cover
      registerSecret(password, { scope: ctx.jobId, variantsWith: [`${user}:`] });
      const dockerconfig = JSON.stringify({ auths: { [registry]: { username: user, password, auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
      return { kind, name: names.pullSecret, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': dockerconfig } };
    }
    case 'git-connection': {
      const s = spec.dagSource;
      if (s.type !== 'git' || !s.credentials || !names.gitConnectionEnv) throw new StepFailure('the Git connection Secret needs dagSource.type git with credentials', { field: 'dagSource.credentials' });
      const username = await ctx.resolveSecret(s.credentials.username);
      const token = await ctx.resolveSecret(s.credentials.token);
      return { kind, name: names.gitConnection, type: 'Opaque', stringData: { [names.gitConnectionEnv]: gitConnectionValue(s.repoUrl, username, token) } };
    }
    case 'openlineage':
      return { kind, name: names.openLineage, type: 'Opaque', stringData: { [OPENLINEAGE_KEY]: await ctx.resolveSecret(spec.openLineage.apiKey ?? spec.deployment.apiToken) } };
  }
}

export function foreignSecretMessage(ctx: StepContext, name: string, other?: string): string {
  const { namespace } = ctx.spec.cluster;
  return `Secret ${namespace}/${name} exists and was not created by re-bot for deployment ${ctx.spec.deployment.name}${other ? ` (re-bot created it for deployment ${other})` : ''}; delete it, or choose another cluster.resourceNamePrefix`;
}

/**
 * Reads the live Secret (never changing it) and says what applying `kind` will do. A Secret of the same name
 * that re-bot did not create for this deployment fails the plan, naming it.
 */
export async function planSecret(ctx: StepContext, kind: SecretKind): Promise<PreparedSecret> {
  const d = await secretData(ctx, kind);
  const { namespace } = ctx.spec.cluster;
  const hash = secretContentHash(d.type, d.stringData);
  const live = await ctx.infra.kube.readSecret(namespace, d.name, { signal: ctx.signal }).catch((err: { code?: string }) => {
    // no namespace yet (step 2 creates it) reads as "no Secret"
    if (err.code === 'not_found') return null;
    throw err;
  });
  if (live) {
    const owner = ownerOf(live, ctx.spec.deployment.name);
    if (owner !== 'ours') {
      throw new StepFailure(foreignSecretMessage(ctx, d.name, owner === 'other-deployment' ? live.annotations[DEPLOYMENT_ANNOTATION] : undefined), { field: 'cluster.resourceNamePrefix' });
    }
  }
  const action = !live ? 'create' : live.contentHash === hash && live.type === d.type && live.annotations[DEPLOYMENT_ANNOTATION] === ctx.spec.deployment.name ? 'unchanged' : 'update';
  return { kind, namespace, name: d.name, type: d.type, keys: Object.keys(d.stringData).sort(), hash, action };
}

/** One line of a plan / approval diff: everything about the change but the value. */
export function secretLine(s: PreparedSecret): string {
  if (s.newToken) {
    return `create agent token ${s.newToken.name} through the Astro API (${s.newToken.expiresInDays ? `expires in ${s.newToken.expiresInDays} days` : 'never expires'}); Secret ${s.namespace}/${s.name} (${s.type}, key ${s.keys.join(', ')}, the new token's value): ${s.action}`;
  }
  if (s.token) return `Secret ${s.namespace}/${s.name} (${s.type}, key ${s.keys.join(', ')}, agent token ${s.token.name}${s.token.endAt ? `, expires ${s.token.endAt}` : ''}): ${s.action}`;
  return `Secret ${s.namespace}/${s.name} (${s.type}, key${s.keys.length === 1 ? '' : 's'} ${s.keys.join(', ')}, content sha256:${s.hash}): ${s.action}`;
}
