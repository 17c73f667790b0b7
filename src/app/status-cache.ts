/**
 * `/re status` answers come in bursts (a channel asking about the same few deployments while setups run), and
 * between two commits to the store every answer for a deployment is the same. A report is reused while the DB
 * is unchanged — `data_version` moves on a commit by another connection (the job worker, a CLI command),
 * `total_changes()` on one by this connection — and for at most `ttlMs`, since a report's expiry texts count
 * from now. A commit by another connection is seen within `staleMs` (250 ms), one by this connection at once.
 * Reading both is one tiny statement; a report is a handful of queries and JSON parses.
 *
 * PostgreSQL has no `data_version`: with `db` null (the runtime on RE_BOT_DATABASE_URL) a report is reused for
 * `ttlMs` only, so a reply can be that much older than a commit made on another replica. There the answer is one
 * statement (src/store/pg/status.ts), and the cache still makes a burst of identical asks cost one read.
 */
import type { Database } from 'better-sqlite3';

export interface StatusCacheOptions {
  /** longest a report is reused (default 2 s) */
  ttlMs?: number;
  /**
   * how long a report is reused although another connection (the job worker) committed since (default 250 ms):
   * with 20 jobs running the worker commits every few milliseconds, and a burst of asks about the same
   * deployments read the store again for each ask (a tenth of the Slack process's CPU under load: BENCHMARKS.md)
   */
  staleMs?: number;
  /** most reports kept for one DB state (default 500) */
  max?: number;
  now?: () => number;
}

export function cachedReads<R>(db: Database | null, read: (key: string) => R, o: StatusCacheOptions = {}): (key: string) => R {
  const ttlMs = o.ttlMs ?? 2000;
  const staleMs = Math.min(o.staleMs ?? 250, ttlMs);
  const max = o.max ?? 500;
  const now = o.now ?? Date.now;
  const state = db?.prepare('SELECT data_version AS v, total_changes() AS c FROM pragma_data_version');
  let ownChanges: number | undefined;
  const cache = new Map<string, { at: number; version: number; value: R }>();
  return (key) => {
    const s = state?.get() as { v: number; c: number } | undefined;
    // a commit on this connection (a decision taken here) shows at once
    if (s && s.c !== ownChanges) {
      cache.clear();
      ownChanges = s.c;
    }
    const version = s?.v ?? 0;
    const t = now();
    const hit = cache.get(key);
    if (hit && t - hit.at < (hit.version === version ? ttlMs : staleMs)) return hit.value;
    const value = read(key);
    if (cache.size >= max) cache.clear();
    cache.set(key, { at: t, version, value });
    // an async read (the repository) is shared while pending; a failed one is not reused: the next ask reads again
    if (value instanceof Promise) value.catch(() => { if (cache.get(key)?.value === value) cache.delete(key); });
    return value;
  };
}
