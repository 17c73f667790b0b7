import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * There is no container engine (and no Docker Hub) here, so the image is never built in tests. This reads the
 * Dockerfile instead: the properties the manifests rely on, and that everything it COPYs exists and is not
 * excluded by .dockerignore (the usual way such a file breaks silently).
 */
const root = join(import.meta.dirname, '..', '..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const ignore = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Instructions with line continuations joined, split into stages at each FROM. */
function stages(): Array<{ from: string; platform?: string; name?: string; lines: string[] }> {
  const joined = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Array<{ from: string; platform?: string; name?: string; lines: string[] }> = [];
  for (const line of joined) {
    const m = /^FROM\s+(--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (m) out.push({ from: m[3], platform: m[2], name: m[4], lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

describe('Dockerfile (read, not built: no container engine here)', () => {
  const all = stages();
  const final = all.at(-1)!;

  it('is multi-stage on node:20-slim, pinned to linux/amd64 (the only architecture of the packaged helm)', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const s of all) {
      expect(s.from).toBe('node:20-slim');
      expect(s.platform).toBe('linux/amd64');
    }
  });

  it('the helm stage installs dev dependencies and runs the same tool extraction as development', () => {
    const tools = all.find((s) => s.name === 'tools')!;
    const run = tools.lines.filter((l) => l.startsWith('RUN')).join(' ');
    expect(run).toMatch(/npm ci(?![^&]*--omit=dev)/);
    expect(run).toContain('node scripts/install-tools.mjs');
    expect(final.lines).toContain('COPY --from=tools /src/.tools/bin/helm /usr/local/bin/helm');
  });

  it('the final stage installs production dependencies only and runs as a numeric non-root user', () => {
    expect(final.lines.some((l) => l.startsWith('RUN') && /npm ci --omit=dev/.test(l))).toBe(true);
    const user = final.lines.filter((l) => l.startsWith('USER')).at(-1);
    expect(user).toMatch(/^USER [1-9]\d*(:[1-9]\d*)?$/);
    // node itself, with the Slack process's launch flag (src/app/heap.ts SLACK_PROCESS_NODE_FLAGS), running the compiled bin
    expect(final.lines).toContain('ENTRYPOINT ["node", "--max-semi-space-size=4", "bin/re-bot.mjs"]');
    expect(final.lines).toContain('CMD ["start"]');
  });

  it('compiles dist/ in a build stage; the final stage runs it, with no sources and no TypeScript toolchain', () => {
    const build = all.find((s) => s.name === 'build')!;
    expect(build, 'a stage named build').toBeDefined();
    const run = build.lines.filter((l) => l.startsWith('RUN')).join(' ');
    expect(run).toMatch(/npm ci(?![^&]*--omit=dev)/); // typescript is a dev dependency
    expect(run).toContain('node scripts/build.mjs');
    expect(build.lines).toContain('COPY src/ src/');
    expect(final.lines).toContain('COPY --from=build /src/dist/ dist/');
    expect(final.lines.some((l) => /^COPY (src|tsconfig)/.test(l)), 'no sources in the image').toBe(false);
    expect(final.lines).toContain('COPY migrations/ migrations/'); // read at runtime from the package root
    expect(final.lines).toContain('COPY migrations-pg/ migrations-pg/'); // the PostgreSQL store's, beside them
    expect(ignore).toContain('dist'); // a local build never leaks into the context: the image builds its own
  });

  it('points helm and the HOME-relative caches at /tmp, the only writable path besides /data', () => {
    const env = final.lines.filter((l) => l.startsWith('ENV')).join(' ');
    for (const v of ['RE_BOT_HELM=/usr/local/bin/helm', 'HOME=/tmp', 'HELM_CACHE_HOME=/tmp/', 'HELM_CONFIG_HOME=/tmp/', 'HELM_DATA_HOME=/tmp/', 'RE_BOT_DB=/data/re-bot.db', 'RE_BOT_HTTP_PORT=8080']) {
      expect(env).toContain(v);
    }
  });

  it('every COPY source from the build context exists and is not excluded by .dockerignore', () => {
    const sources = all
      .flatMap((s) => s.lines)
      .filter((l) => l.startsWith('COPY') && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'scripts/', 'bin/', 'src/']));
    for (const src of sources) {
      const name = src.replace(/\/$/, '');
      expect(ignore, `${src} is excluded by .dockerignore`).not.toContain(name);
      if (name === 'migrations' && !existsSync(join(root, name))) continue; // created by the store's drizzle-kit step
      expect(existsSync(join(root, name)), `${src} exists`).toBe(true);
    }
    // what must never reach the image
    for (const secretish of ['.env', 'data', '*.db', 'node_modules', '.git']) expect(ignore).toContain(secretish);
  });
});

/** a child process, awaited without blocking the test worker (vitest's RPC would time out) */
function run(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeout: number }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), o.timeout);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

