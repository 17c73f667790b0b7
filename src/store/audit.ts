import { createHash } from 'node:crypto';
import { asc } from 'drizzle-orm';
import type { Store } from './db.ts';
import { auditEvents } from './schema.ts';

export interface AuditInput {
  actor: string;
  action: string;
  jobId?: string;
  deployment?: string;
  valuesHash?: string;
  decision?: string;
  result?: string;
  details?: Record<string, unknown>;
}
type Row = typeof auditEvents.$inferSelect;

export const GENESIS = '0'.repeat(64);

export function rowHash(prevHash: string, r: Omit<Row, 'seq' | 'prevHash' | 'hash'>): string {
  const body = JSON.stringify([prevHash, r.at, r.actor, r.action, r.jobId ?? null, r.deployment ?? null,
    r.valuesHash ?? null, r.decision ?? null, r.result ?? null, r.details ?? null]);
  return createHash('sha256').update(body).digest('hex');
}

/**
 * The append's two statements, prepared once per DB handle: every refused click writes a row, and drizzle
 * rebuilt and re-prepared both statements on every append (most of a refused click's cost, BENCHMARKS.md).
 */
const appenders = new WeakMap<Store['sqlite'], (e: AuditInput, at: Date) => Row>();
function appender(store: Store): (e: AuditInput, at: Date) => Row {
  let append = appenders.get(store.sqlite);
  if (append) return append;
  const last = store.sqlite.prepare('SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1').pluck();
  const insert = store.sqlite.prepare(`INSERT INTO audit_events (at, actor, action, job_id, deployment, values_hash, decision, result, details, prev_hash, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const tx = store.sqlite.transaction((e: AuditInput, at: Date): Row => {
    const prevHash = (last.get() as string | undefined) ?? GENESIS;
    const r = {
      at: at.toISOString(), actor: e.actor, action: e.action, jobId: e.jobId ?? null, deployment: e.deployment ?? null,
      valuesHash: e.valuesHash ?? null, decision: e.decision ?? null, result: e.result ?? null, details: e.details ?? null,
    };
    const hash = rowHash(prevHash, r);
    // details as drizzle's json mode stores it: JSON text, or NULL
    const { lastInsertRowid } = insert.run(r.at, r.actor, r.action, r.jobId, r.deployment, r.valuesHash, r.decision, r.result, r.details === null ? null : JSON.stringify(r.details), prevHash, hash);
    return { seq: Number(lastInsertRowid), ...r, details: r.details === null ? null : JSON.parse(JSON.stringify(r.details)), prevHash, hash };
  });
  append = (e, at) => tx.immediate(e, at);
  appenders.set(store.sqlite, append);
  return append;
}

/** Append-only: each row's hash covers the previous row's hash. Runs in a transaction so the chain never forks. */
export function appendAudit(store: Store, e: AuditInput, at = new Date()): Row {
  return appender(store)(e, at);
}

export function verifyAuditChain(store: Store): { ok: true; count: number } | { ok: false; brokenAtSeq: number; reason: string } {
  let prev = GENESIS;
  let count = 0;
  for (const r of store.db.select().from(auditEvents).orderBy(asc(auditEvents.seq)).all()) {
    if (r.prevHash !== prev) return { ok: false, brokenAtSeq: r.seq, reason: 'prev_hash does not match previous row' };
    if (rowHash(prev, r) !== r.hash) return { ok: false, brokenAtSeq: r.seq, reason: 'row content does not match its hash' };
    prev = r.hash;
    count++;
  }
  return { ok: true, count };
}

export function exportAudit(store: Store, filter: { jobId?: string } = {}): Row[] {
  const rows = store.db.select().from(auditEvents).orderBy(asc(auditEvents.seq)).all();
  return filter.jobId ? rows.filter((r) => r.jobId === filter.jobId) : rows;
}
