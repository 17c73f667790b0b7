import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAstroClient } from '../../src/infra/astro.ts';
import { expectRedactedFailure } from '../support/redacted.ts';

const TOKEN = 'astro-deploy-token-Hx7Yq2Wc9Vb4Tn6';
const API = 'https://api.astronomer.io';
const ORG = 'clorg0000000000000000000';
const DEP = 'cldep00000000000d1234567';
const PATH = `/v1/organizations/${ORG}/deployments/${DEP}`;

const deployment = {
  id: DEP,
  name: 'prod-remote',
  organizationId: ORG,
  workspaceId: 'clws0000000000000000000',
  namespace: 'cosmic-nebula-1234',
  runtimeVersion: '3.1-2',
  astroRuntimeVersion: '3.1-2',
  executor: 'ASTRO',
  status: 'HEALTHY',
  webServerAirflowApiUrl: 'cluster-x.astronomer.run/d1234567/api/v2',
  remoteExecution: {
    enabled: true,
    remoteApiUrl: 'https://cluster-x.external.astronomer.run/d1234567',
    allowedIpAddressRanges: ['203.0.113.0/24'],
    taskLogBucket: 's3://logs',
  },
};

const failure = (p: Promise<unknown>, serverEchoedToken = false) => expectRedactedFailure(p, [TOKEN], serverEchoedToken);

const client = (timeoutMs = 2_000) => createAstroClient({ token: TOKEN, timeoutMs });

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, 'every expected request was made').toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe('Astro client', () => {
  it('reads a deployment from api.astronomer.io with the bearer token and maps the RE fields', async () => {
    nock(API, { reqheaders: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' } })
      .get(PATH)
      .reply(200, deployment);
    expect(await client().getDeployment(ORG, DEP)).toEqual({
      id: DEP,
      name: 'prod-remote',
      namespace: 'cosmic-nebula-1234',
      workspaceId: 'clws0000000000000000000',
      runtimeVersion: '3.1-2',
      webServerAirflowApiUrl: 'cluster-x.astronomer.run/d1234567/api/v2',
      remoteExecution: {
        enabled: true,
        remoteApiUrl: 'https://cluster-x.external.astronomer.run/d1234567',
        allowedIpAddressRanges: ['203.0.113.0/24'],
        taskLogBucket: 's3://logs',
      },
    });
  });

  it('environment variables: keys and plain values kept, a secret variable\'s value never kept', async () => {
    nock(API).get(PATH).reply(200, { ...deployment, environmentVariables: [
      { key: 'OPENLINEAGE_DISABLED', value: 'False', isSecret: false, updatedAt: '2026-11-01T00:00:00Z' },
      { key: 'DB_PASSWORD', value: 'hunter2-S3cret', isSecret: true, updatedAt: '2026-11-01T00:00:00Z' },
      { key: 'MASKED', isSecret: true },
    ] });
    const d = await client().getDeployment(ORG, DEP);
    expect(d.environmentVariables).toEqual([{ key: 'OPENLINEAGE_DISABLED', value: 'False' }, { key: 'DB_PASSWORD' }, { key: 'MASKED' }]);
    expect(JSON.stringify(d)).not.toContain('hunter2');
  });

  it('uses a custom base URL (with or without /v1) and URL-encodes the ids', async () => {
    nock('http://127.0.0.1:9999').get('/v1/organizations/org%2F1/deployments/dep%201').twice().reply(200, { id: 'dep 1' });
    for (const baseUrl of ['http://127.0.0.1:9999', 'http://127.0.0.1:9999/v1/']) {
      const d = await createAstroClient({ baseUrl, token: TOKEN }).getDeployment('org/1', 'dep 1');
      expect(d).toEqual({ id: 'dep 1' });
    }
  });

  it('a deployment without Remote Execution comes back without remoteExecution; astroRuntimeVersion fills runtimeVersion', async () => {
    nock(API).get(PATH).reply(200, { id: DEP, astroRuntimeVersion: '3.0-9', remoteExecution: null, webServerAirflowApiUrl: null });
    expect(await client().getDeployment(ORG, DEP)).toEqual({ id: DEP, runtimeVersion: '3.0-9' });
  });

  it('401: "Deployment API token invalid or lacks access"', async () => {
    nock(API).get(PATH).reply(401, { message: 'Unauthorized', requestId: 'r1', statusCode: 401 });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.code).toBe('unauthorized');
    expect(e.message).toMatch(/api\.astronomer\.io: Deployment API token invalid or lacks access \(HTTP 401: Unauthorized\)/);
  });

  it('401 whose body echoes the token does not leak it', async () => {
    nock(API).get(PATH).reply(401, { message: `bad token ${TOKEN}` });
    const e = await failure(client().getDeployment(ORG, DEP), true);
    expect(e.message).toContain('HTTP 401');
  });

  it('403: names the deployment and organization', async () => {
    nock(API).get(PATH).reply(403, { message: 'Forbidden', statusCode: 403 });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.code).toBe('forbidden');
    expect(e.message).toContain(`lacks access to Deployment "${DEP}" in organization "${ORG}" (HTTP 403: Forbidden)`);
  });

  it('404: deployment not found, check both ids', async () => {
    nock(API).get(PATH).reply(404, { message: 'Deployment not found', statusCode: 404 });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.code).toBe('not_found');
    expect(e.message).toMatch(new RegExp(`Deployment "${DEP}" not found in organization "${ORG}" \\(HTTP 404: Deployment not found\\); check both ids`));
  });

  it('422 and other 4xx: unexpected status with the server message', async () => {
    nock(API).get(PATH).reply(422, { message: 'invalid id format' });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.message).toMatch(/unexpected HTTP 422: invalid id format/);
  });

  it('500: server-side problem', async () => {
    nock(API).get(PATH).reply(500, { message: 'internal error' });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.code).toBe('server_error');
    expect(e.message).toMatch(/HTTP 500: internal error\); a server-side problem, retry later/);
  });

  it('times out with "no answer from api.astronomer.io within Ns"', async () => {
    nock(API).get(PATH).delay(3_000).reply(200, deployment);
    const e = await failure(client(250).getDeployment(ORG, DEP));
    expect(e.code).toBe('timeout');
    expect(e.message).toMatch(/no answer from api\.astronomer\.io within 0\.25s/);
  });

  it('malformed JSON is a clear error', async () => {
    nock(API).get(PATH).reply(200, '{"id": "x",', { 'content-type': 'application/json' });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.code).toBe('bad_response');
    expect(e.message).toMatch(/body is not JSON/);
  });

  it('wrong shape names the field', async () => {
    nock(API).get(PATH).reply(200, { id: DEP, remoteExecution: { enabled: 'yes', remoteApiUrl: 7 } });
    const e = await failure(client().getDeployment(ORG, DEP));
    expect(e.message).toMatch(/unexpected body: remoteExecution\.enabled: .*remoteExecution\.remoteApiUrl/);
  });

  it('refuses empty ids and an empty token before any request', async () => {
    await failure(client().getDeployment('', DEP));
    await failure(client().getDeployment(ORG, ''));
    expect(() => createAstroClient({ token: '' })).toThrow(/token is empty/);
  });
});
