/**
 * Astro API v1 client for deploying a server image the way `astro deploy` does for a Remote Execution
 * Deployment: read the Deployment (image repository, runtime, DAG deploy), list deployment options (runtime
 * releases), create a deploy, finalize it, and poll the deploy and the Deployment's status.
 * Paths, bodies and field names per the v1 spec (Deploy, CreateDeployRequest, FinalizeDeployRequest,
 * DeploymentOptions); see docs in README step 7. Errors name the API's `message` and `requestId`.
 */
import { z } from 'zod';
import { RedactedError, registerSecret } from '../redact.ts';
import { DEFAULT_TIMEOUT_MS, fetchWithDeadline, hostOf, parseBody } from './probe.ts';
import { ASTRO_API_URL } from './astro.ts';
import type { CallOptions } from './types.ts';

const SERVICE = 'Astro API';
const optionalString = z.string().nullish().transform((v) => v ?? undefined);

export type DeployType = 'IMAGE_AND_DAG' | 'IMAGE_ONLY' | 'DAG_ONLY';

/** What the server-image deploy needs from `GET /organizations/{org}/deployments/{id}`. */
export interface DeployTarget {
  id: string;
  runtimeVersion?: string;
  isDagDeployEnabled: boolean;
  isCicdEnforced: boolean;
  imageRepository: string;
  status?: string;
  remoteExecutionEnabled: boolean;
}

export interface AstroDeploy {
  id: string;
  deploymentId: string;
  imageRepository: string;
  imageTag: string;
  isDagDeployEnabled: boolean;
  status: string;
  type: string;
  createdAt?: string;
  description?: string;
  dagTarballVersion?: string;
}

export interface FinalizeDeployRequest {
  dagTarballVersion?: string;
}

export interface AstroDeploysClient {
  getDeployTarget(organizationId: string, deploymentId: string, opts?: CallOptions): Promise<DeployTarget>;
  /** `runtimeReleases[].version` of `GET /organizations/{org}/deployment-options` */
  runtimeReleases(organizationId: string, opts?: CallOptions): Promise<string[]>;
  createDeploy(organizationId: string, deploymentId: string, body: { type: DeployType; description?: string }, opts?: CallOptions): Promise<AstroDeploy>;
  getDeploy(organizationId: string, deploymentId: string, deployId: string, opts?: CallOptions): Promise<AstroDeploy>;
  listDeploys(organizationId: string, deploymentId: string, opts?: CallOptions & { limit?: number }): Promise<AstroDeploy[]>;
  finalizeDeploy(organizationId: string, deploymentId: string, deployId: string, body: FinalizeDeployRequest, opts?: CallOptions): Promise<AstroDeploy>;
}

export interface AstroDeploysOptions {
  baseUrl?: string;
  token: string;
  timeoutMs?: number;
}

const DeploymentBody = z.object({
  id: z.string().min(1),
  runtimeVersion: optionalString,
  astroRuntimeVersion: optionalString,
  isDagDeployEnabled: z.boolean().nullish(),
  isCicdEnforced: z.boolean().nullish(),
  imageRepository: z.string({ error: 'expected the Deployment image repository' }).min(1, { error: 'expected the Deployment image repository' }),
  status: optionalString,
  remoteExecution: z.object({ enabled: z.boolean() }).passthrough().nullish(),
});

const DeployBody = z.object({
  id: z.string().min(1),
  deploymentId: z.string().min(1),
  imageRepository: z.string(),
  imageTag: z.string(),
  isDagDeployEnabled: z.boolean(),
  status: z.string(),
  type: z.string(),
  createdAt: optionalString,
  description: optionalString,
  dagTarballVersion: optionalString,
});

const OptionsBody = z.object({
  runtimeReleases: z.array(z.object({ version: z.string() }).passthrough()),
});

const DeploysPage = z.object({ deploys: z.array(DeployBody) });

