/**
 * Astro API v1 agent tokens: create, list, delete (`/organizations/{org}/deployments/{dep}/agent-tokens`).
 * Shapes per the v1 spec (`CreateAgentTokenRequest`, `ApiToken`, `ApiTokensPaginated`); the token value is in
 * the create answer only, so `create` registers it with the redactor before anything can print it.
 * Errors name the API's `message` and `requestId`.
 */
import { z } from 'zod';
import { RedactedError, registerSecret } from '../redact.ts';
import { ASTRO_API_URL } from './astro.ts';
import { astroErrorText } from './astro-deploys.ts';
import { DEFAULT_TIMEOUT_MS, checkBody, fetchWithDeadline, hostOf } from './probe.ts';
import type { CallOptions } from './types.ts';

const SERVICE = 'Astro API';
/** the Astro limit of agent tokens per Deployment */
export const MAX_AGENT_TOKENS = 50;
/** the API's page size cap (ListAgentTokens `limit` max 1000) */
const PAGE = 1000;

export interface AgentToken {
  id: string;
  name: string;
  description?: string;
  shortToken?: string;
  startAt?: string;
  /** absent: the token never expires */
  endAt?: string;
  expiryPeriodInDays?: number;
  createdAt?: string;
}

export interface CreateAgentTokenInput {
  name: string;
  description?: string;
  /** 1..3650; omitted: never expires */
  expiresInDays?: number;
}

export interface AstroTokensClient {
  /** `value` is the secret: returned once by the API, registered with the redactor, never logged */
  createAgentToken(organizationId: string, deploymentId: string, input: CreateAgentTokenInput, opts?: CallOptions): Promise<{ token: AgentToken; value: string }>;
  listAgentTokens(organizationId: string, deploymentId: string, opts?: CallOptions): Promise<AgentToken[]>;
  /** `gone`: the API answered 404 (already deleted) */
  deleteAgentToken(organizationId: string, deploymentId: string, tokenId: string, opts?: CallOptions): Promise<'deleted' | 'gone'>;
}

export interface AstroTokensClientOptions {
  baseUrl?: string;
  token: string;
  timeoutMs?: number;
}

const opt = z.string().nullish().transform((v) => v ?? undefined);
const ApiToken = z.object({
  id: z.string().min(1),
  name: z.string(),
  description: opt,
  shortToken: opt,
  startAt: opt,
  endAt: opt,
  expiryPeriodInDays: z.number().int().nullish().transform((v) => v ?? undefined),
  createdAt: opt,
  token: opt,
});
const Paginated = z.object({ tokens: z.array(ApiToken), totalCount: z.number().int().optional(), offset: z.number().int().optional(), limit: z.number().int().optional() });

function toToken(t: z.infer<typeof ApiToken>): AgentToken {
  const out: AgentToken = { id: t.id, name: t.name };
  for (const k of ['description', 'shortToken', 'startAt', 'endAt', 'expiryPeriodInDays', 'createdAt'] as const) {
    if (t[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = t[k];
  }
  return out;
}

export function createAstroTokensClient(options: AstroTokensClientOptions): AstroTokensClient {
  if (!options.token) throw new RedactedError('Astro API token is empty; expected a Deployment, Workspace or Organization API token', 'invalid_config');
  registerSecret(options.token);
  const root = (options.baseUrl ?? ASTRO_API_URL).trim().replace(/\/+$/, '').replace(/\/v1$/, '');
  const host = hostOf(root);

  async function call(method: string, path: string, action: string, body: unknown, opts: CallOptions, ok: number[] = [200]): Promise<{ status: number; json: unknown }> {
    const url = new URL(`${root}/v1${path}`);
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetchWithDeadline(
      url,
      { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) },
      { timeoutMs: opts.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, service: `${SERVICE} (${action})` },
    );
    if (!ok.includes(res.status)) {
      const said = `HTTP ${res.status}: ${astroErrorText(res.text)}`;
      const code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status === 404 ? 'not_found' : res.status >= 500 ? 'server_error' : 'http_error';
      const what = {
        unauthorized: 'the Deployment API token is invalid or expired',
        forbidden: 'the Deployment API token lacks the agent-token permissions (deployment.agentTokens.*); use a Deployment Admin or Workspace/Organization API token',
        not_found: 'not found; check deployment.organizationId and deployment.id',
        server_error: 'a server-side problem; retry later',
        http_error: 'the request was refused',
      }[code];
      throw new RedactedError(`${SERVICE} at ${host} failed ${action} (${said}): ${what}`, code);
    }
    if (res.status === 204 || !res.text) return { status: res.status, json: undefined };
    try {
      return { status: res.status, json: JSON.parse(res.text) };
    } catch {
      throw new RedactedError(`${SERVICE} at ${host} answered ${action} with HTTP ${res.status} but the body is not JSON`, 'bad_response');
    }
  }

  const base = (org: string, dep: string) => {
    if (!org) throw new RedactedError('Astro organization id is empty', 'invalid_request');
    if (!dep) throw new RedactedError('Astro deployment id is empty', 'invalid_request');
    return `/organizations/${encodeURIComponent(org)}/deployments/${encodeURIComponent(dep)}/agent-tokens`;
  };

  return {
    async createAgentToken(org, dep, input, opts = {}) {
      if (input.expiresInDays !== undefined && !(Number.isInteger(input.expiresInDays) && input.expiresInDays >= 1 && input.expiresInDays <= 3650)) {
        throw new RedactedError(`agent token expiry must be a whole number of days from 1 to 3650, got ${input.expiresInDays}`, 'invalid_request');
      }
      const action = `creating agent token "${input.name}" for Deployment "${dep}"`;
      const body = { name: input.name, ...(input.description ? { description: input.description } : {}), ...(input.expiresInDays ? { tokenExpiryPeriodInDays: input.expiresInDays } : {}) };
      const { json } = await call('POST', base(org, dep), action, body, opts);
      const created = checkBody(json, ApiToken, { service: SERVICE, host, action });
      const value = created.token;
      if (value) registerSecret(value);
      // the value exists only in this answer: without it the token is useless and must not linger
      if (!value) throw new RedactedError(`${SERVICE} at ${host} created agent token ${created.id} but returned no token value; delete it in the Astro UI and retry`, 'bad_response');
      return { token: toToken(created), value };
    },
    async listAgentTokens(org, dep, opts = {}) {
      const out: AgentToken[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const action = `listing agent tokens of Deployment "${dep}"`;
        const { json } = await call('GET', `${base(org, dep)}?offset=${offset}&limit=${PAGE}`, action, undefined, opts);
        const page = checkBody(json, Paginated, { service: SERVICE, host, action });
        out.push(...page.tokens.map(toToken));
        const total = page.totalCount ?? out.length;
        if (page.tokens.length === 0 || out.length >= total) return out;
      }
    },
    async deleteAgentToken(org, dep, tokenId, opts = {}) {
      if (!tokenId) throw new RedactedError('agent token id is empty', 'invalid_request');
      const action = `deleting agent token ${tokenId} of Deployment "${dep}"`;
      try {
        await call('DELETE', `${base(org, dep)}/${encodeURIComponent(tokenId)}`, action, undefined, opts, [200, 204]);
        return 'deleted';
      } catch (err) {
        if ((err as { code?: string }).code === 'not_found') return 'gone';
        throw err;
      }
    },
  };
}
