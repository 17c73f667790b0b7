import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageAdapter, imageArgvLog, splitRepository } from '../../src/infra/images.ts';
import { findTool } from '../../src/infra/tools.ts';
import { freePort, startRegistry, type LocalRegistry } from '../support/registry.ts';
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
