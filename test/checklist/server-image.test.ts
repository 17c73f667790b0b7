import { afterEach, describe, expect, it } from 'vitest';
import { deploy } from '../../src/checklist/deploy.ts';
import { compareRuntime, runtimeOfAgentImage, runtimeProblems } from '../../src/checklist/server-image.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { SuspendForApproval } from '../../src/jobs/engine.ts';
import { startFakeAstro, type FakeAstro } from '../../src/devkit/fake-astro.ts';
import { createAstroDeploysClient } from '../../src/infra/astro-deploys.ts';
import { renderValues } from '../../src/spec/values.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { createFakeInfra, type FakeInfra } from './fake-infra.ts';
import { FAKE, leakedSecrets, makeCtx, testSpec, visibleText } from './step-context.ts';

const CONTEXT = 'examples/demo-project';
const REGISTRY = 'cl1234.registry.astronomer.run';
const AGENT_31 = 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:3.1-2-python-3.12-astro-agent-1.1.0';
const ORG = 'clorg000000001';
const DEP = 'cldep0000000001';
const REPOSITORY = `${REGISTRY}/${ORG}/${DEP}`;

let astro: FakeAstro | undefined;
afterEach(async () => {
  await astro?.stop();
  astro = undefined;
});

function serverSpec(client = true): SetupSpec {
  return testSpec({
    agent: { image: AGENT_31, token: { env: 'T_AGENT' }, readyTimeoutSeconds: 10 },
    images: {
      server: { deploy: true, contextDir: CONTEXT, waitTimeoutSeconds: 10 },
      ...(client ? { client: { repository: 'registry.acme.io/re/client', contextDir: CONTEXT } } : {}),
    },
  });
}

/** Step 2's result, the Astro API stand-in holding Deployment `DEP` (Runtime 3.1-2), and its deploys client on the infra. */
async function world(spec: SetupSpec, deployment: Record<string, unknown> = {}): Promise<FakeInfra> {
  const infra = createFakeInfra();
  infra.state.namespaces.add(spec.cluster.namespace);
  await infra.helm.upgradeInstall({ release: spec.cluster.release, namespace: spec.cluster.namespace, chart: { path: 'x' }, values: renderValues(spec), description: 'step 2' });
  infra.state.upgrades.length = 0;
  astro = await startFakeAstro({
    token: FAKE.T_API,
    deployments: [{ id: DEP, organizationId: ORG, runtimeVersion: '3.1-2', isDagDeployEnabled: true, imageRepository: REPOSITORY, remoteExecution: { enabled: true }, ...deployment }],
    deploys: { healthyAfterMs: 100, imageDigest: async (repo, tag) => infra.state.registry.get(`${repo}:${tag}`) ?? null },
  });
  infra.astroDeploys = createAstroDeploysClient({ baseUrl: astro.url, token: FAKE.T_API });
  return infra;
}

