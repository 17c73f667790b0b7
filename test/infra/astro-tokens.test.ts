import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAstroTokensClient } from '../../src/infra/astro-tokens.ts';
import { redact } from '../../src/redact.ts';
import { expectRedactedFailure } from '../support/redacted.ts';

const API_TOKEN = 'astro-deploy-token-Qz8Lm3Pp5Rt1Yy7';
const API = 'https://api.astronomer.io';
const ORG = 'clorg0000000000000000000';
const DEP = 'cldep00000000000d1234567';
const PATH = `/v1/organizations/${ORG}/deployments/${DEP}/agent-tokens`;
const VALUE = 'agent-token-value-Wc9Vb4Tn6Hx7Yq2Jk5';

// `ApiToken` as the v1 spec defines it (api.gen.go ApiToken; OAS components.schemas.ApiToken)
const apiToken = (over: Record<string, unknown> = {}) => ({
  id: 'cltok0000000000000000001',
  name: 're-bot-demo-2026-11-30',
  description: 'created by re-bot job job_1',
  shortToken: 'agent-to',
  startAt: '2026-11-30T10:00:00Z',
  endAt: '2027-02-28T10:00:00Z',
  expiryPeriodInDays: 90,
  kind: 'STANDARD',
  scope: 'DEPLOYMENT',
  roles: [{ entityId: DEP, entityType: 'DEPLOYMENT', role: 'DEPLOYMENT_AGENT' }],
  createdAt: '2026-11-30T10:00:00Z',
  updatedAt: '2026-11-30T10:00:00Z',
  createdBy: { id: 'clapitoken00000000000001', apiTokenName: 're-bot' },
  updatedBy: { id: 'clapitoken00000000000001', apiTokenName: 're-bot' },
  ...over,
});

const client = () => createAstroTokensClient({ token: API_TOKEN, timeoutMs: 2_000 });
const failure = (p: Promise<unknown>) => expectRedactedFailure(p, [API_TOKEN, VALUE]);

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, 'every expected request was made').toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe('Astro agent-token client', () => {
  it('creates a token with CreateAgentTokenRequest and returns its value once, registered with the redactor', async () => {
    let sent: unknown;
    nock(API, { reqheaders: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' } })
      .post(PATH, (b) => { sent = b; return true; })
      .reply(200, apiToken({ token: VALUE }));
    const r = await client().createAgentToken(ORG, DEP, { name: 're-bot-demo-2026-11-30', description: 'created by re-bot job job_1', expiresInDays: 90 });
    expect(sent).toEqual({ name: 're-bot-demo-2026-11-30', description: 'created by re-bot job job_1', tokenExpiryPeriodInDays: 90 });
    expect(r.value).toBe(VALUE);
    expect(r.token).toEqual({
      id: 'cltok0000000000000000001', name: 're-bot-demo-2026-11-30', description: 'created by re-bot job job_1', shortToken: 'agent-to',
      startAt: '2026-11-30T10:00:00Z', endAt: '2027-02-28T10:00:00Z', expiryPeriodInDays: 90, createdAt: '2026-11-30T10:00:00Z',
    });
    expect(JSON.stringify(r.token)).not.toContain(VALUE);
    expect(redact(`agent said ${VALUE}`)).not.toContain(VALUE);
  });

  it('omits tokenExpiryPeriodInDays for a token that never expires (no endAt in the answer)', async () => {
    let sent: unknown;
    nock(API).post(PATH, (b) => { sent = b; return true; }).reply(200, apiToken({ token: VALUE, endAt: undefined, expiryPeriodInDays: undefined }));
    const r = await client().createAgentToken(ORG, DEP, { name: 'n' });
    expect(sent).toEqual({ name: 'n' });
    expect(r.token.endAt).toBeUndefined();
  });

  it('refuses an expiry outside 1..3650 days before calling the API', async () => {
    const e = await failure(client().createAgentToken(ORG, DEP, { name: 'n', expiresInDays: 4000 }));
    expect(e.message).toMatch(/1 to 3650.*4000/);
  });

  it('fails when the create answer carries no token value, naming the created id', async () => {
    nock(API).post(PATH).reply(200, apiToken());
    const e = await failure(client().createAgentToken(ORG, DEP, { name: 'n' }));
    expect(e.message).toContain('cltok0000000000000000001');
    expect(e.message).toMatch(/no token value/);
  });

  it("names the API's message and requestId when it refuses (the 50-token limit)", async () => {
    nock(API).post(PATH).reply(400, { message: 'Deployment has reached the maximum of 50 agent tokens', requestId: 'req-7f3a', statusCode: 400 });
    const e = await failure(client().createAgentToken(ORG, DEP, { name: 'n' }));
    expect(e.message).toContain('Deployment has reached the maximum of 50 agent tokens');
    expect(e.message).toContain('request id req-7f3a');
    expect(e.code).toBe('http_error');
  });

  it('says what a 403 means (the API token lacks agent-token permissions)', async () => {
    nock(API).post(PATH).reply(403, { message: 'forbidden', requestId: 'req-403', statusCode: 403 });
    const e = await failure(client().createAgentToken(ORG, DEP, { name: 'n' }));
    expect(e.code).toBe('forbidden');
    expect(e.message).toMatch(/deployment\.agentTokens/);
    expect(e.message).toContain('req-403');
  });

  it('lists every page of ApiTokensPaginated', async () => {
    const first = Array.from({ length: 1000 }, (_, i) => apiToken({ id: `tok${i}`, name: `t${i}` }));
    nock(API).get(PATH).query({ offset: '0', limit: '1000' }).reply(200, { tokens: first, totalCount: 1001, offset: 0, limit: 1000 });
    nock(API).get(PATH).query({ offset: '1000', limit: '1000' }).reply(200, { tokens: [apiToken({ id: 'last', name: 'last' })], totalCount: 1001, offset: 1000, limit: 1000 });
    const all = await client().listAgentTokens(ORG, DEP);
    expect(all).toHaveLength(1001);
    expect(all.at(-1)!.id).toBe('last');
  });

  it('deletes a token (204) and treats a 404 as already gone', async () => {
    nock(API).delete(`${PATH}/cltok1`).reply(204);
    nock(API).delete(`${PATH}/cltok2`).reply(404, { message: 'agent token not found', requestId: 'req-404', statusCode: 404 });
    expect(await client().deleteAgentToken(ORG, DEP, 'cltok1')).toBe('deleted');
    expect(await client().deleteAgentToken(ORG, DEP, 'cltok2')).toBe('gone');
  });

  it('a delete refused with 500 fails naming the requestId', async () => {
    nock(API).delete(`${PATH}/cltok1`).reply(500, { message: 'internal error', requestId: 'req-500', statusCode: 500 });
    const e = await failure(client().deleteAgentToken(ORG, DEP, 'cltok1'));
    expect(e.code).toBe('server_error');
    expect(e.message).toContain('req-500');
  });

  it('a request that never answers times out', async () => {
    nock(API).get(PATH).query(true).delay(500).reply(200, { tokens: [] });
    const e = await failure(createAstroTokensClient({ token: API_TOKEN, timeoutMs: 100 }).listAgentTokens(ORG, DEP));
    expect(e.code).toBe('timeout');
  });
});
