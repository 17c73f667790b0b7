import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cachedReads } from '../../src/app/status-cache.ts';

const dir = mkdtempSync(join(tmpdir(), 'status-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(name: string, o: { ttlMs?: number; staleMs?: number; now?: () => number } = {}) {
  const file = join(dir, `${name}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE jobs (deployment TEXT, state TEXT)');
  db.prepare('INSERT INTO jobs VALUES (?, ?)').run('prod', 'running');
  const other = new Database(file); // the job worker's connection
  const reads: string[] = [];
  const status = cachedReads(db, (d) => {
    reads.push(d);
    return (db.prepare('SELECT state FROM jobs WHERE deployment = ?').get(d) as { state: string } | undefined)?.state;
  }, o);
  return { db, other, reads, status };
}

describe('status reads reused between commits', () => {
  it('answers a repeated question from the first read while the store is unchanged', () => {
    const { reads, status } = setup('same');
    expect([status('prod'), status('prod'), status('prod'), status('dev')]).toEqual(['running', 'running', 'running', undefined]);
    expect(reads).toEqual(['prod', 'dev']);
  });

  it('reads again after another process commits (the worker finishing a job), once the report is staleMs old', () => {
    let t = 0;
    const { other, reads, status } = setup('other', { now: () => t });
    expect(status('prod')).toBe('running');
    other.prepare("UPDATE jobs SET state = 'succeeded'").run();
    t = 249; // a burst of asks while the worker commits every few ms: one read
    expect(status('prod')).toBe('running');
    t = 250;
    expect(status('prod')).toBe('succeeded');
    expect(reads).toEqual(['prod', 'prod']);
    // unchanged since: reused up to ttlMs (2 s)
    t = 2249;
    expect(status('prod')).toBe('succeeded');
    expect(reads).toHaveLength(2);
  });

  it('reads again at once after this process commits (a decision taken here)', () => {
    const t = 0;
    const { db, status } = setup('own', { now: () => t });
    expect(status('prod')).toBe('running');
    db.prepare("UPDATE jobs SET state = 'cancelled'").run();
    expect(status('prod')).toBe('cancelled');
  });

  it('reads again once the report is older than ttlMs (expiry texts count from now)', () => {
    let t = 0;
    const { reads, status } = setup('ttl', { ttlMs: 2000, now: () => t });
    status('prod');
    t = 1999;
    status('prod');
    t = 2000;
    status('prod');
    expect(reads).toEqual(['prod', 'prod']);
  });

  it('shares a pending async read between askers, and reads again after a failed one', async () => {
    const db = new Database(join(dir, 'async.db'));
    let n = 0;
    const status = cachedReads(db, async (d) => {
      n++;
      if (n === 1) throw new Error('database unreachable');
      return `${d}:${n}`;
    });
    await expect(status('prod')).rejects.toThrow('database unreachable');
    const [a, b] = [status('prod'), status('prod')];
    expect(a).toBe(b);
    expect(await a).toBe('prod:2');
    expect(n).toBe(2);
    db.close();
  });

  it('without a SQLite handle (PostgreSQL) reuses a report for ttlMs only, then reads again', () => {
    let t = 0;
    let state = 'running';
    const reads: string[] = [];
    const status = cachedReads(null, (d) => { reads.push(d); return state; }, { ttlMs: 1000, now: () => t });
    expect(status('prod')).toBe('running');
    state = 'succeeded'; // committed by another replica: not visible here until the TTL passes
    t = 999;
    expect(status('prod')).toBe('running');
    t = 1000;
    expect(status('prod')).toBe('succeeded');
    expect(reads).toEqual(['prod', 'prod']);
  });
});