/** `{message, requestId}` of an Astro error body, as "message (request id X)"; the raw text otherwise. */
export function astroErrorText(text: string): string {
  try {
    const b = JSON.parse(text) as { message?: unknown; requestId?: unknown };
    const msg = typeof b.message === 'string' ? b.message : '';
    const rid = typeof b.requestId === 'string' ? ` (request id ${b.requestId})` : '';
    if (msg || rid) return `${msg || 'no message'}${rid}`;
  } catch {
    /* not JSON */
  }
  return text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** What a user can do about each status. */
function advice(status: number, what: string): { hint: string; code: string } {
  if (status === 401) return { code: 'unauthorized', hint: 'the API token is invalid or expired: create a new Deployment, Workspace or Organization API token and update deployment.apiToken' };
  if (status === 403) return { code: 'forbidden', hint: `the API token lacks the permission for ${what}: give it a role that can deploy (e.g. Deployment Admin), or use an API token when the Deployment enforces CI/CD` };
  if (status === 404) return { code: 'not_found', hint: 'check deployment.organizationId and deployment.id' };
  if (status === 400 || status === 409 || status === 422) return { code: 'rejected', hint: 'fix what the message names and retry the job' };
  if (status === 429) return { code: 'rate_limited', hint: 'the Astro API is rate limiting; retry the job in a minute' };
  if (status >= 500) return { code: 'server_error', hint: 'a server-side problem at Astro; retry the job later' };
  return { code: 'http_error', hint: 'retry the job; if it persists, contact Astronomer support with the request id' };
}

function normaliseBase(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new RedactedError(`Astro API URL "${input}" is not a valid URL; expected e.g. ${ASTRO_API_URL}`, 'invalid_config');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '')}`;
}

export function createAstroDeploysClient(options: AstroDeploysOptions): AstroDeploysClient {
  const root = normaliseBase(options.baseUrl ?? ASTRO_API_URL);
  if (!options.token) throw new RedactedError('Astro API token is empty; expected a Deployment, Workspace or Organization API token', 'invalid_config');
  registerSecret(options.token);
  const host = hostOf(root);
  const seg = (s: string, name: string) => {
    if (!s) throw new RedactedError(`Astro ${name} is empty`, 'invalid_request');
    return encodeURIComponent(s);
  };

  async function call<T>(method: 'GET' | 'POST', path: string, action: string, schema: z.ZodType<T>, body: unknown, opts: CallOptions = {}): Promise<T> {
    const url = new URL(`${root}/v1${path}`);
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json', 'x-astro-client-identifier': 're-bot' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetchWithDeadline(
      url,
      { method, headers, body: body === undefined ? undefined : JSON.stringify(body) },
      { timeoutMs: opts.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, service: `${SERVICE} (${action})` },
    );
    if (res.status !== 200 && res.status !== 204) {
      const a = advice(res.status, action);
      throw new RedactedError(`${SERVICE} at ${host} refused ${action}: HTTP ${res.status}: ${astroErrorText(res.text)}; ${a.hint}`, a.code);
    }
    return parseBody(res.text, res.status, schema, { service: SERVICE, host, action });
  }

  const deployOf = (d: z.output<typeof DeployBody>): AstroDeploy => {
    const out: AstroDeploy = { id: d.id, deploymentId: d.deploymentId, imageRepository: d.imageRepository, imageTag: d.imageTag, isDagDeployEnabled: d.isDagDeployEnabled, status: d.status, type: d.type };
    if (d.createdAt) out.createdAt = d.createdAt;
    if (d.description) out.description = d.description;
    if (d.dagTarballVersion !== undefined) out.dagTarballVersion = d.dagTarballVersion;
    return out;
  };
  const deploymentPath = (org: string, dep: string) => `/organizations/${seg(org, 'organization id')}/deployments/${seg(dep, 'deployment id')}`;

  return {
    async getDeployTarget(org, dep, opts) {
      const d = await call('GET', deploymentPath(org, dep), `reading Deployment "${dep}"`, DeploymentBody, undefined, opts);
      const out: DeployTarget = {
        id: d.id,
        isDagDeployEnabled: d.isDagDeployEnabled ?? false,
        isCicdEnforced: d.isCicdEnforced ?? false,
        imageRepository: d.imageRepository,
        remoteExecutionEnabled: d.remoteExecution?.enabled === true,
      };
      const runtime = d.runtimeVersion ?? d.astroRuntimeVersion;
      if (runtime) out.runtimeVersion = runtime;
      if (d.status) out.status = d.status;
      return out;
    },
    async runtimeReleases(org, opts) {
      const o = await call('GET', `/organizations/${seg(org, 'organization id')}/deployment-options`, 'reading deployment options', OptionsBody, undefined, opts);
      return o.runtimeReleases.map((r) => r.version);
    },
    async createDeploy(org, dep, body, opts) {
      const d = await call('POST', `${deploymentPath(org, dep)}/deploys`, `creating a deploy for Deployment "${dep}"`, DeployBody, body, opts);
      if (!d.imageTag || !d.imageRepository) {
        throw new RedactedError(`${SERVICE} at ${host} created deploy ${d.id} without an image repository or tag; nothing can be pushed (retry the job; if it persists, contact Astronomer support)`, 'bad_response');
      }
      return deployOf(d);
    },
    async getDeploy(org, dep, id, opts) {
      return deployOf(await call('GET', `${deploymentPath(org, dep)}/deploys/${seg(id, 'deploy id')}`, `reading deploy ${id}`, DeployBody, undefined, opts));
    },
    async listDeploys(org, dep, opts) {
      const page = await call('GET', `${deploymentPath(org, dep)}/deploys?limit=${opts?.limit ?? 20}`, `listing deploys of Deployment "${dep}"`, DeploysPage, undefined, opts);
      return page.deploys.map(deployOf);
    },
    async finalizeDeploy(org, dep, id, body, opts) {
      return deployOf(await call('POST', `${deploymentPath(org, dep)}/deploys/${seg(id, 'deploy id')}/finalize`, `finalizing deploy ${id}`, DeployBody, body, opts));
    },
  };
}

/** The body `astro deploy` sends to finalize an image deploy on a Remote Execution Deployment (no DAG upload). */
export function finalizeBody(isDagDeployEnabled: boolean): FinalizeDeployRequest {
  return isDagDeployEnabled ? { dagTarballVersion: '' } : {};
}

/** Registry host of an image repository: the text before the first `/` (the CLI's getRegistryToAuth). */
export function registryHostOf(imageRepository: string): string {
  const host = imageRepository.split('/')[0] ?? '';
  if (!host || !imageRepository.includes('/')) throw new RedactedError(`the Deployment's imageRepository "${imageRepository}" has no registry host`, 'bad_response');
  return host;
}
