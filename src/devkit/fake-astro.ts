/**
 * A local stand-in for the Astro Platform API v1 (`GET /v1/organizations/{org}/deployments/{id}`, and the deploys of fake-astro-deploys.ts),
 * for `npm run demo` and e2e tests. Real HTTP on 127.0.0.1, ephemeral port. Bodies follow the v1
 * `Deployment` schema; fields the caller does not give get plausible defaults.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AstroDeployment } from '../infra/types.ts';
import { createFakeAgentTokens, type FakeAgentTokens } from './fake-astro-tokens.ts';
import { createFakeDeploys, type FakeDeploys, type FakeDeploysOptions } from './fake-astro-deploys.ts';

/** The adapter's view of a deployment, plus its organization and anything else to put in the body verbatim. */
export interface FakeAstroDeployment extends AstroDeployment {
  organizationId: string;
  [field: string]: unknown;
}

export interface FakeAstroOptions {
  token: string;
  deployments: FakeAstroDeployment[];
  deploys?: FakeDeploysOptions;
}

export interface FakeAstro {
  /** base URL to pass as `createAstroClient({ baseUrl })` */
  url: string;
  port: number;
  requests: Array<{ method: string; path: string; authorization?: string }>;
  /** agent tokens created through the stand-in (src/devkit/fake-astro-tokens.ts) */
  agentTokens: FakeAgentTokens;
  /** deploys, deployment-options and their log (create → push → finalize → HEALTHY) */
  deploys: FakeDeploys;
  stop(): Promise<void>;
}

function body(d: FakeAstroDeployment): Record<string, unknown> {
  const now = new Date().toISOString();
  return {
    name: `deployment-${d.id.slice(-7)}`,
    namespace: `space-${d.id.slice(-7)}`,
    workspaceId: 'clwfakeworkspace0000000000',
    runtimeVersion: '3.1-2',
    astroRuntimeVersion: d.runtimeVersion ?? '3.1-2',
    airflowVersion: '3.1.0',
    executor: 'ASTRO',
    status: 'HEALTHY',
    type: 'DEDICATED',
    isCicdEnforced: false,
    isDagDeployEnabled: true,
    schedulerReplicas: 1,
    createdAt: now,
    updatedAt: now,
    webServerUrl: `fake.astronomer.run/d${d.id.slice(-7)}`,
    ...d,
  };
}

export async function startFakeAstro(options: FakeAstroOptions): Promise<FakeAstro> {
  const requests: FakeAstro['requests'] = [];
  const agentTokens = createFakeAgentTokens();
  const deploys = createFakeDeploys(options.deploys);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ method: req.method ?? 'GET', path: url.pathname, authorization: req.headers.authorization });
    const send = (status: number, payload: unknown) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': randomUUID() });
      res.end(text);
    };
    const error = (status: number, message: string) => send(status, { message, requestId: randomUUID(), statusCode: status });
    req.resume();
    if (req.headers.authorization !== `Bearer ${options.token}`) return error(401, 'Unauthorized: the API token is invalid or expired');
    const owner = (org: string, id: string) => { const d = options.deployments.find((x) => x.id === id); return !d ? 'not_found' : d.organizationId !== org ? 'forbidden' : 'ok'; };
    if (agentTokens.route(req, url.pathname, url.searchParams, send, error, owner)) return;
    const deployment = (org: string, id: string) => {
      const d = options.deployments.find((x) => x.id === id);
      if (!d) return void error(404, `Deployment ${id} not found`);
      if (d.organizationId !== org) return void error(403, 'You do not have permission to access this resource');
      return d;
    };
    if (deploys.handle(req, url.pathname, send, error, deployment)) return;
    const m = /^\/v1\/organizations\/([^/]+)\/deployments\/([^/]+)$/.exec(url.pathname);
    if (!m) return error(404, 'Not Found');
    if (req.method !== 'GET') return error(405, 'Method Not Allowed');
    const [org, id] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const found = options.deployments.find((d) => d.id === id);
    if (!found) return error(404, `Deployment ${id} not found`);
    if (found.organizationId !== org) return error(403, 'You do not have permission to access this resource');
    return send(200, { ...body(found), ...deploys.deploymentFields(found) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    agentTokens,
    deploys,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
