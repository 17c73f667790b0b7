/**
 * `re-bot status|history|cancel|retry` as a user runs them: the real CLI binary against DBs seeded through
 * the real engine. Every error names the DB path and what to do; usage/config errors exit 2, refused
 * operations exit 1; never a stack trace; the read-only commands never create a DB.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { fakeSpec, makeEngine } from '../jobs/helpers.ts';
import { reBot, scratch, seedDb, STACK } from './support.ts';

const me = `cli:${userInfo().username}`;

describe('a DB that is not there or not re-bot\'s: exit 2, one line naming the path, nothing created', () => {
  const dir = scratch('baddb');
  const missing = join(dir, 'nowhere', 're-bot.db');
  const garbage = join(dir, 'garbage.db');
  const foreign = join(dir, 'foreign.db');
  beforeAll(() => {
    mkdirSync(join(dir, 'adir'));
    writeFileSync(garbage, 'this is not sqlite at all, just some text that is long enough\n'.repeat(4));
    const f = new Database(foreign);
    f.exec('CREATE TABLE notes (x TEXT)');
    f.close();
  });
  const cases: Array<{ what: string; db: string; says: RegExp }> = [
    { what: 'RE_BOT_DB set but empty', db: '', says: /RE_BOT_DB is set but empty: set it to the SQLite file, e\.g\. \.\/data\/re-bot\.db/ },
    { what: 'a directory', db: join(dir, 'adir'), says: new RegExp(`${join(dir, 'adir')} \\(from RE_BOT_DB\\) is a directory, not a SQLite file: point RE_BOT_DB at the DB file`) },
    { what: 'a missing file', db: missing, says: new RegExp(`no re-bot database at ${missing} \\(from RE_BOT_DB\\): run \`re-bot run <spec.yaml>\` or \`re-bot demo\` first, or point RE_BOT_DB at the DB`) },
    { what: 'a file that is not SQLite', db: garbage, says: new RegExp(`${garbage} \\(from RE_BOT_DB\\) is not a SQLite database: point RE_BOT_DB at re-bot's DB file`) },
    { what: 'another program\'s SQLite DB', db: foreign, says: new RegExp(`${foreign} \\(from RE_BOT_DB\\) is a SQLite database but not a re-bot one \\(missing tables: __drizzle_migrations, deployments, jobs`) },
  ];
  // every case through `status`; the missing DB through each command (none may create it)
  const runs = [...cases.map((c) => ({ ...c, cmd: 'status' })), ...['history', 'cancel', 'retry'].map((cmd) => ({ ...cases[2], cmd }))];
  {
    it.each(runs)('$cmd: $what', async ({ cmd, db, says }) => {
      const r = await reBot([cmd, 'demo'], { RE_BOT_DB: db });
      expect(r.code, r.out).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^re-bot ${cmd}: ${says.source}`));
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.out).not.toMatch(STACK);
      expect(r.stdout).toBe('');
    }, 90_000);
  }

  it('the missing DB and its directory were not created; the other files were not changed into DBs', () => {
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(['adir', 'foreign.db', 'garbage.db']);
    expect(readdirSync(join(dir, 'adir'))).toEqual([]);
  });

  it('RE_BOT_DATABASE_URL set: the SQLite-only CLI commands refuse with exit 2 naming it (it is the bot\'s store), the URL and its password never echoed, no DB created', async () => {
    const cwd = scratch('pgurl');
    for (const cmd of ['status', 'history']) {
      const r = await reBot([cmd, 'demo'], { RE_BOT_DB: undefined, RE_BOT_DATABASE_URL: 'postgres://rebot:pw-S3cretValue@db.internal:5432/rebot' }, cwd);
      expect(r.code, r.out).toBe(2);
      expect(r.stderr).toMatch(/RE_BOT_DATABASE_URL: is set, but this command works on a SQLite file \(RE_BOT_DB\) only; .*`re-bot start`.* Unset RE_BOT_DATABASE_URL/);
      expect(r.out).not.toContain('S3cretValue');
      expect(r.out).not.toMatch(STACK);
    }
    expect(readdirSync(cwd)).toEqual([]);
  }, 90_000);

  it('without RE_BOT_DB the default ./data/re-bot.db is named, relative to where re-bot runs, and not created', async () => {
    const cwd = scratch('nodb');
    const r = await reBot(['history', 'demo'], { RE_BOT_DB: undefined }, cwd);
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toContain(`no re-bot database at ${join(cwd, 'data', 're-bot.db')} (default ./data/re-bot.db; set RE_BOT_DB to use another)`);
    expect(readdirSync(cwd)).toEqual([]);
  }, 90_000);
});

describe('status and history of a DB with jobs', () => {
  let db: string;
  let ids: Record<string, string>;
  beforeAll(async () => {
    ({ path: db, ids } = await seedDb(scratch('read'), { waiting: 'demo', broken: 'sales' }));
  });

  it('status says which DB it read, then the deployment', async () => {
    const r = await reBot(['status', 'demo'], { RE_BOT_DB: db });
    expect(r.code, r.out).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`Database ${db}`);
    expect(r.stdout).toContain(`Deployment demo: job ${ids.demo} waiting_approval (attempt 1), requested by cli:alice`);
    expect(r.stdout).toContain(`lock: held by job ${ids.demo} (waiting_approval`);
  }, 90_000);

  it('status of an unknown deployment lists the known ones, nearest first (exit 2: a usage error)', async () => {
    const r = await reBot(['status', 'nosuch'], { RE_BOT_DB: db });
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toBe(`re-bot status: unknown deployment "nosuch" in ${db}. Known deployments: demo, sales\n`);
    const near = await reBot(['status', 'dmeo'], { RE_BOT_DB: db });
    expect(near.stderr).toContain('Known deployments: demo, sales');
  }, 90_000);

  it('an empty re-bot DB says no deployments are recorded there', async () => {
    const { path } = await seedDb(scratch('emptydb'));
    const r = await reBot(['status', 'demo'], { RE_BOT_DB: path });
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toContain(`unknown deployment "demo": no deployments are recorded in ${path} yet. Run \`re-bot run <spec.yaml>\` or \`re-bot demo\` first`);
  }, 90_000);

  it('history lists the jobs newest first with state, attempt, requester, error and approval decisions', async () => {
    const r = await reBot(['history', 'demo'], { RE_BOT_DB: db });
    expect(r.code, r.out).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`Database ${db}`);
    expect(lines[1]).toBe('Deployment demo: 1 job(s), newest first');
    expect(lines[2]).toMatch(new RegExp(`^  ${ids.demo}  waiting_approval  attempt 1  requested by cli:alice  created \\S+Z$`));
    expect(lines[3]).toMatch(/approval "helm upgrade --install astro-agent": pending \(0\/1 approval\(s\), expires \S+\) \[a1b2c3d4e5f6\]/);

    const failed = await reBot(['history', 'sales'], { RE_BOT_DB: db });
    expect(failed.stdout).toMatch(new RegExp(`${ids.sales}  failed  attempt 1  requested by cli:alice  created \\S+  finished \\S+`));
    expect(failed.stdout).toContain('error: Step b: helm upgrade failed: context deadline exceeded');

    const unknown = await reBot(['history', 'nosuch'], { RE_BOT_DB: db });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`unknown deployment "nosuch" in ${db}. Known deployments:`);
  }, 90_000);

  it('reading does not write: the DB file is unchanged byte for byte', async () => {
    const before = readdirSync(join(db, '..')).sort();
    const bytes = new Database(db, { readonly: true }).serialize();
    await reBot(['history', 'demo'], { RE_BOT_DB: db });
    expect(new Database(db, { readonly: true }).serialize().equals(bytes)).toBe(true);
    expect(readdirSync(join(db, '..')).sort()).toEqual(before);
  }, 90_000);
});

describe('cancel and retry', () => {
  let db: string;
  let ids: Record<string, string>;
  beforeAll(async () => {
    ({ path: db, ids } = await seedDb(scratch('write'), { waiting: 'demo', broken: 'sales', done: 'ops' }));
  });

  it('a job left waiting for approval is cancelled by deployment name; the lock is free for a changed spec', async () => {
    const r = await reBot(['cancel', 'demo'], { RE_BOT_DB: db });
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toContain(`cancelled job ${ids.demo} (deployment demo) as ${me}; it was waiting approval`);
    expect(r.stdout).toContain('Deployment demo is unlocked: `re-bot run <spec.yaml>` starts a new job');

    const status = await reBot(['status', 'demo'], { RE_BOT_DB: db });
    expect(status.stdout).toContain(`job ${ids.demo} cancelled`);
    expect(status.stdout).toContain('lock: free');

    const { store, engine } = makeEngine([], { path: db });
    try {
      const audit = store.sqlite.prepare("SELECT actor, result FROM audit_events WHERE action = 'job.cancelled' AND job_id = ?").all(ids.demo);
      expect(audit).toEqual([{ actor: me, result: 'cancelled' }]);
      const fresh = await engine.submit({ spec: { ...fakeSpec('demo'), changed: true } as never, requestedBy: { id: 'cli:alice' }, origin: { kind: 'cli' } });
      expect(fresh.state).toBe('queued');
      await engine.cancel(fresh.id, { id: 'cli:alice' });
    } finally {
      store.close();
    }
  }, 90_000);

  it('nothing to cancel: a finished job says so (exit 1)', async () => {
    const again = await reBot(['cancel', ids.demo], { RE_BOT_DB: db });
    expect(again.code, again.out).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`nothing to cancel: job ${ids.demo} \\(deployment demo\\) is already cancelled \\(cancelled by ${me} at \\S+\\); it holds no lock`));
    const done = await reBot(['cancel', 'ops'], { RE_BOT_DB: db });
    expect(done.code).toBe(1);
    expect(done.stderr).toMatch(new RegExp(`nothing to cancel: job ${ids.ops} \\(deployment ops\\) already succeeded at \\S+; it holds no lock`));
    expect(done.out).not.toMatch(STACK);
  }, 90_000);

  it('retry of a failed job by a short id prefix queues attempt 2 and locks the deployment; retrying again is refused', async () => {
    const prefix = ids.sales.slice('job_'.length, 'job_'.length + 8);
    const r = await reBot(['retry', prefix], { RE_BOT_DB: db });
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toContain(`queued ${ids.sales} (deployment sales) for attempt 2 as ${me}; it resumes at step 2. Step b.`);
    const status = await reBot(['status', 'sales'], { RE_BOT_DB: db });
    expect(status.stdout).toContain(`job ${ids.sales} queued (attempt 2)`);
    expect(status.stdout).toContain(`lock: held by job ${ids.sales} (queued`);

    const again = await reBot(['retry', 'sales'], { RE_BOT_DB: db });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`job ${ids.sales} (deployment sales) is queued: only failed or cancelled jobs can be retried. Wait for it, or cancel it first with \`re-bot cancel sales\``);

    const ok = await reBot(['retry', 'ops'], { RE_BOT_DB: db });
    expect(ok.code).toBe(1);
    expect(ok.stderr).toContain(`nothing to retry: job ${ids.ops} (deployment ops) already succeeded`);
  }, 90_000);

  it('an unknown job or deployment is a usage error listing the known deployments', async () => {
    for (const cmd of ['cancel', 'retry']) {
      const r = await reBot([cmd, 'job_ffffffff'], { RE_BOT_DB: db });
      expect(r.code, r.out).toBe(2);
      expect(r.stderr).toBe(`re-bot ${cmd}: unknown job or deployment "job_ffffffff" in ${db}. Known deployments: demo, ops, sales\n`);
    }
    const usage = await reBot(['cancel'], { RE_BOT_DB: db });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: re-bot cancel <deployment|job-id>');
  }, 90_000);
});

describe('the lock message says how to release the lock', () => {
  it('a second job on a locked deployment is refused naming the holder, `re-bot cancel` and `/re cancel`', async () => {
    const { store, engine } = makeEngine([]);
    try {
      const first = await engine.submit({ spec: fakeSpec('demo'), requestedBy: { id: 'cli:alice' }, origin: { kind: 'cli' } });
      await expect(engine.submit({ spec: fakeSpec('demo'), requestedBy: { id: 'cli:bob' }, origin: { kind: 'cli' } })).rejects.toThrow(
        new RegExp(`^deployment demo is locked by job ${first.id} \\(requested by cli:alice, queued since \\S+\\)\\. Wait for it, or release it with \`re-bot cancel demo\` \\(CLI\\) or \`/re cancel demo\` \\(Slack\\); a job waiting for approval also expires after RE_BOT_APPROVAL_TTL_HOURS`),
      );
    } finally {
      store.close();
    }
  });
});

describe('help', () => {
  it('lists history, cancel, retry, run --out and the exit codes', async () => {
    const r = await reBot(['--help'], {});
    expect(r.code).toBe(0);
    for (const usage of ['re-bot run <spec.yaml> [--yes] [--out DIR]', 're-bot history <deployment> [--limit N]', 're-bot cancel <deployment|job-id>', 're-bot retry <deployment|job-id>']) expect(r.stdout).toContain(usage);
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 failed/cancelled/refused, 2 usage/spec/config error');
    const one = await reBot(['cancel', '--help'], {});
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('Usage: re-bot cancel <deployment|job-id>');
  }, 90_000);
});
