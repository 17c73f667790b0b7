import { createHash } from 'node:crypto';
import { asc, desc } from 'drizzle-orm';
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

/** Append-only: each row's hash covers the previous row's hash. Runs in a transaction so the chain never forks. */
export function appendAudit(store: Store, e: AuditInput, at = new Date()): Row {
  return store.sqlite.transaction(() => {
    const last = store.db.select({ hash: auditEvents.hash }).from(auditEvents).orderBy(desc(auditEvents.seq)).limit(1).get();
    const prevHash = last?.hash ?? GENESIS;
    const r = {
      at: at.toISOString(), actor: e.actor, action: e.action, jobId: e.jobId ?? null, deployment: e.deployment ?? null,
      valuesHash: e.valuesHash ?? null, decision: e.decision ?? null, result: e.result ?? null, details: e.details ?? null,
    };
    return store.db.insert(auditEvents).values({ ...r, prevHash, hash: rowHash(prevHash, r) }).returning().get();
  }).immediate();
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
