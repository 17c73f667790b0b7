/**
 * A real local image registry (tests and `npm run demo`): Debian's `docker-registry serve <config.yml>` on 127.0.0.1 with an
 * ephemeral port and a temp storage dir; with `auth`, it takes only that user (htpasswd). `startRegistry()` waits until `/v2/` answers; `stop()` kills it
 * and removes the storage.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { bcryptHash } from './bcrypt.ts';

export const REGISTRY_BIN = process.env.RE_BOT_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export interface LocalRegistry {
  /** host:port, e.g. 127.0.0.1:41234 */
  host: string;
  url: string;
  /** Docker-Content-Digest of name:tag read over HTTP, or null on 404 */
  manifestDigest(name: string, tag: string): Promise<string | null>;
  stop(): Promise<void>;
}

export function registryAvailable(): boolean {
  return existsSync(REGISTRY_BIN);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface RegistryOptions {
  timeoutMs?: number;
  /** the only user and password the registry accepts (htpasswd, bcrypt), as the Astro registry takes `cli` + an API token */
  auth?: { username: string; password: string };
}

export async function startRegistry(opts: RegistryOptions | number = {}): Promise<LocalRegistry> {
  const { timeoutMs = 15_000, auth } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const dir = await mkdtemp(join(tmpdir(), 're-bot-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  const htpasswd = join(dir, 'htpasswd');
  if (auth) await writeFile(htpasswd, `${auth.username}:${bcryptHash(auth.password, 5)}\n`, { mode: 0o600 });
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(auth ? ['auth:', '  htpasswd:', '    realm: re-bot-local-registry', `    path: ${htpasswd}`] : []),
      '',
    ].join('\n'),
  );
  const child: ResultPromise = execa(REGISTRY_BIN, ['serve', config], { reject: false, stdin: 'ignore', forceKillAfterDelay: 2_000 });
  let output = '';
  child.stderr?.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-4000)));
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;

  const stop = async () => {
    child.kill('SIGTERM');
    await child;
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null && child.exitCode !== undefined) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry exited early: ${output}`);
    }
    try {
      const r = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
      if (r.status === 200 || (auth && r.status === 401)) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer /v2/ within ${timeoutMs}ms: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    host,
    url,
    async manifestDigest(name, tag) {
      const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
      if (auth) headers.Authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
      const r = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: 'HEAD', headers, signal: AbortSignal.timeout(5_000) });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`registry HEAD manifest ${name}:${tag}: HTTP ${r.status}`);
      return r.headers.get('docker-content-digest');
    },
    stop,
  };
}
