/**
 * What the images adapter hands to buildah / podman / docker / skopeo — argv, environment, the auth and ignore
 * files — and what it makes of their answers, through stand-in binaries that record each start
 * (test/support/fake-tool.ts), plus the registry HEAD request against a local HTTP server. Written from the
 * mutation run of src/infra/images.ts (see TESTING.md); images.test.ts runs the real buildah and registry.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createImageAdapter, imageArgvLog, splitRepository, type ImageAdapterOptions } from '../../src/infra/images.ts';
import { forgetAllSecrets } from '../../src/redact.ts';
import { fakeTool, type FakeCall } from '../support/fake-tool.ts';
import { freePort } from '../support/registry.ts';

const scratch = mkdtempSync(join(tmpdir(), 'images-argv-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const tools = { buildah: fakeTool(scratch, 'buildah'), podman: fakeTool(scratch, 'podman'), docker: fakeTool(scratch, 'docker'), skopeo: fakeTool(scratch, 'skopeo') };
const paths = { buildah: tools.buildah.path, podman: tools.podman.path, docker: tools.docker.path, skopeo: tools.skopeo.path };
const images = (o: ImageAdapterOptions = {}) => createImageAdapter({ paths, ...o });

const PW = 'registry-password-NEVER-IN-ARGV-55';
const AUTH = { registry: 'reg.example.com', username: 'cli', password: PW };
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const REPO = 'reg.example.com/team/agent';
const CTX = join(scratch, 'ctx');
mkdirSync(CTX, { recursive: true });
writeFileSync(join(CTX, 'Dockerfile'), 'FROM scratch\n');

const caught = async (p: Promise<unknown>) => (await p.then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
const after = (c: FakeCall, flag: string) => c.argv[c.argv.indexOf(flag) + 1]!;
const b64 = (s: string) => Buffer.from(s).toString('base64');

beforeEach(() => {
  for (const t of Object.values(tools)) t.reset();
  imageArgvLog.length = 0;
  forgetAllSecrets();
});

describe('buildAndPush: argv, auth file, digest', () => {
  const input = { builder: 'buildah' as const, contextDir: CTX, dockerfile: join(CTX, 'Dockerfile'), repository: REPO, tag: 'v1.2-rc_3' };

  it('buildah: vfs storage, chroot isolation, platform, --authfile (never the password), push with --digestfile; the digest buildah wrote', async () => {
    tools.buildah.plan([{ when: ['push'], digest: `${DIGEST}\n` }]);
    const out = await images({ auth: [AUTH] }).buildAndPush({ ...input, platform: 'linux/amd64', tlsVerify: false });
    const image = `${REPO}:v1.2-rc_3`;
    expect(out).toEqual({ image, tag: 'v1.2-rc_3', digest: DIGEST });
    const [bud, push] = tools.buildah.calls();
    const authFile = after(bud!, '--authfile');
    expect(bud!.argv).toEqual(['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '--platform', 'linux/amd64', '--authfile', authFile, '-f', input.dockerfile, '-t', image, CTX]);
    expect(push!.argv).toEqual(['--storage-driver', 'vfs', 'push', '--tls-verify=false', '--authfile', authFile, '--digestfile', join(dirname(authFile), 'digest'), image, `docker://${image}`]);
    expect(JSON.parse(push!.files[authFile]!.content)).toEqual({ auths: { 'reg.example.com': { auth: b64(`cli:${PW}`) } } });
    expect(push!.files[authFile]).toMatchObject({ mode: '600', dirMode: '700' });
    expect(JSON.stringify(imageArgvLog)).not.toContain(PW);
    expect(JSON.stringify(imageArgvLog)).not.toContain(b64(`cli:${PW}`));
    expect(imageArgvLog).toEqual([[paths.buildah, ...bud!.argv], [paths.buildah, ...push!.argv]]);
    expect(existsSync(dirname(authFile))).toBe(false);
  });

  it('without credentials: no --authfile; TLS verified unless turned off; no --platform unless asked', async () => {
    tools.buildah.plan([{ when: ['push'], digest: DIGEST }]);
    await images().buildAndPush(input);
    const [bud, push] = tools.buildah.calls();
    expect(bud!.argv).toEqual(['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '-f', input.dockerfile, '-t', `${REPO}:v1.2-rc_3`, CTX]);
    expect(push!.argv.slice(0, 4)).toEqual(['--storage-driver', 'vfs', 'push', '--tls-verify=true']);
    expect(push!.argv).not.toContain('--authfile');
  });

  it('a push that writes no usable digest is an error quoting what it wrote', async () => {
    tools.buildah.plan([{ when: ['push'], digest: 'sha256:not-hex' }]);
    const err = await caught(images().buildAndPush(input));
    expect(err.message).toBe('push reported no usable digest (got "sha256:not-hex")');
    expect(err.code).toBe('image_failed');
    for (const bad of [`${DIGEST}0`, `digest: ${DIGEST}`]) {
      tools.buildah.plan([{ when: ['push'], digest: bad }]);
      expect((await caught(images().buildAndPush(input))).message).toBe(`push reported no usable digest (got "${bad}")`);
    }
    tools.buildah.plan([{ when: ['push'], digest: 'x'.repeat(100) }]);
    expect((await caught(images().buildAndPush(input))).message).toBe(`push reported no usable digest (got "${'x'.repeat(80)}")`);
  });

  it('podman: build and push with --authfile and --digestfile, no storage flags', async () => {
    tools.podman.plan([{ when: ['push'], digest: DIGEST }]);
    const out = await images({ auth: [AUTH] }).buildAndPush({ ...input, builder: 'podman', platform: 'linux/arm64' });
    expect(out.digest).toBe(DIGEST);
    const [build, push] = tools.podman.calls();
    const authFile = after(build!, '--authfile');
    expect(build!.argv).toEqual(['build', '--platform', 'linux/arm64', '--authfile', authFile, '-f', input.dockerfile, '-t', `${REPO}:v1.2-rc_3`, CTX]);
    expect(push!.argv).toEqual(['push', '--tls-verify=true', '--authfile', authFile, '--digestfile', join(dirname(authFile), 'digest'), `${REPO}:v1.2-rc_3`, `docker://${REPO}:v1.2-rc_3`]);
  });

  it('docker: credentials through $DOCKER_CONFIG/config.json, the digest from RepoDigests for this repository', async () => {
    tools.docker.plan([{ when: ['inspect'], stdout: JSON.stringify([`other.example.com/x@sha256:${'cd'.repeat(32)}`, `${REPO}@${DIGEST}`]) }]);
    const out = await images({ auth: [AUTH] }).buildAndPush({ ...input, builder: 'docker', platform: 'linux/amd64' });
    expect(out).toEqual({ image: `${REPO}:v1.2-rc_3`, tag: 'v1.2-rc_3', digest: DIGEST });
    const c = tools.docker.calls();
    expect(c.map((x) => x.argv)).toEqual([
      ['build', '--platform', 'linux/amd64', '-f', input.dockerfile, '-t', `${REPO}:v1.2-rc_3`, CTX],
      ['push', `${REPO}:v1.2-rc_3`],
      ['image', 'inspect', '--format', '{{json .RepoDigests}}', `${REPO}:v1.2-rc_3`],
    ]);
    const dir = c[0]!.env.DOCKER_CONFIG!;
    for (const x of c) expect(x.env.DOCKER_CONFIG).toBe(dir);
    expect(JSON.parse(c[1]!.files[join(dir, 'config.json')]!.content)).toEqual({ auths: { 'reg.example.com': { auth: b64(`cli:${PW}`) } } });
    expect(c[1]!.files[join(dir, 'config.json')]).toMatchObject({ mode: '600', dirMode: '700' });
    expect(existsSync(dir)).toBe(false);
  });

  it('docker without credentials: no DOCKER_CONFIG; no digest for this repository is an error', async () => {
    const saved = process.env.DOCKER_CONFIG;
    delete process.env.DOCKER_CONFIG;
    try {
      tools.docker.plan([{ when: ['inspect'], stdout: JSON.stringify([`other.example.com/x@${DIGEST}`]) }]);
      const err = await caught(images().buildAndPush({ ...input, builder: 'docker' }));
      expect(err.message).toBe(`docker push of ${REPO}:v1.2-rc_3 reported no digest for ${REPO}`);
      expect(tools.docker.calls().every((x) => x.env.DOCKER_CONFIG === undefined)).toBe(true);
      tools.docker.plan([{ when: ['inspect'], stdout: '' }]);
      expect((await caught(images().buildAndPush({ ...input, builder: 'docker' }))).message).toMatch(/reported no digest/);
    } finally {
      if (saved !== undefined) process.env.DOCKER_CONFIG = saved;
    }
  });

  it('refuses a repository with a tag, a digest or spaces, and a malformed tag, naming the field; nothing runs', async () => {
    for (const repository of ['', 'reg.example.com/team/agent:1', 'agent:1', 'reg.example.com/a b', 'reg.example.com/a@sha256']) {
      const err = await caught(images().buildAndPush({ ...input, repository }));
      expect(err.message).toBe(`repository: expected a repository without tag, e.g. registry.example.com/team/agent, got "${repository}"`);
      expect(err.code).toBe('bad_input');
    }
    for (const tag of ['', '-x', '.x', 'a b', 'a'.repeat(129), 'x:y']) {
      const err = await caught(images().buildAndPush({ ...input, tag }));
      expect(err.message).toBe(`tag: expected 1-128 characters [A-Za-z0-9_.-], got "${tag}"`);
    }
    expect(tools.buildah.calls()).toEqual([]);
  });

  it('accepts a registry with a port, a bare name, and 1- and 128-character tags', async () => {
    tools.buildah.plan([{ when: ['push'], digest: DIGEST }]);
    for (const [repository, tag] of [['localhost:5000/agent', 'a'], ['agent', '_'.repeat(128)], ['reg.example.com/agent', 'A9']]) {
      expect((await images().buildAndPush({ ...input, repository: repository!, tag: tag! })).image).toBe(`${repository}:${tag}`);
    }
  });
});

describe('environment and process handling', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('the tools get the allow-listed environment with BUILDAH_ISOLATION=chroot, never the bot’s tokens or a secret reference’s variable; stdin is /dev/null', async () => {
    Object.assign(process.env, { SLACK_BOT_TOKEN: 'xoxb-1-bot', RE_BOT_SECRET_KEY: 'k'.repeat(44), AWS_SESSION_TOKEN: 'spec-secret', AWS_REGION: 'eu-west-1', CONTAINERS_CONF: '/c' });
    tools.buildah.plan([{ stdout: '{}' }]);
    await images({ secretEnvNames: ['AWS_SESSION_TOKEN'] }).hasLocal('buildah', 'x:1');
    const c = tools.buildah.calls()[0]!;
    expect(c.env).toMatchObject({ BUILDAH_ISOLATION: 'chroot', AWS_REGION: 'eu-west-1', CONTAINERS_CONF: '/c', PATH: process.env.PATH });
    for (const k of ['SLACK_BOT_TOKEN', 'RE_BOT_SECRET_KEY', 'AWS_SESSION_TOKEN']) expect(c.env[k]).toBeUndefined();
    expect(c.stdin).toBe('device');
  });

  it('a call’s timeout kills the tool and says how long it waited; the work dir is removed', async () => {
    tools.buildah.plan([{ sleepMs: 5000 }]);
    const err = await caught(images({ auth: [AUTH] }).buildAndPush({ builder: 'buildah', contextDir: CTX, dockerfile: 'Dockerfile', repository: REPO, tag: 't' }, { timeoutMs: 600 }));
    expect(err.message).toBe('buildah bud timed out after 1s');
    expect(err.code).toBe('timeout');
    // the argv the adapter logged before starting buildah names the auth file (buildah itself may not have started yet)
    const bud = imageArgvLog[0]!;
    expect(existsSync(dirname(bud[bud.indexOf('--authfile') + 1]!))).toBe(false);
  });

  it('an abort while the tool runs: cancelled; an already aborted call starts nothing', async () => {
    tools.podman.plan([{ sleepMs: 5000 }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await caught(images().push({ builder: 'podman', image: 'x:1', destination: `${REPO}:1` }, { signal: ac.signal }));
    expect(err.message).toBe('podman push cancelled');
    expect(err.code).toBe('cancelled');
    const err2 = await caught(images().removeLocal('podman', 'x:1', { signal: ac.signal }));
    expect(err2.message).toBe('podman rmi cancelled');
    expect(err2.code).toBe('cancelled');
  });

  it('a missing tool: a clear error naming it', async () => {
    const saved = process.env.PATH;
    process.env.PATH = join(scratch, 'empty');
    try {
      const err = await caught(createImageAdapter().removeLocal('podman', 'x:1'));
      expect(err.message).toBe('podman not found on PATH (re-bot doctor shows what is missing)');
      expect(err.code).toBe('tool_missing');
    } finally {
      process.env.PATH = saved;
    }
  });

  it('available(): the builder’s version from PATH, or why it cannot be used', async () => {
    const saved = process.env.PATH;
    const node = dirname(process.execPath);
    try {
      tools.podman.plan([{ stdout: 'podman version 4.9.3\n' }]);
      process.env.PATH = `${dirname(tools.podman.path)}:${node}`;
      expect(await createImageAdapter().available('podman')).toEqual({ ok: true, version: '4.9.3' });
      process.env.PATH = join(scratch, 'empty');
      expect(await createImageAdapter().available('podman')).toEqual({ ok: false, reason: 'podman not found on PATH' });
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('a tool’s failure as the user sees it', () => {
  const fail = async (answer: { stdout?: string; stderr?: string; exit?: number }, o: ImageAdapterOptions = {}) => {
    tools.buildah.plan([{ exit: 1, ...answer }]);
    return (await caught(images(o).removeLocal('buildah', 'x:1'))) as Error & { code?: string };
  };

  it('the last "Error:" line, without its prefix; logfmt retries before it are left out', async () => {
    const err = await fail({ stderr: 'time="t" level=warning msg="retrying"\nError: first\nwarn\nerror: pushing: unauthorized\ntime="t" level=info msg="no error to report"\n' });
    expect(err.message).toBe('buildah rmi failed: pushing: unauthorized');
    expect(err.code).toBe('image_failed');
    expect((await fail({ stderr: 'ERROR something broke\n' })).message).toBe('buildah rmi failed: something broke');
  });

  it('an error line without a colon is still the one picked; "error" inside other text is kept', async () => {
    expect((await fail({ stderr: 'ERROR pushing failed\nlevel=info done\n' })).message).toBe('buildah rmi failed: pushing failed');
    expect((await fail({ stderr: 'a\nsome error: here\n' })).message).toBe('buildah rmi failed: a some error: here');
    expect((await fail({ stderr: 'Error:  two spaces\n' })).message).toBe('buildah rmi failed: two spaces');
  });

  it('no error line: the last two lines; nothing on stderr: stdout; nothing at all: the exit code', async () => {
    expect((await fail({ stderr: 'a\n  b  \n\nc\n' })).message).toBe('buildah rmi failed: b c');
    expect((await fail({ stdout: 'only on stdout\n' })).message).toBe('buildah rmi failed: only on stdout');
    expect((await fail({ exit: 3 })).message).toBe('buildah rmi failed: exit code 3');
  });

  it('registry credentials echoed by the tool are redacted; the text is capped at 600 characters', async () => {
    const err = await fail({ stderr: `Error: auth cli:${PW} refused ${b64(`cli:${PW}`)}\n` }, { auth: [AUTH] });
    expect(err.message).not.toContain(PW);
    expect(err.message).not.toContain(b64(`cli:${PW}`));
    expect(err.message).toMatch(/^buildah rmi failed: auth cli:\[REDACTED\] refused \[REDACTED\]$/);
    expect((await fail({ stderr: `Error: ${'x'.repeat(700)}` })).message).toBe(`buildah rmi failed: ${'x'.repeat(600)}`);
  });
});

describe('build (local image, directories left out) and labels', () => {
  it('buildah: --ignorefile with the context’s .dockerignore plus the excluded directories; labels from inspect', async () => {
    writeFileSync(join(CTX, '.dockerignore'), 'node_modules');
    try {
      tools.buildah.plan([{ when: ['inspect'], stdout: JSON.stringify({ OCIv1: { config: { Labels: { 'io.astronomer.docker.runtime.version': '3.1-2' } } } }) }]);
      const out = await images().build({ builder: 'buildah', contextDir: CTX, dockerfile: 'Dockerfile', image: 'localhost/s:1', platform: 'linux/amd64', exclude: ['dags/', 'tests//'] });
      expect(out).toEqual({ image: 'localhost/s:1', labels: { 'io.astronomer.docker.runtime.version': '3.1-2' } });
      const [bud, inspect] = tools.buildah.calls();
      const ignore = after(bud!, '--ignorefile');
      expect(bud!.argv).toEqual(['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '--platform', 'linux/amd64', '--ignorefile', ignore, '-f', join(CTX, 'Dockerfile'), '-t', 'localhost/s:1', CTX]);
      expect(bud!.files[ignore]).toMatchObject({ content: 'node_modules\ndags/\ntests/\n', mode: '600' });
      expect(inspect!.argv).toEqual(['--storage-driver', 'vfs', 'inspect', '--type', 'image', 'localhost/s:1']);
      expect(existsSync(ignore)).toBe(false);
    } finally {
      rmSync(join(CTX, '.dockerignore'));
    }
  });

  it('buildah: nothing excluded, no ignore file; an image without labels has {}', async () => {
    tools.buildah.plan([{ when: ['inspect'], stdout: JSON.stringify({ OCIv1: { config: { Labels: null } } }) }]);
    expect((await images().build({ builder: 'buildah', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:1' })).labels).toEqual({});
    expect(tools.buildah.calls()[0]!.argv).not.toContain('--ignorefile');
    tools.buildah.plan([{ when: ['inspect'], stdout: '{}' }]);
    expect((await images().build({ builder: 'buildah', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:1', exclude: [] })).labels).toEqual({});
  });

  it('podman: --ignorefile (a .dockerignore ending in a newline gets no blank line); labels through --format', async () => {
    writeFileSync(join(CTX, '.dockerignore'), '*.pyc\n');
    try {
      tools.podman.plan([{ when: ['inspect'], stdout: '{"a":"b"}\n' }]);
      const out = await images().build({ builder: 'podman', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:2', exclude: ['dags'] });
      expect(out.labels).toEqual({ a: 'b' });
      const [build, inspect] = tools.podman.calls();
      const ignore = after(build!, '--ignorefile');
      expect(build!.argv).toEqual(['build', '--ignorefile', ignore, '-f', join(CTX, 'Dockerfile'), '-t', 'i:2', CTX]);
      expect(build!.files[ignore]!.content).toBe('*.pyc\ndags/\n');
      expect(inspect!.argv).toEqual(['image', 'inspect', '--format', '{{json .Labels}}', 'i:2']);
      tools.podman.plan([{ when: ['inspect'], stdout: 'null' }]);
      expect((await images().build({ builder: 'podman', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:2' })).labels).toEqual({});
    } finally {
      rmSync(join(CTX, '.dockerignore'));
    }
  });

  it('docker: BuildKit, the Dockerfile copied next to its own <Dockerfile>.dockerignore; labels from .Config.Labels', async () => {
    tools.docker.plan([{ when: ['inspect'], stdout: '' }]);
    const out = await images().build({ builder: 'docker', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:3', platform: 'linux/amd64', exclude: ['dags'] });
    expect(out.labels).toEqual({});
    const [build, inspect] = tools.docker.calls();
    const df = after(build!, '-f');
    expect(build!.argv).toEqual(['build', '--platform', 'linux/amd64', '-f', df, '-t', 'i:3', CTX]);
    expect(df).not.toBe(join(CTX, 'Dockerfile'));
    expect(build!.files[df]!.content).toBe('FROM scratch\n');
    expect(build!.files[`${df}.dockerignore`]!.content).toBe('dags/\n');
    expect(build!.env.DOCKER_BUILDKIT).toBe('1');
    expect(inspect!.argv).toEqual(['image', 'inspect', '--format', '{{json .Config.Labels}}', 'i:3']);
    await images().build({ builder: 'docker', contextDir: CTX, dockerfile: 'Dockerfile', image: 'i:3' });
    expect(after(tools.docker.calls()[2]!, '-f')).toBe(join(CTX, 'Dockerfile'));
  });

  it('hasLocal: true when inspect answers, false when it fails', async () => {
    tools.docker.plan([{ when: ['gone:1'], exit: 1, stderr: 'Error: No such image' }, { stdout: '{}' }]);
    expect(await images().hasLocal('docker', 'here:1')).toBe(true);
    expect(await images().hasLocal('docker', 'gone:1')).toBe(false);
  });

  it('removeLocal: each builder’s own command', async () => {
    await images().removeLocal('buildah', 'i:1');
    await images().removeLocal('podman', 'i:1');
    await images().removeLocal('docker', 'i:1');
    expect(tools.buildah.calls()[0]!.argv).toEqual(['--storage-driver', 'vfs', 'rmi', 'i:1']);
    expect(tools.podman.calls()[0]!.argv).toEqual(['image', 'rm', 'i:1']);
    expect(tools.docker.calls()[0]!.argv).toEqual(['image', 'rm', 'i:1']);
  });
});

describe('push (a built image to its destination)', () => {
  const EXTRA = { registry: 'images.astronomer.cloud', username: 'cli', password: 'astro-api-token-PUSH-ONLY-99' };

  it('buildah: the push’s own credentials join the configured ones in the auth file, and are redacted from errors', async () => {
    tools.buildah.plan([{ digest: DIGEST }]);
    const dest = 'images.astronomer.cloud/org/dep:deploy-1';
    expect(await images({ auth: [AUTH] }).push({ builder: 'buildah', image: 'localhost/s:1', destination: dest, tlsVerify: false, auth: EXTRA })).toEqual({ digest: DIGEST });
    const c = tools.buildah.calls()[0]!;
    const authFile = after(c, '--authfile');
    expect(c.argv).toEqual(['--storage-driver', 'vfs', 'push', '--tls-verify=false', '--authfile', authFile, '--digestfile', join(dirname(authFile), 'digest'), 'localhost/s:1', `docker://${dest}`]);
    expect(JSON.parse(c.files[authFile]!.content)).toEqual({ auths: { 'reg.example.com': { auth: b64(`cli:${PW}`) }, 'images.astronomer.cloud': { auth: b64(`cli:${EXTRA.password}`) } } });
    expect(JSON.stringify(c.argv)).not.toContain(EXTRA.password);
    forgetAllSecrets();
    tools.buildah.plan([{ exit: 1, stderr: `Error: denied for ${EXTRA.password} ${b64(`cli:${EXTRA.password}`)}` }]);
    const err = await caught(images().push({ builder: 'buildah', image: 'localhost/s:1', destination: dest, auth: EXTRA }));
    expect(err.message).toBe('buildah push failed: denied for [REDACTED] [REDACTED]');
  });

  it('podman: no storage flags, TLS verified by default, no auth file without credentials', async () => {
    tools.podman.plan([{ digest: DIGEST }]);
    await images().push({ builder: 'podman', image: 'i:1', destination: 'reg.example.com/x:1' });
    const c = tools.podman.calls()[0]!;
    expect(c.argv).toEqual(['push', '--tls-verify=true', '--digestfile', after(c, '--digestfile'), 'i:1', 'docker://reg.example.com/x:1']);
  });

  it('docker: tag, push, and the digest of the destination repository (a registry port is not a tag)', async () => {
    const dest = 'localhost:5000/x/y:deploy-1';
    tools.docker.plan([{ when: ['inspect'], stdout: JSON.stringify([`localhost:5000/x/y@${DIGEST}`]) }]);
    expect(await images().push({ builder: 'docker', image: 'i:1', destination: dest, auth: EXTRA })).toEqual({ digest: DIGEST });
    const c = tools.docker.calls();
    expect(c.map((x) => x.argv)).toEqual([['tag', 'i:1', dest], ['push', dest], ['image', 'inspect', '--format', '{{json .RepoDigests}}', dest]]);
    for (const x of c) expect(JSON.parse(x.files[join(x.env.DOCKER_CONFIG!, 'config.json')]!.content).auths['images.astronomer.cloud']).toBeDefined();
    tools.docker.plan([{ when: ['inspect'], stdout: JSON.stringify([`localhost:5000/x/y-other@${DIGEST}`]) }]);
    expect((await caught(images().push({ builder: 'docker', image: 'i:1', destination: dest }))).message).toBe(`docker push of ${dest} reported no digest`);
  });
});

describe('remoteDigest (HEAD on the registry’s manifest)', () => {
  let server: Server;
  let host: string;
  let seen: IncomingMessage[] = [];
  let answer: (path: string) => { status: number; headers?: Record<string, string> } | 'hang' = () => ({ status: 404 });
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      const a = answer(req.url ?? '');
      if (a === 'hang') return;
      res.writeHead(a.status, a.headers ?? {}).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen = [];
  });

  it('the Docker-Content-Digest of the tag, with the manifest types accepted and Basic auth for that registry only', async () => {
    answer = () => ({ status: 200, headers: { 'docker-content-digest': DIGEST } });
    const a = images({ auth: [AUTH, { ...AUTH, registry: host, password: 'local-registry-pass-1' }] });
    expect(await a.remoteDigest(`${host}/acme/agent`, 'v1+b', { tlsVerify: false })).toBe(DIGEST);
    expect(seen[0]!.method).toBe('HEAD');
    expect(seen[0]!.url).toBe('/v2/acme/agent/manifests/v1%2Bb');
    expect(seen[0]!.headers.accept).toBe('application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json');
    expect(seen[0]!.headers.authorization).toBe(`Basic ${b64('cli:local-registry-pass-1')}`);
    await images({ auth: [AUTH] }).remoteDigest(`${host}/acme/agent`, 't', { tlsVerify: false });
    expect(seen[1]!.headers.authorization).toBeUndefined();
  });

  it('404 is "not there"; another status or no digest header is an error naming the registry and image', async () => {
    answer = (p) => (p.includes('/gone/') ? { status: 404 } : p.includes('/bad/') ? { status: 500 } : { status: 200 });
    const a = images();
    expect(await a.remoteDigest(`${host}/gone/x`, 't', { tlsVerify: false })).toBeNull();
    const e1 = await caught(a.remoteDigest(`${host}/bad/x`, 't', { tlsVerify: false }));
    expect(e1.message).toBe(`registry ${host} answered HTTP 500 for bad/x:t`);
    expect(e1.code).toBe('registry_failed');
    const e2 = await caught(a.remoteDigest(`${host}/ok/x`, 't', { tlsVerify: false }));
    expect(e2.message).toBe(`registry ${host} sent no Docker-Content-Digest for ok/x:t`);
  });

  it('TLS unless turned off: a plain-HTTP registry is not read over http by default', async () => {
    answer = () => ({ status: 200, headers: { 'docker-content-digest': DIGEST } });
    const err = await caught(images().remoteDigest(`${host}/acme/agent`, 't', { timeoutMs: 5000 }));
    expect(err.code).toBe('registry_unreachable');
    expect(seen.every((r) => r.method !== 'HEAD')).toBe(true);
  });

  it('a registry that does not answer: timed out; an abort: cancelled; nothing listening: the cause', async () => {
    answer = () => 'hang';
    const e1 = await caught(images().remoteDigest(`${host}/acme/agent`, 't', { tlsVerify: false, timeoutMs: 300 }));
    expect(e1.message).toBe(`reading ${host}/acme/agent:t from the registry failed: timed out`);
    expect(e1.code).toBe('registry_unreachable');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const e2 = await caught(images().remoteDigest(`${host}/acme/agent`, 't', { tlsVerify: false, signal: ac.signal }));
    expect(e2.message).toBe(`reading ${host}/acme/agent:t from the registry failed: cancelled`);
    const closed = `127.0.0.1:${await freePort()}`;
    const e3 = await caught(images().remoteDigest(`${closed}/acme/agent`, 't', { tlsVerify: false }));
    expect(e3.message).toBe(`reading ${closed}/acme/agent:t from the registry failed: connect ECONNREFUSED ${closed}`);
  });

  it('a token-authenticated registry (401): skopeo inspect with the auth file; "manifest unknown" is "not there"', async () => {
    answer = () => ({ status: 401 });
    const a = images({ auth: [{ ...AUTH, registry: host }] });
    tools.skopeo.plan([{ when: [`docker://${host}/acme/agent:t1`], stdout: JSON.stringify({ Digest: DIGEST }) }, { when: [`docker://${host}/acme/agent:t2`], stdout: '{}' }, { when: [`docker://${host}/acme/agent:t5`], exit: 1, stderr: 'Error: reading manifest t5 in x: not found' }, { exit: 1, stderr: 'FATA[0000] Error: manifest unknown' }]);
    expect(await a.remoteDigest(`${host}/acme/agent`, 't1', { tlsVerify: false })).toBe(DIGEST);
    const c = tools.skopeo.calls()[0]!;
    const authFile = after(c, '--authfile');
    expect(c.argv).toEqual(['inspect', '--tls-verify=false', '--authfile', authFile, `docker://${host}/acme/agent:t1`]);
    expect(JSON.parse(c.files[authFile]!.content)).toEqual({ auths: { [host]: { auth: b64(`cli:${PW}`) } } });
    expect(await a.remoteDigest(`${host}/acme/agent`, 't2', { tlsVerify: false })).toBeNull();
    expect(await a.remoteDigest(`${host}/acme/agent`, 't3', { tlsVerify: false })).toBeNull();
    expect(await a.remoteDigest(`${host}/acme/agent`, 't5', { tlsVerify: false })).toBeNull();
    tools.skopeo.plan([{ exit: 1, stderr: 'Error: unauthorized: authentication required' }]);
    const err = await caught(images().remoteDigest(`${host}/acme/agent`, 't4', { tlsVerify: false }));
    expect(err.message).toBe('skopeo inspect failed: unauthorized: authentication required');
    expect(tools.skopeo.calls().at(-1)!.argv).toEqual(['inspect', '--tls-verify=false', `docker://${host}/acme/agent:t4`]);
  });
});

describe('splitRepository', () => {
  it('a first segment with a dot, a port or localhost is the registry; anything else is Docker Hub', () => {
    expect(splitRepository('reg.example.com/a/b')).toEqual({ host: 'reg.example.com', name: 'a/b' });
    expect(splitRepository('reg:5000/a')).toEqual({ host: 'reg:5000', name: 'a' });
    expect(splitRepository('localhost/a')).toEqual({ host: 'localhost', name: 'a' });
    expect(splitRepository('team/a/b')).toEqual({ host: 'registry-1.docker.io', name: 'team/a/b' });
    expect(splitRepository('reg.example.com')).toEqual({ host: 'registry-1.docker.io', name: 'library/reg.example.com' });
  });
});
