import { describe, expect, it } from 'vitest';
import { deploy, deployTag, withClientImage } from '../../src/checklist/deploy.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { SuspendForApproval } from '../../src/jobs/engine.ts';
import { renderValues } from '../../src/spec/values.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { createFakeInfra, type FakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';
import { AGENT_IMAGE } from '../spec/fixtures.ts';

const REPO = 'registry.acme.io/re/client';
const CONTEXT = 'examples/demo-project';
const client = (extra: Record<string, unknown> = {}) =>
  testSpec({ agent: { image: AGENT_IMAGE, token: { env: 'T_AGENT' }, readyTimeoutSeconds: 10 }, images: { client: { repository: REPO, insecureRegistry: true, contextDir: CONTEXT, ...extra } } });

/** What step 2 leaves behind: namespace, release revision 1, Ready agent pods on the stock image. */
async function installed(spec: SetupSpec, o: Parameters<typeof createFakeInfra>[0] = {}): Promise<FakeInfra> {
  const infra = createFakeInfra(o);
  infra.state.namespaces.add(spec.cluster.namespace);
  await infra.helm.upgradeInstall({ release: spec.cluster.release, namespace: spec.cluster.namespace, chart: { path: 'x' }, values: renderValues(spec), description: 'step 2' });
  infra.state.upgrades.length = 0;
  if (o.podsAfterUpgrade) infra.state.podsAfterUpgrade = o.podsAfterUpgrade;
  return infra;
}

