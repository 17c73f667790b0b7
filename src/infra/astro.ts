/**
 * Astro Platform API v1 client: reads a Deployment to learn its Remote Execution API URL
 * (`remoteExecution.remoteApiUrl`, the chart's `astroDeploymentAPIURL`) and its Airflow API URL.
 * Schema per the public v1 spec (Deployment, DeploymentRemoteExecution).
 */
import { z } from 'zod';
import { RedactedError, registerSecret } from '../redact.ts';
import { DEFAULT_TIMEOUT_MS, errorDetail, fetchWithDeadline, hostOf, parseBody } from './probe.ts';
import type { AstroClient, AstroDeployment, CallOptions } from './types.ts';

export interface AstroClientOptions {
  baseUrl?: string;
  token: string;
  timeoutMs?: number;
}

export const ASTRO_API_URL = 'https://api.astronomer.io';
const SERVICE = 'Astro API';

const optionalString = z.string().nullish().transform((v) => v ?? undefined);

const DeploymentBody = z.object({
  id: z.string().min(1),
  name: optionalString,
  namespace: optionalString,
  workspaceId: optionalString,
  runtimeVersion: optionalString,
  astroRuntimeVersion: optionalString,
  webServerAirflowApiUrl: optionalString,
  remoteExecution: z
    .object({
      enabled: z.boolean(),
      remoteApiUrl: optionalString,
      allowedIpAddressRanges: z.array(z.string()).nullish().transform((v) => v ?? undefined),
      taskLogBucket: optionalString,
      taskLogUrlPattern: optionalString,
    })
    .nullish(),
  environmentVariables: z
    .array(z.object({ key: z.string(), value: z.string().nullish(), isSecret: z.boolean().nullish() }))
    .nullish(),
});

function normaliseBase(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw new RedactedError(`Astro API URL "${input}" is not a valid URL; expected e.g. ${ASTRO_API_URL}`, 'invalid_config');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RedactedError(`Astro API URL "${input}" must use http or https`, 'invalid_config');
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '')}`;
}

function drop<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function createAstroClient(options: AstroClientOptions): AstroClient {
  const root = normaliseBase(options.baseUrl ?? ASTRO_API_URL);
  if (!options.token) throw new RedactedError('Astro API token is empty; expected a Deployment, Workspace or Organization API token', 'invalid_config');
  registerSecret(options.token);
  const host = hostOf(root);

  async function getDeployment(organizationId: string, deploymentId: string, opts: CallOptions = {}): Promise<AstroDeployment> {
    if (!organizationId) throw new RedactedError('Astro organization id is empty', 'invalid_request');
    if (!deploymentId) throw new RedactedError('Astro deployment id is empty', 'invalid_request');
    const action = `reading Deployment "${deploymentId}"`;
    const url = new URL(`${root}/v1/organizations/${encodeURIComponent(organizationId)}/deployments/${encodeURIComponent(deploymentId)}`);
    const res = await fetchWithDeadline(
      url,
      { method: 'GET', headers: { authorization: `Bearer ${options.token}`, accept: 'application/json' } },
      { timeoutMs: opts.timeoutMs ?? options.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, service: `${SERVICE} (${action})` },
    );
    const detail = res.status >= 300 ? errorDetail(res.text) : '';
    const said = detail ? `: ${detail}` : '';
    switch (true) {
      case res.status === 401:
        throw new RedactedError(`${SERVICE} at ${host}: Deployment API token invalid or lacks access (HTTP 401${said}) while ${action}`, 'unauthorized');
      case res.status === 403:
        throw new RedactedError(
          `${SERVICE} at ${host}: Deployment API token invalid or lacks access to Deployment "${deploymentId}" in organization "${organizationId}" (HTTP 403${said})`,
          'forbidden',
        );
      case res.status === 404:
        throw new RedactedError(
          `${SERVICE} at ${host}: Deployment "${deploymentId}" not found in organization "${organizationId}" (HTTP 404${said}); check both ids`,
          'not_found',
        );
      case res.status >= 500:
        throw new RedactedError(`${SERVICE} at ${host} failed while ${action} (HTTP ${res.status}${said}); a server-side problem, retry later`, 'server_error');
      case res.status < 200 || res.status >= 300:
        throw new RedactedError(`${SERVICE} at ${host} answered ${action} with unexpected HTTP ${res.status}${said}`, 'http_error');
    }
    const d = parseBody(res.text, res.status, DeploymentBody, { service: SERVICE, host, action });
    return drop({
      id: d.id,
      name: d.name,
      namespace: d.namespace,
      workspaceId: d.workspaceId,
      runtimeVersion: d.runtimeVersion ?? d.astroRuntimeVersion,
      webServerAirflowApiUrl: d.webServerAirflowApiUrl,
      remoteExecution: d.remoteExecution
        ? drop({
            enabled: d.remoteExecution.enabled,
            remoteApiUrl: d.remoteExecution.remoteApiUrl,
            allowedIpAddressRanges: d.remoteExecution.allowedIpAddressRanges,
            taskLogBucket: d.remoteExecution.taskLogBucket,
            taskLogUrlPattern: d.remoteExecution.taskLogUrlPattern,
          })
        : undefined,
      environmentVariables: d.environmentVariables?.map((v) => (v.isSecret || v.value == null ? { key: v.key } : { key: v.key, value: v.value })),
    });
  }

  return { getDeployment };
}
