/**
 * What a user reads when an image tool fails — "<which command> failed: <its Error: line>" for every call the
 * images adapter makes — plus the defaults a caller gets without options: the registry read over https, skopeo
 * found on PATH and told to verify TLS, and a build with nothing excluded. Stand-in binaries as in
 * images-argv.test.ts (test/support/fake-tool.ts); written from the mutation run of src/infra/images.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createImageAdapter, type ImageAdapterOptions } from '../../src/infra/images.ts';
import { forgetAllSecrets } from '../../src/redact.ts';
import { fakeTool, type FakeAnswer } from '../support/fake-tool.ts';

const scratch = mkdtempSync(join(tmpdir(), 'images-errors-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const tools = { buildah: fakeTool(scratch, 'buildah'), podman: fakeTool(scratch, 'podman'), docker: fakeTool(scratch, 'docker'), skopeo: fakeTool(scratch, 'skopeo') };
const paths = { buildah: tools.buildah.path, podman: tools.podman.path, docker: tools.docker.path, skopeo: tools.skopeo.path };
const images = (o: ImageAdapterOptions = {}) => createImageAdapter({ paths, ...o });

const DIGEST = `sha256:${'cd'.repeat(32)}`;
const REPO = 'reg.example.com/team/agent';
const CTX = join(scratch, 'ctx');
mkdirSync(CTX, { recursive: true });
writeFileSync(join(CTX, 'Dockerfile'), 'FROM scratch\n');

const caught = async (p: Promise<unknown>) => (await p.then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
/** the call whose argv holds every word of `when` exits 1 with an Error: line; the others succeed as planned */
const failing = (when: string[], ok: FakeAnswer[] = []): FakeAnswer[] => [{ when, exit: 1, stderr: 'level=info retrying\nError: refused by the test\n' }, ...ok];

/** buildah and podman write the digest file they are given; docker has none (the digest comes from inspect) */
const digestOnPush = (builder: string): FakeAnswer[] => (builder === 'docker' ? [] : [{ when: ['--digestfile'], digest: DIGEST }]);

beforeEach(() => {
  for (const t of Object.values(tools)) t.reset();
  forgetAllSecrets();
});

describe('a failing call names the command that failed', () => {
  const bp = (builder: 'buildah' | 'podman' | 'docker') => images().buildAndPush({ builder, contextDir: CTX, dockerfile: join(CTX, 'Dockerfile'), repository: REPO, tag: 't1' });
  const build = (builder: 'buildah' | 'podman' | 'docker') => images().build({ builder, contextDir: CTX, dockerfile: 'Dockerfile', image: 'localhost/s:1' });
  const push = (builder: 'buildah' | 'podman' | 'docker') => images().push({ builder, image: 'localhost/s:1', destination: `${REPO}:t1` });

  it.each([
    ['buildah', ['bud'], 'buildah bud'],
    ['buildah', ['push'], 'buildah push'],
    ['podman', ['build'], 'podman build'],
    ['podman', ['push'], 'podman push'],
    ['docker', ['build'], 'docker build'],
    ['docker', ['push'], 'docker push'],
    ['docker', ['image', 'inspect'], 'docker image inspect'],
  ] as const)('buildAndPush with %s, %j failing: "%s failed: …"', async (builder, when, action) => {
    tools[builder].plan(failing([...when], digestOnPush(builder)));
    const err = await caught(bp(builder));
    expect(err.message).toBe(`${action} failed: refused by the test`);
    expect(err.code).toBe('image_failed');
  });

  it.each([
    ['buildah', ['bud'], 'buildah bud'],
    ['buildah', ['inspect'], 'buildah inspect'],
    ['podman', ['build'], 'podman build'],
    ['podman', ['inspect'], 'podman inspect'],
    ['docker', ['build'], 'docker build'],
    ['docker', ['inspect'], 'docker inspect'],
  ] as const)('build with %s, %j failing: "%s failed: …"', async (builder, when, action) => {
    tools[builder].plan(failing([...when]));
    expect((await caught(build(builder))).message).toBe(`${action} failed: refused by the test`);
  });

  it.each([
    ['buildah', ['push'], 'buildah push'],
    ['podman', ['push'], 'podman push'],
    ['docker', ['tag'], 'docker tag'],
    ['docker', ['push'], 'docker push'],
    ['docker', ['image', 'inspect'], 'docker image inspect'],
  ] as const)('push with %s, %j failing: "%s failed: …"', async (builder, when, action) => {
    tools[builder].plan(failing([...when], digestOnPush(builder)));
    expect((await caught(push(builder))).message).toBe(`${action} failed: refused by the test`);
  });
});

