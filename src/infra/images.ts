/**
 * Images adapter: build and push with buildah (default: vfs storage + chroot isolation, which works as root
 * without a daemon), docker or podman, always via execa argv arrays. Registry credentials never go to argv:
 * they are written to a 0600 auth file in a 0700 temp dir (`--authfile`, or DOCKER_CONFIG for docker).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { RedactedError, redact, registerSecret } from '../redact.ts';
import { findTool, probeTool } from './tools.ts';
import { childSlot } from './child-limit.ts';
import { childEnv } from './child-env.ts';
import type { CallOptions, ImageAdapter, ImageBuildInput, ImageLocalBuildInput, ImagePushInput } from './types.ts';

export interface RegistryAuth {
  /** registry host, e.g. images.example.com or 127.0.0.1:5000 */
  registry: string;
  username: string;
  password: string;
}

export interface ImageAdapterOptions {
  auth?: RegistryAuth[];
  buildTimeoutMs?: number;
  pushTimeoutMs?: number;
  /** tool paths, default: found on PATH */
  paths?: Partial<Record<'buildah' | 'docker' | 'podman' | 'skopeo', string>>;
  /** variables named by the spec's `{ env: NAME }` secret references: kept out of the tools' environment */
  secretEnvNames?: string[];
}

/** Every argv an image tool was started with (tests assert no credential reaches it). */
export const imageArgvLog: string[][] = [];

const BUILD_TIMEOUT_MS = 20 * 60_000;
const PUSH_TIMEOUT_MS = 10 * 60_000;
const INSPECT_TIMEOUT_MS = 30_000;

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Split "host[:port]/path/name" into registry host and repository name (Docker Hub rules otherwise). */
export function splitRepository(repository: string): { host: string; name: string } {
  const [first, ...rest] = repository.split('/');
  if (rest.length && (first!.includes('.') || first!.includes(':') || first === 'localhost')) return { host: first!, name: rest.join('/') };
  return { host: 'registry-1.docker.io', name: rest.length ? repository : `library/${repository}` };
}

const BUILDER_CHECK: Record<ImageBuildInput['builder'], string> = {
  buildah: 'buildah',
  docker: 'docker',
  podman: 'podman',
};