/** newest .ts under dir */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * What `npm ci --omit=dev` installs (the final stage): no tsx, no typescript; and the compiled CLI runs on
 * that tree alone. Installs from the registry (npm's cache makes it quick); skipped when it is unreachable.
 */
describe('production install tree', () => {
  it('has no tsx or typescript, and `re-bot` runs from dist/ without them', { timeout: 420_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rebot-prod-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(root, f), join(dir, f));
      const npm = await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, timeout: 300_000 });
      if (npm.status !== 0 && /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|network/i.test(npm.stderr)) {
        console.warn(`skipped: the npm registry is not reachable (${npm.stderr.trim().split('\n').at(-1)})`);
        return;
      }
      expect(npm.status, npm.stderr).toBe(0);
      for (const dev of ['tsx', 'typescript', 'vitest', 'esbuild']) expect(existsSync(join(dir, 'node_modules', dev)), `node_modules/${dev}`).toBe(false);
      expect(existsSync(join(dir, 'node_modules', '@slack', 'bolt'))).toBe(true);

      // dist/ as the image's build stage makes it: this checkout's build when it is current, else a fresh one
      const built = join(root, 'dist', '.built');
      if (existsSync(built) && statSync(built).mtimeMs >= newestSource(join(root, 'src'))) cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
      else {
        const tsc = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { timeout: 300_000 });
        expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
        writeFileSync(join(dir, 'dist', '.built'), 'test\n');
      }
      cpSync(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
      cpSync(join(root, 'migrations'), join(dir, 'migrations'), { recursive: true });
      cpSync(join(root, 'migrations-pg'), join(dir, 'migrations-pg'), { recursive: true });

      const env = { PATH: process.env.PATH ?? '', HOME: dir };
      const help = await run(process.execPath, ['bin/re-bot.mjs', '--help'], { cwd: dir, env, timeout: 60_000 });
      expect(help.stderr).toBe('');
      expect(help.status).toBe(0);
      expect(help.stdout).toContain('re-bot start');
      // `start` loads the whole bot (Bolt, the store, the Slack handlers) before reading its settings: a
      // missing module or a `.ts` import left in dist/ would fail here, not with the config error
      const start = await run(process.execPath, ['bin/re-bot.mjs', 'start'], { cwd: dir, env, timeout: 60_000 });
      expect(start.stderr).toMatch(/SLACK_BOT_TOKEN/);
      expect(start.status).toBe(2);
      // the compiled PostgreSQL store finds migrations-pg/ where the image puts it (beside migrations/, at /app)
      const pgPath = await run(process.execPath, ['--input-type=module', '-e', `const m = await import('./dist/store/pg/open.js'); console.log(m.MIGRATIONS_PG)`], { cwd: dir, env, timeout: 60_000 });
      expect(pgPath.stderr).toBe('');
      expect(pgPath.stdout.trim()).toBe(join(realpathSync(dir), 'migrations-pg'));
      expect(existsSync(join(pgPath.stdout.trim(), 'meta', '_journal.json'))).toBe(true);
      const noTs = await run('grep', ['-rlE', `(from |import\\()["'][^"']*\\.ts["']`, join(dir, 'dist')], { timeout: 30_000 });
      expect(noTs.stdout, 'emitted JavaScript importing .ts files').toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