describe('the error code a caller can branch on', () => {
  it('a malformed tag: bad_input; no digest after a docker push (buildAndPush and push): image_failed', async () => {
    const bad = await caught(images().buildAndPush({ builder: 'docker', contextDir: CTX, dockerfile: join(CTX, 'Dockerfile'), repository: REPO, tag: '-bad' }));
    expect(bad.message).toBe('tag: expected 1-128 characters [A-Za-z0-9_.-], got "-bad"');
    expect(bad.code).toBe('bad_input');
    tools.docker.plan([{ when: ['inspect'], stdout: '[]' }]);
    const e1 = await caught(images().buildAndPush({ builder: 'docker', contextDir: CTX, dockerfile: join(CTX, 'Dockerfile'), repository: REPO, tag: 't1' }));
    expect([e1.message, e1.code]).toEqual([`docker push of ${REPO}:t1 reported no digest for ${REPO}`, 'image_failed']);
    const e2 = await caught(images().push({ builder: 'docker', image: 'localhost/s:1', destination: `${REPO}:t1` }));
    expect([e2.message, e2.code]).toEqual([`docker push of ${REPO}:t1 reported no digest`, 'image_failed']);
  });
});

describe('build() with nothing excluded', () => {
  it('buildah and podman get exactly the build argv, with no ignore-file arguments', async () => {
    tools.buildah.plan([{ when: ['inspect'], stdout: '{"OCIv1":{"config":{"Labels":{"a":"1"}}}}' }]);
    tools.podman.plan([{ when: ['inspect'], stdout: '{"b":"2"}' }]);
    for (const exclude of [undefined, []]) {
      expect(await images().build({ builder: 'buildah', contextDir: CTX, dockerfile: 'Dockerfile', image: 'localhost/s:1', exclude })).toEqual({ image: 'localhost/s:1', labels: { a: '1' } });
      expect(await images().build({ builder: 'podman', contextDir: CTX, dockerfile: 'Dockerfile', image: 'localhost/s:2', exclude })).toEqual({ image: 'localhost/s:2', labels: { b: '2' } });
    }
    const df = join(CTX, 'Dockerfile');
    const bud = ['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '-f', df, '-t', 'localhost/s:1', CTX];
    const pb = ['build', '-f', df, '-t', 'localhost/s:2', CTX];
    expect(tools.buildah.calls().filter((c) => c.argv.includes('bud')).map((c) => c.argv)).toEqual([bud, bud]);
    expect(tools.podman.calls().filter((c) => c.argv.includes('build')).map((c) => c.argv)).toEqual([pb, pb]);
  });
});

describe('remoteDigest without options: https, and skopeo from PATH verifying TLS', () => {
  let seen: string[] = [];
  let status = 200;
  const savedPath = process.env.PATH;
  beforeEach(() => {
    seen = [];
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (url) => {
      seen.push(String(url));
      return new Response(null, { status, headers: status === 200 ? { 'docker-content-digest': DIGEST } : {} });
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env.PATH = savedPath;
  });

  it('the manifest is read over https unless TLS is turned off', async () => {
    status = 200;
    expect(await images().remoteDigest(REPO, 'v1')).toBe(DIGEST);
    expect(await images().remoteDigest(REPO, 'v1', { tlsVerify: true })).toBe(DIGEST);
    expect(await images().remoteDigest(REPO, 'v1', { tlsVerify: false })).toBe(DIGEST);
    expect(seen).toEqual([
      'https://reg.example.com/v2/team/agent/manifests/v1',
      'https://reg.example.com/v2/team/agent/manifests/v1',
      'http://reg.example.com/v2/team/agent/manifests/v1',
    ]);
  });

  it('a registry that answers without Docker-Content-Digest: registry_failed', async () => {
    status = 204;
    const err = await caught(images().remoteDigest(REPO, 'v1'));
    expect([err.message, err.code]).toEqual(['registry reg.example.com sent no Docker-Content-Digest for team/agent:v1', 'registry_failed']);
  });

  it('a 401 registry: skopeo verifies TLS unless told not to', async () => {
    status = 401;
    tools.skopeo.plan([{ stdout: JSON.stringify({ Digest: DIGEST }) }]);
    expect(await images().remoteDigest(REPO, 'v1')).toBe(DIGEST);
    expect(await images().remoteDigest(REPO, 'v1', { tlsVerify: false })).toBe(DIGEST);
    expect(tools.skopeo.calls().map((c) => c.argv)).toEqual([
      ['inspect', '--tls-verify=true', `docker://${REPO}:v1`],
      ['inspect', '--tls-verify=false', `docker://${REPO}:v1`],
    ]);
    expect(seen[0]).toBe('https://reg.example.com/v2/team/agent/manifests/v1');
  });

  it('a 401 registry and an adapter given no tool paths: the skopeo on PATH answers', async () => {
    status = 401;
    tools.skopeo.plan([{ stdout: JSON.stringify({ Digest: DIGEST }) }]);
    process.env.PATH = `${dirname(tools.skopeo.path)}:${savedPath ?? ''}`;
    expect(await createImageAdapter().remoteDigest(REPO, 'v2')).toBe(DIGEST);
    expect(await createImageAdapter({ paths: { buildah: tools.buildah.path } }).remoteDigest(REPO, 'v3')).toBe(DIGEST);
    expect(tools.skopeo.calls().map((c) => c.argv.at(-1))).toEqual([`docker://${REPO}:v2`, `docker://${REPO}:v3`]);
  });
});
