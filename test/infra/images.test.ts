import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageAdapter, imageArgvLog, splitRepository } from '../../src/infra/images.ts';
import { findTool } from '../../src/infra/tools.ts';
import { freePort, MANIFEST_ACCEPT, startRegistry, type LocalRegistry } from '../support/registry.ts';
import { describeWithTools } from '../support/tools.ts';

describeWithTools(['buildah', 'docker-registry'], 'images adapter: buildah build + push to a real local docker-registry', () => {
  let registry: LocalRegistry;
  const ctx = mkdtempSync(join(tmpdir(), 'img-ctx-'));

  beforeAll(async () => {
    registry = await startRegistry();
    writeFileSync(join(ctx, 'hello.txt'), `hello ${Date.now()}\n`);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /\n');
  }, 30_000);
  afterAll(async () => {
    await registry?.stop();
    rmSync(ctx, { recursive: true, force: true });
  });

  it('pushes the image and returns the digest the registry serves for the tag', async () => {
    const images = createImageAdapter({ auth: [{ registry: '127.0.0.1:1', username: 'cli', password: 'registry-pass-never-in-argv' }] });
    const repository = `${registry.host}/acme/agent`;
    expect(await images.remoteDigest(repository, 't1', { tlsVerify: false })).toBeNull();

    const out = await images.buildAndPush({ builder: 'buildah', contextDir: ctx, dockerfile: join(ctx, 'Dockerfile'), repository, tag: 't1', tlsVerify: false });

    expect(out.image).toBe(`${repository}:t1`);
    expect(out.tag).toBe('t1');
    expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const served = await registry.manifestDigest('acme/agent', 't1');
    expect(out.digest).toBe(served);
    expect(await images.remoteDigest(repository, 't1', { tlsVerify: false })).toBe(served);

    const argv = imageArgvLog.flat();
    expect(argv).toContain('--authfile');
    expect(argv.join(' ')).not.toContain('registry-pass-never-in-argv');
    expect(argv.join(' ')).not.toContain(Buffer.from('cli:registry-pass-never-in-argv').toString('base64'));
  }, 120_000);

  it('fails with a short message naming the problem when the registry is unreachable', async () => {
    const images = createImageAdapter();
    const closed = `127.0.0.1:${await freePort()}/acme/agent`; // nothing listens there
    const err = (await images
      .buildAndPush({ builder: 'buildah', contextDir: ctx, dockerfile: join(ctx, 'Dockerfile'), repository: closed, tag: 't2', tlsVerify: false }, { timeoutMs: 60_000 })
      .catch((e: Error) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^buildah push failed: .*(refused|connect)/i);
    await expect(images.remoteDigest(closed, 't2', { tlsVerify: false })).rejects.toThrow(/registry failed: .*(refused|ECONNREFUSED)/i);
  }, 120_000);
});

describe('images adapter input checks', () => {
  const images = createImageAdapter();
  it('rejects a repository that carries a tag and a malformed tag', async () => {
    const base = { builder: 'buildah' as const, contextDir: '.', dockerfile: 'Dockerfile', tlsVerify: false };
    await expect(images.buildAndPush({ ...base, repository: '127.0.0.1:5000/acme/agent:1', tag: 'x' })).rejects.toThrow(/^repository: expected a repository without tag/);
    await expect(images.buildAndPush({ ...base, repository: '127.0.0.1:5000/acme/agent', tag: 'bad tag' })).rejects.toThrow(/^tag: expected/);
  });
  it('splits registry host and repository name', () => {
    expect(splitRepository('127.0.0.1:5000/acme/agent')).toEqual({ host: '127.0.0.1:5000', name: 'acme/agent' });
    expect(splitRepository('acme/agent')).toEqual({ host: 'registry-1.docker.io', name: 'acme/agent' });
    expect(splitRepository('busybox')).toEqual({ host: 'registry-1.docker.io', name: 'library/busybox' });
  });
  it('reports a missing builder with the reason', async () => {
    const r = await images.available('buildah');
    if (findTool('buildah')) expect(r).toMatchObject({ ok: true, version: expect.stringMatching(/^\d+\.\d+/) });
    else expect(r).toMatchObject({ ok: false, reason: expect.stringContaining('buildah not found') });
    if (!findTool('podman')) expect(await images.available('podman')).toMatchObject({ ok: false, reason: expect.stringContaining('podman not found') });
  });
});

describeWithTools(['buildah', 'docker-registry'], 'images adapter: server image build (dags/ left out) and push to a registry that takes only cli + the API token', () => {
  const TOKEN = 'astro-api-token-for-registry-Zp8Kq2';
  let registry: LocalRegistry;
  const ctx = mkdtempSync(join(tmpdir(), 'img-server-'));
  const local = `localhost/re-bot-test/server:${Date.now()}`;

  beforeAll(async () => {
    registry = await startRegistry({ auth: { username: 'cli', password: TOKEN } });
    writeFileSync(join(ctx, 'requirements.txt'), 'apache-airflow-providers-http\n');
    mkdirSync(join(ctx, 'dags'));
    writeFileSync(join(ctx, 'dags', 'dag_not_in_the_image.py'), '# DAGs run on the agents\n');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nLABEL io.astronomer.docker.runtime.version="3.1-2"\nCOPY . /usr/local/airflow/\n');
  }, 30_000);
  afterAll(async () => {
    await registry?.stop();
    rmSync(ctx, { recursive: true, force: true });
  });

  it('builds for linux/amd64 without dags/, reads the Runtime label, and pushes only with cli + the token, never in argv', async () => {
    const images = createImageAdapter();
    const built = await images.build({ builder: 'buildah', contextDir: ctx, dockerfile: 'Dockerfile', image: local, platform: 'linux/amd64', exclude: ['dags'] });
    expect(built.labels['io.astronomer.docker.runtime.version']).toBe('3.1-2');
    expect(await images.hasLocal('buildah', local)).toBe(true);
    expect(await images.hasLocal('buildah', `${local}-missing`)).toBe(false);

    const destination = `${registry.host}/clorg1/cldep1:deploy-1`;
    const base = { builder: 'buildah' as const, image: local, destination, tlsVerify: false };
    await expect(images.push(base)).rejects.toThrow(/buildah push failed: .*(authentication required|unauthorized|401)/i);
    await expect(images.push({ ...base, auth: { registry: registry.host, username: 'cli', password: 'wrong-token-123456' } })).rejects.toThrow(/buildah push failed/);
    const argvFrom = imageArgvLog.length;
    const { digest } = await images.push({ ...base, auth: { registry: registry.host, username: 'cli', password: TOKEN } });
    expect(digest).toBe(await registry.manifestDigest('clorg1/cldep1', 'deploy-1'));

    const argv = imageArgvLog.slice(argvFrom).flat();
    expect(argv.join(' ')).not.toContain(TOKEN);
    expect(argv.join(' ')).not.toContain(Buffer.from(`cli:${TOKEN}`).toString('base64'));
    await images.removeLocal('buildah', local);
    expect(await images.hasLocal('buildah', local)).toBe(false);
    const authFile = argv[argv.indexOf('--authfile') + 1]!;
    expect(existsSync(authFile), 'the auth file is removed after the push').toBe(false);

    // the image's only layer holds the project without dags/
    const auth = { Authorization: `Basic ${Buffer.from(`cli:${TOKEN}`).toString('base64')}`, Accept: MANIFEST_ACCEPT };
    const manifest = (await (await fetch(`${registry.url}/v2/clorg1/cldep1/manifests/deploy-1`, { headers: auth })).json()) as { layers: Array<{ digest: string }> };
    const files = (await Promise.all(manifest.layers.map(async (l) => {
      const blob = Buffer.from(await (await fetch(`${registry.url}/v2/clorg1/cldep1/blobs/${l.digest}`, { headers: auth })).arrayBuffer());
      return gunzipSync(blob).toString('latin1');
    }))).join('');
    expect(files).toContain('usr/local/airflow/requirements.txt');
    expect(files).not.toContain('dag_not_in_the_image.py');
  }, 180_000);
});
