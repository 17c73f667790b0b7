/**
 * A throwaway PostgreSQL cluster per test file: `initdb` into a temp dir, `pg_ctl start` on 127.0.0.1 at a free
 * port (Unix socket in the temp dir, nothing in /var/run), trust auth, fsync off. Stopped with
 * `pg_ctl stop -m immediate` by `stop()` (afterAll) and by a process-exit hook if the file dies first.
 *
 * PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user (Debian's package
 * creates it), the temp dir is chown'ed to it, and initdb/pg_ctl run through `runuser -u postgres --` (argv, no
 * shell). Binaries: initdb/pg_ctl/postgres from one directory: RE_BOT_PG_BIN, else PATH, else the newest
 * /usr/lib/postgresql/N/bin.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

const BINARIES = ['initdb', 'pg_ctl', 'postgres'] as const;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const hasAll = (dir: string) => BINARIES.every((b) => executable(join(dir, b)));

/** The directory holding initdb, pg_ctl and postgres, or null. RE_BOT_PG_BIN, when set, is the only place looked. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.RE_BOT_PG_BIN) return hasAll(env.RE_BOT_PG_BIN) ? env.RE_BOT_PG_BIN : null;
  for (const d of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const initdb = join(d, 'initdb');
    if (!executable(initdb)) continue;
    // /usr/local/bin/initdb may be a symlink into /usr/lib/postgresql/N/bin: its siblings live there
    const real = dirname(realpathSync(initdb));
    if (hasAll(real)) return real;
    if (hasAll(d)) return d;
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (hasAll(join(root, v, 'bin'))) return join(root, v, 'bin');
  return null;
}

const isRoot = () => process.getuid?.() === 0;

function userIds(name: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

/** Why a cluster cannot be started here (for test/support/tools.ts), or null when it can. */
export function postgresMissing(): string | null {
  if (!postgresBinDir()) return process.env.RE_BOT_PG_BIN ? `no initdb/pg_ctl/postgres in RE_BOT_PG_BIN=${process.env.RE_BOT_PG_BIN}` : 'no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin (or set RE_BOT_PG_BIN)';
  if (isRoot() && !userIds('postgres')) return 'running as root and there is no postgres user to run the server';
  if (isRoot() && !executable('/usr/sbin/runuser') && !executable('/sbin/runuser')) return 'running as root without runuser';
  return null;
}

/** a port free on 127.0.0.1 right now (also the chaos replicas' ports, test/e2e/replicas.ts) */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** As root, the postgres user must reach the temp dir: a TMPDIR under /root (0700) falls back to /tmp. */
function clusterTempBase(): string {
  const base = tmpdir();
  if (!isRoot()) return base;
  for (let d = base; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return '/tmp';
    if (dirname(d) === d) return base;
  }
}

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** the temp dir holding the data directory, socket and server log; removed by stop() */
  dir: string;
  /** URL of database `name` on this cluster */
  urlFor(name: string): string;
  /** creates an empty database and returns its URL */
  createDatabase(name: string): Promise<string>;
  stop(): void;
}

export interface PgClusterOptions {
  /**
   * keep fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults) instead of off: for
   * benchmarks, whose commits must be as durable as a real server's. These are server-start options, which
   * ALTER SYSTEM cannot override.
   */
  durable?: boolean;
}

/** Starts a cluster; call `stop()` in afterAll (the exit hook is only the safety net). */
export async function startPostgres(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const missing = postgresMissing();
  if (missing) throw new Error(`cannot start PostgreSQL: ${missing}`);
  const bin = postgresBinDir()!;
  const dir = mkdtempSync(join(clusterTempBase(), 're-bot-pg-'));
  const data = join(dir, 'data');
  const asPostgres = isRoot();
  if (asPostgres) {
    const ids = userIds('postgres')!;
    chownSync(dir, ids.uid, ids.gid);
  }
  const run = (tool: string, args: string[]) => {
    const [file, argv] = asPostgres ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    // cwd: the postgres user may not be allowed into the repo's directory
    return execFileSync(file, argv, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  };
  const port = await freePort();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', stop);
    try {
      run('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30']);
    } catch {
      // not running (start failed) or already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
    // -o is split into words by pg_ctl: the temp dir path has no spaces (mkdtemp under tmpdir)
    const fast = opts.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
    const serverOptions = `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1${fast} -c max_connections=100`;
    run('pg_ctl', ['start', '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', serverOptions]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    stop();
    throw new Error(`PostgreSQL test cluster did not start: ${e.stderr || e.message}`);
  }
  const urlFor = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`;
  return {
    url: urlFor('postgres'),
    port,
    dir,
    urlFor,
    async createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`test database name must be a plain identifier: ${name}`);
      // imported here: test/support/tools.ts loads this file for every test that checks its tools
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: urlFor('postgres'), connectionTimeoutMillis: 10_000 });
      await c.connect();
      try {
        await c.query(`create database ${name}`);
      } finally {
        await c.end();
      }
      return urlFor(name);
    },
    stop,
  };
}
