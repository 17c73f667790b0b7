import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAstroDeploysClient, finalizeBody, registryHostOf } from '../../src/infra/astro-deploys.ts';
import { expectRedactedFailure } from '../support/redacted.ts';

const TOKEN = 'astro-deploy-token-Qw3Er5Ty7Ui9Op1';
const API = 'https://api.astronomer.io';
const ORG = 'clorg0000000000000000000';
const DEP = 'cldep00000000000d1234567';
const DEP_PATH = `/v1/organizations/${ORG}/deployments/${DEP}`;
const REPO = `cl1234abcd.registry.astronomer.run/${ORG}/${DEP}`;

// shapes as in the v1 spec (Deployment, Deploy, DeploymentOptions, Error); see the Astro Deploys API reference
const deployment = {
  id: DEP,
  name: 'prod-remote',
  organizationId: ORG,
  workspaceId: 'clws0000000000000000000',
  namespace: 'cosmic-nebula-1234',
  runtimeVersion: '3.1-2',
  astroRuntimeVersion: '3.1-2',
  airflowVersion: '3.1.0',
  imageRepository: REPO,
  imageTag: 'deploy-2026-08-01T10-00',
  isDagDeployEnabled: true,
  isCicdEnforced: false,
  status: 'HEALTHY',
  executor: 'ASTRO',
  remoteExecution: { enabled: true, remoteApiUrl: 'https://cluster-x.external.astronomer.run/d1234567', allowedIpAddressRanges: [] },
};

const deploy = {
  id: 'cldeploy000000000000abcde',
  deploymentId: DEP,
  imageRepository: REPO,
  imageTag: 'deploy-2026-08-13T09-12-44',
  isDagDeployEnabled: true,
  status: 'INITIALIZED',
  type: 'IMAGE_AND_DAG',
  createdAt: '2026-08-13T09:12:44.000Z',
  description: 're-bot job job_1: server image from .',
  dagsUploadUrl: 'https://x.blob.core.windows.net/dags?sv=1',
  createdBySubject: { id: 'clapitoken', subjectType: 'SERVICEKEY' },
};

const client = () => createAstroDeploysClient({ token: TOKEN, timeoutMs: 2_000 });
const failure = (p: Promise<unknown>) => expectRedactedFailure(p, [TOKEN]);

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, 'every expected request was made').toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe('Astro Deploys API client', () => {
  it('reads what a server image deploy needs from the Deployment, with the token as Bearer', async () => {
    nock(API, { reqheaders: { authorization: `Bearer ${TOKEN}` } }).get(DEP_PATH).reply(200, deployment);
    expect(await client().getDeployTarget(ORG, DEP)).toEqual({
      id: DEP, runtimeVersion: '3.1-2', isDagDeployEnabled: true, isCicdEnforced: false, imageRepository: REPO, status: 'HEALTHY', remoteExecutionEnabled: true,
    });
  });

  it('a Deployment without an image repository is a bad answer naming the field', async () => {
    nock(API).get(DEP_PATH).reply(200, { ...deployment, imageRepository: undefined });
    const e = await failure(client().getDeployTarget(ORG, DEP));
    expect(e.message).toMatch(/unexpected body: imageRepository: expected the Deployment image repository/);
  });

  it('lists runtime releases from deployment-options', async () => {
    nock(API).get(`/v1/organizations/${ORG}/deployment-options`).reply(200, {
      runtimeReleases: [{ version: '3.1-2', airflowVersion: '3.1.0', channel: 'STABLE', releaseDate: '2026-05-01T00:00:00Z', airflowDatabaseMigration: false }, { version: '3.1-5', airflowVersion: '3.1.3', channel: 'STABLE', releaseDate: '2026-07-01T00:00:00Z', airflowDatabaseMigration: false }],
      executors: ['ASTRO', 'CELERY'],
      resourceQuotas: {},
    });
    expect(await client().runtimeReleases(ORG)).toEqual(['3.1-2', '3.1-5']);
  });

  it('creates an IMAGE_AND_DAG deploy with the body the CLI sends, and keeps id, repository and tag', async () => {
    nock(API).post(`${DEP_PATH}/deploys`, { type: 'IMAGE_AND_DAG', description: 're-bot job job_1: server image from .' }).reply(200, deploy);
    const d = await client().createDeploy(ORG, DEP, { type: 'IMAGE_AND_DAG', description: 're-bot job job_1: server image from .' });
    expect(d).toMatchObject({ id: deploy.id, imageRepository: REPO, imageTag: deploy.imageTag, status: 'INITIALIZED', isDagDeployEnabled: true });
  });

  it('a created deploy without an image tag is refused: nothing could be pushed', async () => {
    nock(API).post(`${DEP_PATH}/deploys`).reply(200, { ...deploy, imageTag: '' });
    const e = await failure(client().createDeploy(ORG, DEP, { type: 'IMAGE_AND_DAG' }));
    expect(e.message).toContain(`created deploy ${deploy.id} without an image repository or tag`);
  });

  it('finalizes with the body for the Deployment’s DAG deploy setting and reads the deploy back', async () => {
    nock(API).post(`${DEP_PATH}/deploys/${deploy.id}/finalize`, { dagTarballVersion: '' }).reply(200, { ...deploy, status: 'DEPLOYED', dagTarballVersion: '' });
    nock(API).get(`${DEP_PATH}/deploys/${deploy.id}`).reply(200, { ...deploy, status: 'DEPLOYED' });
    nock(API).get(`${DEP_PATH}/deploys`).query({ limit: 20 }).reply(200, { deploys: [deploy], limit: 20, offset: 0, totalCount: 1 });
    expect(await client().finalizeDeploy(ORG, DEP, deploy.id, finalizeBody(true))).toMatchObject({ status: 'DEPLOYED', dagTarballVersion: '' });
    expect((await client().getDeploy(ORG, DEP, deploy.id)).status).toBe('DEPLOYED');
    expect((await client().listDeploys(ORG, DEP)).map((d) => d.id)).toEqual([deploy.id]);
    expect(finalizeBody(false)).toEqual({});
  });

  it.each([
    [403, 'lacks the permission for creating a deploy', 'forbidden'],
    [401, 'the API token is invalid or expired', 'unauthorized'],
    [400, 'fix what the message names', 'rejected'],
    [503, 'a server-side problem at Astro', 'server_error'],
  ])('HTTP %i names the API message and request id, and what to do', async (status, hint, code) => {
    nock(API).post(`${DEP_PATH}/deploys`).reply(status, { message: 'deployment.deploys.create denied', requestId: 'req-7f3a', statusCode: status });
    const e = await failure(client().createDeploy(ORG, DEP, { type: 'IMAGE_AND_DAG' }));
    expect(e.message).toContain(`HTTP ${status}: deployment.deploys.create denied (request id req-7f3a)`);
    expect(e.message).toContain(hint);
    expect(e.code).toBe(code);
  });

  it('a server that never answers times out with the host named', async () => {
    nock(API).get(`/v1/organizations/${ORG}/deployment-options`).delay(3_000).reply(200, { runtimeReleases: [] });
    const e = await failure(createAstroDeploysClient({ token: TOKEN, timeoutMs: 200 }).runtimeReleases(ORG));
    expect(e.message).toContain('no answer from api.astronomer.io');
  });

  it('the registry host comes from imageRepository, never a fixed host', () => {
    expect(registryHostOf(REPO)).toBe('cl1234abcd.registry.astronomer.run');
    expect(registryHostOf('127.0.0.1:5000/org/dep')).toBe('127.0.0.1:5000');
    expect(() => registryHostOf('nohost')).toThrow('has no registry host');
  });
});
