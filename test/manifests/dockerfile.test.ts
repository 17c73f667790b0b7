import { existsSync, readFileSync } from 'node:fs';
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
    expect(final.lines).toContain('ENTRYPOINT ["node", "bin/re-bot.mjs"]');
    expect(final.lines).toContain('CMD ["start"]');
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