describe('step 7: deploy client image', () => {
  it('asks its approval before building anything (the request names the build and the roll), then builds, pushes once and rolls every agent onto repo@digest', async () => {
    const spec = client();
    const infra = await installed(spec);
    const first = makeCtx(spec, infra);
    await expect(deploy.run(first.ctx)).rejects.toBeInstanceOf(SuspendForApproval);
    // nothing built, pushed, looked up in the registry or rolled before the approval
    expect(infra.state.builds).toHaveLength(0);
    expect(infra.state.remoteLookups).toHaveLength(0);
    expect(infra.state.upgrades).toHaveLength(0);
    expect(first.approvals).toHaveLength(1);
    const tag = first.checkpoint.tag as string;
    expect(tag).toMatch(/^deploy-\d{4}-\d\d-\d\dT\d\d-\d\d$/);
    const req = first.approvals[0];
    expect(req.title).toBe(`build and push ${REPO}:${tag}, then helm upgrade astro-agent: roll the agents onto it`);
    expect(req.diffText).toMatch(new RegExp(`^build examples/demo-project/Dockerfile\\.client with buildah \\(context sha256:[0-9a-f]{16}, \\d+ files; Dockerfile sha256:[0-9a-f]{16}\\)\npush ${REPO.replace(/\./g, '\\.')}:${tag} \\(TLS verification off\\)`));
    expect(req.changedKeys).toEqual(['image']);

    // the engine re-runs the step after the approval, with the same checkpoint
    const second = makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: new Set([first.approvals[0].hash]) });
    const out = await deploy.run(second.ctx);
    expect(infra.state.builds).toHaveLength(1);
    expect(infra.state.builds[0]).toMatchObject({ builder: 'buildah', repository: REPO, tag, tlsVerify: false, contextDir: CONTEXT, dockerfile: 'Dockerfile.client' });
    expect(second.approvals.map((a) => a.hash)).toEqual([req.hash]); // the same request, now granted: no new one
    expect(infra.state.upgrades).toHaveLength(1);
    const { digest } = out.output as { digest: string };
    const values = infra.state.upgrades[0].values as Record<string, any>;
    expect(values.image).toBe(`${REPO}@${digest}`);
    expect(values.sentinel).toEqual({ enabled: true });
    expect(out.status).toBe('succeeded');
    expect(out.summary).toBe(`pushed ${REPO}:${tag} (${digest.slice(7, 19)}); astro-agent revision 2, agents on the new image`);
  });

  it('a crash after the push but before the checkpoint does not build again', async () => {
    const spec = client();
    const infra = await installed(spec);
    infra.state.crashAfterPush = true;
    const first = makeCtx(spec, infra, { granted: 'all' });
    await expect(deploy.run(first.ctx)).rejects.toThrow('killed after push');
    const again = makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: 'all' });
    const out = await deploy.run(again.ctx);
    expect(infra.state.builds).toHaveLength(1);
    expect(infra.state.remoteLookups.map((l) => l.tlsVerify)).toEqual([false, false]);
    expect(out.warnings).toEqual([]);
    expect(out.summary).toMatch(/^pushed /);
  });

  it('a crash after the helm upgrade does not upgrade again on the re-run', async () => {
    const spec = client();
    const infra = await installed(spec);
    infra.state.crashAfterUpgrade = true;
    const first = makeCtx(spec, infra, { granted: 'all' });
    await expect(deploy.run(first.ctx)).rejects.toThrow('killed after helm upgrade');
    expect(infra.state.upgrades).toHaveLength(1);
    const again = makeCtx(spec, infra, { checkpoint: first.checkpoint, granted: 'all' });
    const out = await deploy.run(again.ctx);
    expect(infra.state.upgrades).toHaveLength(1);
    expect(infra.state.builds).toHaveLength(1);
    expect(out.output).toMatchObject({ helmRevision: 2 });
  });

  it('an explicit tag already in the registry is not rebuilt, and the user is told', async () => {
    const spec = client({ tag: 'v1.4.0' });
    const infra = await installed(spec);
    infra.state.registry.set(`${REPO}:v1.4.0`, `sha256:${'a'.repeat(64)}`);
    const out = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx);
    expect(infra.state.builds).toHaveLength(0);
    expect((infra.state.upgrades[0].values as { image: string }).image).toBe(`${REPO}@sha256:${'a'.repeat(64)}`);
    expect(out.status).toBe('warned');
    expect(out.warnings![0]).toContain(`${REPO}:v1.4.0 already existed in the registry, so re-bot did not rebuild it`);
    expect(out.summary).toBe(`reused ${REPO}:v1.4.0 (aaaaaaaaaaaa); astro-agent revision 2, agents on the new image`);
  });

  it('builder unavailable: skipped with the reason, nothing built or rolled', async () => {
    const spec = client();
    const infra = await installed(spec, { builder: { ok: false, reason: 'buildah not found on PATH' } });
    const out = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx);
    expect(out.status).toBe('skipped');
    expect(out.summary).toContain('buildah is not available on the re-bot host (buildah not found on PATH)');
    expect(infra.state.builds).toHaveLength(0);
    expect(infra.state.upgrades).toHaveLength(0);
  });

  it('push: false builds nothing and does not roll, and says why', async () => {
    const spec = client({ push: false });
    const infra = await installed(spec);
    const out = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx);
    expect(out.status).toBe('skipped');
    expect(out.warnings![0]).toContain('the agents can only run an image pushed to a registry');
    expect(infra.state.builds).toHaveLength(0);
    expect(infra.state.upgrades).toHaveLength(0);
  });

  it('new pods that cannot pull the image fail the step with the pod and a hint', async () => {
    const spec = client();
    const infra = await installed(spec, { podsAfterUpgrade: 'image-pull-backoff' });
    const err = await deploy.run(makeCtx(spec, infra, { granted: 'all' }).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.message).toMatch(/^sales-worker-default-worker: pod sales-worker-default-worker-\w+-abcde cannot pull registry\.acme\.io\/re\/client@sha256:\w+ \(ImagePullBackOff/);
    expect(err.details.hint).toContain('registry.acme.io');
  });

  it('images.client unset: skipped, agents keep their image', async () => {
    const out = await deploy.run(makeCtx(testSpec(), createFakeInfra()).ctx);
    expect(out).toMatchObject({ status: 'skipped', summary: expect.stringContaining('images.client is not set') });
  });
});

describe('withClientImage', () => {
  it('sets the top-level and every per-component image that exists, never Sentinel or the sidecar', () => {
    const v = {
      image: 'old:1',
      workers: [{ name: 'a', image: 'old:1' }, { name: 'b' }],
      dagProcessor: { image: 'old:1' },
      triggerer: { replicas: 1 },
      sentinel: { enabled: true, image: 'sentinel:1.7.2' },
      loggingSidecar: { enabled: true, image: 'vector:0.45' },
    };
    const out = withClientImage(v, 'r/c@sha256:1') as typeof v;
    expect(out.image).toBe('r/c@sha256:1');
    expect(out.workers).toEqual([{ name: 'a', image: 'r/c@sha256:1' }, { name: 'b' }]);
    expect(out.dagProcessor).toEqual({ image: 'r/c@sha256:1' });
    expect(out.triggerer).toEqual({ replicas: 1 });
    expect(out.sentinel.image).toBe('sentinel:1.7.2');
    expect(out.loggingSidecar.image).toBe('vector:0.45');
    expect(v.image).toBe('old:1');
  });

  it('deploy tags use the astro CLI format in UTC', () => {
    expect(deployTag(new Date('2026-03-09T07:05:59Z'))).toBe('deploy-2026-03-09T07-05');
  });
});