describe('step 7: server image through the Astro Deploys API', () => {
  it('the approval lists the server deploy; nothing is built or sent to the deploys API before it; afterwards create → push → finalize → HEALTHY', async () => {
    const spec = serverSpec();
    const infra = await world(spec);
    const first = makeCtx(spec, infra);
    await expect(deploy.run(first.ctx)).rejects.toBeInstanceOf(SuspendForApproval);
    expect(infra.state.localBuilds).toHaveLength(0);
    expect(infra.state.pushes).toHaveLength(0);
    // the plan reads the Deployment (as step 1 does) and nothing else
    expect(astro!.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/organizations/${ORG}/deployments/${DEP}`]);
    const req = first.approvals[0]!;
    expect(req.title).toMatch(new RegExp(`^deploy the server image to Astro Deployment ${DEP}, build and push registry\\.acme\\.io/re/client:`));
    expect(req.diffText).toContain(`build the server image ${CONTEXT}/Dockerfile with buildah for linux/amd64, dags/ excluded`);
    expect(req.diffText).toContain(`create a deploy (IMAGE_AND_DAG) on Astro Deployment ${DEP}, push ${REPOSITORY}:<the tag the deploy assigns> (registry ${REGISTRY}, user cli, deployment.apiToken)`);
    expect(req.diffText).toContain(`finalize the deploy ({"dagTarballVersion":""}) and wait up to 10s for Deployment ${DEP} to be HEALTHY`);
    expect(req.review?.tokenUrls.join('\n')).toContain(`${REGISTRY} (registry login as cli: deployment.apiToken)`);
    expect(req.review?.server).toMatchObject({ deploymentId: DEP, push: `${REPOSITORY}:<deploy tag>` });

    const second = makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: new Set([req.hash]) });
    const out = await deploy.run(second.ctx);
    expect(infra.state.localBuilds).toEqual([expect.objectContaining({ builder: 'buildah', contextDir: CONTEXT, dockerfile: 'Dockerfile', platform: 'linux/amd64', exclude: ['dags'] })]);
    const [created] = [...astro!.deploys.deploys.values()];
    expect(created).toMatchObject({ type: 'IMAGE_AND_DAG', description: `re-bot job job_test: server image from ${CONTEXT}`, status: 'DEPLOYED', dagTarballVersion: '' });
    const ref = `${REPOSITORY}:${created!.imageTag}`;
    // logged in to the host of imageRepository as cli with the API token; the token went to the adapter's auth file, not argv
    expect(infra.state.pushes).toEqual([expect.objectContaining({ destination: ref, auth: { registry: REGISTRY, username: 'cli', password: FAKE.T_API } })]);
    expect(infra.state.localImages.size, 'the local server image is removed once pushed').toBe(0);
    expect(astro!.deploys.log.map((e) => e.event)).toEqual(['create', 'push', 'finalize', 'HEALTHY']);
    expect(out.summary).toMatch(new RegExp(`^deployed the server image ${ref.replace(/\./g, '\\.')} \\(deploy ${created!.id}\\); pushed registry\\.acme\\.io/re/client`));
    expect(out.output?.server).toMatchObject({ deployId: created!.id, image: ref, runtime: '3.1-2' });
    expect(leakedSecrets(visibleText(second, out))).toEqual([]);
  });

  it('a server image Runtime older than the Deployment fails before any deploy or push, naming both versions', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec, { runtimeVersion: '3.2-5' });
    infra.state.imageLabels = { 'io.astronomer.docker.runtime.version': '3.1-2' };
    const err = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.message).toContain("the server image's Astro Runtime 3.1-2 is older than Deployment cldep0000000001's Runtime 3.2-5");
    expect(err.message).toContain('nothing was pushed or deployed');
    expect(infra.state.pushes).toHaveLength(0);
    expect(astro!.deploys.deploys.size).toBe(0);
  });

  it('a client image newer than the Deployment fails before any push, naming both versions; so does a Runtime Astro does not offer', async () => {
    const spec = serverSpec();
    spec.agent.image = 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:3.2-5-python-3.12-astro-agent-1.7.1';
    const infra = await world(spec);
    infra.state.imageLabels = { 'io.astronomer.docker.runtime.version': '3.1-2' };
    const err = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx).catch((e) => e);
    expect(err.message).toContain("the client image's Astro Runtime 3.2-5 (agent.image");
    expect(err.message).toContain("is newer than Deployment cldep0000000001's Runtime 3.1-2");
    expect(infra.state.pushes).toHaveLength(0);
    expect(infra.state.builds).toHaveLength(0);
    expect(astro!.deploys.deploys.size).toBe(0);

    expect(runtimeProblems({ image: '3.1-3', deployment: '3.1-2', releases: ['3.1-2', '3.1-5'], deploymentId: 'd' })[0]).toContain('Runtime 3.1-3 is not a Runtime release Astro offers');
  });

  it('a kill between push and finalize resumes with the same deploy id: no second deploy, finalized once', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec);
    infra.state.crashAfterServerPush = true;
    const first = makeCtx(spec, infra, { granted: 'all' });
    await expect(deploy.run(first.ctx)).rejects.toThrow('killed after the server image push');
    const deployId = (first.checkpoint['server.deploy'] as { id: string }).id;
    expect(astro!.deploys.log.map((e) => e.event)).toEqual(['create']);

    const again = makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: 'all' });
    const out = await deploy.run(again.ctx);
    expect(astro!.deploys.deploys.size).toBe(1);
    expect(out.output?.server).toMatchObject({ deployId });
    expect(infra.state.pushes.map((p) => p.destination)).toEqual([infra.state.pushes[0]!.destination, infra.state.pushes[0]!.destination]);
    expect(astro!.deploys.log.map((e) => `${e.event} ${e.deployId}`)).toEqual([`create ${deployId}`, `push ${deployId}`, `finalize ${deployId}`, `HEALTHY ${deployId}`]);
    expect(out).toMatchObject({ status: 'succeeded', summary: expect.stringMatching(/^deployed the server image .*; images.client is not set/) });
  });

  it('a kill after the deploy was created but before its checkpoint finds that deploy again instead of creating a second', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec);
    const first = makeCtx(spec, infra, { granted: 'all' });
    const real = infra.astroDeploys!.createDeploy;
    infra.astroDeploys!.createDeploy = async (...a) => {
      await real(...a);
      throw new Error('re-bot process killed after the create');
    };
    await expect(deploy.run(first.ctx)).rejects.toThrow('killed after the create');
    infra.astroDeploys!.createDeploy = real;
    const out = await deploy.run(makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: 'all' }).ctx);
    expect(astro!.deploys.deploys.size).toBe(1);
    expect(out.output?.server).toMatchObject({ deployId: [...astro!.deploys.deploys.keys()][0] });
  });

  it('a kill after the finalize but before its checkpoint does not finalize again', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec);
    const first = makeCtx(spec, infra, { granted: 'all' });
    const real = infra.astroDeploys!.finalizeDeploy;
    let finalizes = 0;
    infra.astroDeploys!.finalizeDeploy = async (...a) => {
      finalizes++;
      await real(...a);
      if (finalizes === 1) throw new Error('re-bot process killed after the finalize');
      return real(...a);
    };
    await expect(deploy.run(first.ctx)).rejects.toThrow('killed after the finalize');
    const out = await deploy.run(makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: 'all' }).ctx);
    expect(finalizes).toBe(1);
    expect(astro!.deploys.log.map((e) => e.event)).toEqual(['create', 'push', 'finalize', 'HEALTHY']);
    expect(out.output?.server).toMatchObject({ deployId: [...astro!.deploys.deploys.keys()][0] });
  });

  it('with images.client.push false the server image still deploys under its own approval, and the client skip is said once', async () => {
    const spec = serverSpec();
    spec.images.client!.push = false;
    const infra = await world(spec);
    const first = makeCtx(spec, infra);
    await expect(deploy.run(first.ctx)).rejects.toBeInstanceOf(SuspendForApproval);
    expect(first.approvals.map((a) => a.title)).toEqual([`deploy the server image to Astro Deployment ${DEP}`]);
    const out = await deploy.run(makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: new Set([first.approvals[0]!.hash]) }).ctx);
    expect(out.status).toBe('warned');
    expect(out.warnings).toEqual([expect.stringContaining('images.client.push is false')]);
    expect(out.summary).toMatch(/^deployed the server image .*; images\.client\.push is false/);
    expect(infra.state.builds).toHaveLength(0);
  });

  it('a Deployment without Remote Execution is refused in the plan, before any approval', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec, { remoteExecution: { enabled: false } });
    const h = makeCtx(spec, infra);
    const err = await deploy.run(h.ctx).catch((e) => e);
    expect(err.message).toContain('does not have Remote Execution enabled');
    expect(h.approvals).toHaveLength(0);
  });

  it('finalize sends {} when DAG deploys are off', async () => {
    const spec = serverSpec(false);
    const infra = await world(spec, { isDagDeployEnabled: false });
    await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx);
    expect(astro!.deploys.log.find((e) => e.event === 'finalize')!.detail).toMatch(/^finalize deploy \S+ \{\}:/);
  });
});

describe('Runtime versions', () => {
  it('compare numerically, Runtime 3 and older formats', () => {
    expect(compareRuntime('3.1-10', '3.1-2')).toBeGreaterThan(0);
    expect(compareRuntime('3.2-1', '3.1-10')).toBeGreaterThan(0);
    expect(compareRuntime('12.0.0', '12.0.0')).toBe(0);
    expect(compareRuntime('11.9.0', '12.0.0')).toBeLessThan(0);
  });
  it('an agent image tag gives its Runtime', () => {
    expect(runtimeOfAgentImage('images.astronomer.cloud/baseimages/astro-remote-execution-agent:3.1-1-python-3.12-astro-agent-1.1.0')).toBe('3.1-1');
    expect(runtimeOfAgentImage('registry.acme.io/re/client:v2')).toBeUndefined();
  });
});