export function createImageAdapter(options: ImageAdapterOptions = {}): ImageAdapter {
  for (const a of options.auth ?? []) registerSecret(a.password, { variantsWith: [`${a.username}:`] });

  function bin(name: 'buildah' | 'docker' | 'podman' | 'skopeo'): string {
    const p = options.paths?.[name] ?? findTool(name);
    if (!p) throw new RedactedError(`${name} not found on PATH (re-bot doctor shows what is missing)`, 'tool_missing');
    return p;
  }

  async function run(action: string, tool: string, args: string[], timeoutMs: number, opts: CallOptions = {}, env: Record<string, string> = {}): Promise<string> {
    imageArgvLog.push([tool, ...args]);
    if (opts.signal?.aborted) throw new RedactedError(`${action} cancelled`, 'cancelled');
    const release = await childSlot(action, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? timeoutMs });
    const r = await execa(tool, args, {
      timeout: opts.timeoutMs ?? timeoutMs,
      cancelSignal: opts.signal,
      forceKillAfterDelay: 5_000,
      reject: false,
      stdin: 'ignore',
      extendEnv: false,
      env: childEnv({ BUILDAH_ISOLATION: 'chroot', ...env }, { drop: options.secretEnvNames }),
      maxBuffer: 64 * 1024 * 1024,
    }).finally(release);
    if (r.isCanceled) throw new RedactedError(`${action} cancelled`, 'cancelled');
    if (r.timedOut) throw new RedactedError(`${action} timed out after ${Math.round((opts.timeoutMs ?? timeoutMs) / 1000)}s`, 'timeout');
    if (r.exitCode !== 0) {
      const lines = String(r.stderr || r.stdout).split('\n').map((l) => l.trim()).filter(Boolean);
      // the final "Error: ..." line says what went wrong; logfmt warnings before it repeat retries
      const errorLine = lines.filter((l) => /^error:?/i.test(l)).pop();
      const text = (errorLine ?? lines.slice(-2).join(' ')).replace(/^error:?\s*/i, '');
      throw new RedactedError(`${action} failed: ${redact(text).slice(0, 600) || `exit code ${r.exitCode}`}`, 'image_failed');
    }
    return String(r.stdout ?? '');
  }

  /** A temp dir with auth.json (0600) holding the configured credentials (plus `extra`); removed after fn. */
  async function withWorkDir<T>(fn: (dir: string, authFile: string | null) => Promise<T>, extra: RegistryAuth[] = []): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 're-bot-image-'));
    try {
      let authFile: string | null = null;
      const all = [...(options.auth ?? []), ...extra];
      if (all.length) {
        const auths = Object.fromEntries(all.map((a) => [a.registry, { auth: Buffer.from(`${a.username}:${a.password}`).toString('base64') }]));
        authFile = join(dir, 'config.json');
        await writeFile(authFile, JSON.stringify({ auths }), { mode: 0o600, flag: 'wx' });
      }
      return await fn(dir, authFile);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async function readDigest(file: string): Promise<string> {
    const digest = (await readFile(file, 'utf8')).trim();
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new RedactedError(`push reported no usable digest (got "${digest.slice(0, 80)}")`, 'image_failed');
    return digest;
  }

  async function buildAndPush(input: ImageBuildInput, opts?: CallOptions): Promise<{ image: string; tag: string; digest: string }> {
    const lastSegment = input.repository.split('/').pop() ?? '';
    if (!input.repository || /[\s@]/.test(input.repository) || lastSegment.includes(':') || (!input.repository.includes('/') && input.repository.includes(':'))) {
      throw new RedactedError(`repository: expected a repository without tag, e.g. registry.example.com/team/agent, got "${input.repository}"`, 'bad_input');
    }
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(input.tag)) {
      throw new RedactedError(`tag: expected 1-128 characters [A-Za-z0-9_.-], got "${input.tag}"`, 'bad_input');
    }
    const image = `${input.repository}:${input.tag}`;
    const tls = `--tls-verify=${input.tlsVerify ?? true}`;
    const platform = input.platform ? ['--platform', input.platform] : [];
    return withWorkDir(async (dir, authFile) => {
      const digestFile = join(dir, 'digest');
      const auth = authFile ? ['--authfile', authFile] : [];
      if (input.builder === 'buildah') {
        const b = bin('buildah');
        const storage = ['--storage-driver', 'vfs'];
        await run('buildah bud', b, [...storage, 'bud', '--isolation', 'chroot', ...platform, ...auth, '-f', input.dockerfile, '-t', image, input.contextDir], BUILD_TIMEOUT_MS, opts);
        await run('buildah push', b, [...storage, 'push', tls, ...auth, '--digestfile', digestFile, image, `docker://${image}`], PUSH_TIMEOUT_MS, opts);
        return { image, tag: input.tag, digest: await readDigest(digestFile) };
      }
      if (input.builder === 'podman') {
        const p = bin('podman');
        await run('podman build', p, ['build', ...platform, ...auth, '-f', input.dockerfile, '-t', image, input.contextDir], BUILD_TIMEOUT_MS, opts);
        await run('podman push', p, ['push', tls, ...auth, '--digestfile', digestFile, image, `docker://${image}`], PUSH_TIMEOUT_MS, opts);
        return { image, tag: input.tag, digest: await readDigest(digestFile) };
      }
      // docker reads credentials from $DOCKER_CONFIG/config.json; an insecure registry must be configured in the daemon
      const d = bin('docker');
      const env: Record<string, string> = authFile ? { DOCKER_CONFIG: dir } : {};
      await run('docker build', d, ['build', ...platform, '-f', input.dockerfile, '-t', image, input.contextDir], BUILD_TIMEOUT_MS, opts, env);
      await run('docker push', d, ['push', image], PUSH_TIMEOUT_MS, opts, env);
      const repoDigests = await run('docker image inspect', d, ['image', 'inspect', '--format', '{{json .RepoDigests}}', image], INSPECT_TIMEOUT_MS, opts, env);
      const match = (JSON.parse(repoDigests || '[]') as string[]).find((r) => r.startsWith(`${input.repository}@`));
      if (!match) throw new RedactedError(`docker push of ${image} reported no digest for ${input.repository}`, 'image_failed');
      return { image, tag: input.tag, digest: match.split('@')[1]! };
    });
  }

  async function remoteDigest(repository: string, tag: string, opts: CallOptions & { tlsVerify?: boolean } = {}): Promise<string | null> {
    const { host, name } = splitRepository(repository);
    const scheme = opts.tlsVerify === false ? 'http' : 'https';
    const url = `${scheme}://${host}/v2/${name}/manifests/${encodeURIComponent(tag)}`;
    const cred = options.auth?.find((a) => a.registry === host);
    const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
    if (cred) headers.Authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? INSPECT_TIMEOUT_MS), ...(opts.signal ? [opts.signal] : [])];
    let res: Response;
    try {
      res = await fetch(url, { method: 'HEAD', headers, signal: AbortSignal.any(signals), redirect: 'follow' });
    } catch (err) {
      const reason = opts.signal?.aborted ? 'cancelled' : (err as Error).name === 'TimeoutError' ? 'timed out' : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
      throw new RedactedError(`reading ${host}/${name}:${tag} from the registry failed: ${reason}`, 'registry_unreachable');
    }
    if (res.status === 404) return null;
    if (res.status === 401 && (options.paths?.skopeo ?? findTool('skopeo'))) return skopeoDigest(repository, tag, opts);
    if (!res.ok) throw new RedactedError(`registry ${host} answered HTTP ${res.status} for ${name}:${tag}`, 'registry_failed');
    const digest = res.headers.get('docker-content-digest');
    if (!digest) throw new RedactedError(`registry ${host} sent no Docker-Content-Digest for ${name}:${tag}`, 'registry_failed');
    return digest;
  }

  /** Token-authenticated registries: let skopeo do the auth dance with our auth file. */
  async function skopeoDigest(repository: string, tag: string, opts: CallOptions & { tlsVerify?: boolean }): Promise<string | null> {
    return withWorkDir(async (_dir, authFile) => {
      try {
        const out = await run('skopeo inspect', bin('skopeo'), ['inspect', `--tls-verify=${opts.tlsVerify ?? true}`, ...(authFile ? ['--authfile', authFile] : []), `docker://${repository}:${tag}`], INSPECT_TIMEOUT_MS, opts);
        return (JSON.parse(out) as { Digest?: string }).Digest ?? null;
      } catch (err) {
        if (/manifest unknown|not found/i.test((err as Error).message)) return null;
        throw err;
      }
    });
  }

  /** The context's .dockerignore plus `exclude` (top-level directories), as an ignore file in `dir`. */
  async function ignoreFileWith(contextDir: string, exclude: string[], file: string): Promise<void> {
    const own = await readFile(join(contextDir, '.dockerignore'), 'utf8').catch(() => '');
    await writeFile(file, `${own}${own && !own.endsWith('\n') ? '\n' : ''}${exclude.map((d) => `${d.replace(/\/+$/, '')}/\n`).join('')}`, { mode: 0o600 });
  }

  async function labelsOf(builder: ImageBuildInput['builder'], image: string, opts?: CallOptions): Promise<Record<string, string>> {
    if (builder === 'buildah') {
      // buildah's --format has no json function before 1.30: read the whole inspect document
      const out = await run('buildah inspect', bin('buildah'), ['--storage-driver', 'vfs', 'inspect', '--type', 'image', image], INSPECT_TIMEOUT_MS, opts);
      const doc = JSON.parse(out) as { OCIv1?: { config?: { Labels?: Record<string, string> | null } } };
      return doc.OCIv1?.config?.Labels ?? {};
    }
    const [tool, args] = builder === 'podman'
      ? [bin('podman'), ['image', 'inspect', '--format', '{{json .Labels}}', image]]
      : [bin('docker'), ['image', 'inspect', '--format', '{{json .Config.Labels}}', image]];
    const out = (await run(`${builder} inspect`, tool, args, INSPECT_TIMEOUT_MS, opts)).trim();
    const parsed = out && out !== 'null' ? (JSON.parse(out) as Record<string, string> | null) : null;
    return parsed ?? {};
  }

  async function build(input: ImageLocalBuildInput, opts?: CallOptions): Promise<{ image: string; labels: Record<string, string> }> {
    const platform = input.platform ? ['--platform', input.platform] : [];
    return withWorkDir(async (dir) => {
      const exclude = input.exclude ?? [];
      const ignore = join(dir, 'dockerignore');
      if (exclude.length) await ignoreFileWith(input.contextDir, exclude, ignore);
      const ignoreArgs = exclude.length ? ['--ignorefile', ignore] : [];
      if (input.builder === 'buildah') {
        await run('buildah bud', bin('buildah'), ['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', ...platform, ...ignoreArgs, '-f', join(input.contextDir, input.dockerfile), '-t', input.image, input.contextDir], BUILD_TIMEOUT_MS, opts);
      } else if (input.builder === 'podman') {
        await run('podman build', bin('podman'), ['build', ...platform, ...ignoreArgs, '-f', join(input.contextDir, input.dockerfile), '-t', input.image, input.contextDir], BUILD_TIMEOUT_MS, opts);
      } else {
        // BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile it is given
        let dockerfile = join(input.contextDir, input.dockerfile);
        if (exclude.length) {
          dockerfile = join(dir, 'Dockerfile');
          await writeFile(dockerfile, await readFile(join(input.contextDir, input.dockerfile)));
          await ignoreFileWith(input.contextDir, exclude, `${dockerfile}.dockerignore`);
        }
        await run('docker build', bin('docker'), ['build', ...platform, '-f', dockerfile, '-t', input.image, input.contextDir], BUILD_TIMEOUT_MS, opts, { DOCKER_BUILDKIT: '1' });
      }
      return { image: input.image, labels: await labelsOf(input.builder, input.image, opts) };
    });
  }

  async function hasLocal(builder: ImageBuildInput['builder'], image: string, opts?: CallOptions): Promise<boolean> {
    return labelsOf(builder, image, opts).then(() => true, () => false);
  }

  async function push(input: ImagePushInput, opts?: CallOptions): Promise<{ digest: string }> {
    if (input.auth) registerSecret(input.auth.password, { variantsWith: [`${input.auth.username}:`] });
    const tls = `--tls-verify=${input.tlsVerify ?? true}`;
    return withWorkDir(async (dir, authFile) => {
      const auth = authFile ? ['--authfile', authFile] : [];
      const digestFile = join(dir, 'digest');
      if (input.builder === 'buildah' || input.builder === 'podman') {
        const storage = input.builder === 'buildah' ? ['--storage-driver', 'vfs'] : [];
        await run(`${input.builder} push`, bin(input.builder), [...storage, 'push', tls, ...auth, '--digestfile', digestFile, input.image, `docker://${input.destination}`], PUSH_TIMEOUT_MS, opts);
        return { digest: await readDigest(digestFile) };
      }
      const d = bin('docker');
      const env: Record<string, string> = authFile ? { DOCKER_CONFIG: dir } : {};
      await run('docker tag', d, ['tag', input.image, input.destination], INSPECT_TIMEOUT_MS, opts, env);
      await run('docker push', d, ['push', input.destination], PUSH_TIMEOUT_MS, opts, env);
      const repoDigests = await run('docker image inspect', d, ['image', 'inspect', '--format', '{{json .RepoDigests}}', input.destination], INSPECT_TIMEOUT_MS, opts, env);
      const repo = input.destination.replace(/:[^:/]+$/, '');
      const match = (JSON.parse(repoDigests || '[]') as string[]).find((r) => r.startsWith(`${repo}@`));
      if (!match) throw new RedactedError(`docker push of ${input.destination} reported no digest`, 'image_failed');
      return { digest: match.split('@')[1]! };
    }, input.auth ? [input.auth] : []);
  }

  async function removeLocal(builder: ImageBuildInput['builder'], image: string, opts?: CallOptions): Promise<void> {
    const [tool, args] = builder === 'buildah' ? [bin('buildah'), ['--storage-driver', 'vfs', 'rmi', image]] : [bin(builder), ['image', 'rm', image]];
    await run(`${builder} rmi`, tool, args, INSPECT_TIMEOUT_MS, opts);
  }

  return {
    build,
    hasLocal,
    push,
    removeLocal,
    async available(builder) {
      const s = await probeTool(BUILDER_CHECK[builder] as 'buildah' | 'docker' | 'podman');
      return s.version ? { ok: true, version: s.version } : { ok: false, reason: s.reason };
    },
    buildAndPush,
    remoteDigest,
  };
}
