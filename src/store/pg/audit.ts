/**
 * The audit log's hash chain on PostgreSQL (the same rows and hashes as src/store/audit.ts). Replicas append
 * concurrently: each append takes the transaction-scoped advisory lock AUDIT_LOCK, then reads the last hash and
 * inserts, so the chain never forks and `seq` order is chain order.
 */
import { asc, desc, sql } from 'drizzle-orm';
import { GENESIS, rowHash, type AuditInput } from '../audit.ts';
import type { PgDb } from './open.ts';
import { auditEvents } from './schema.ts';

type Row = typeof auditEvents.$inferSelect;

/** pg_advisory_xact_lock key of audit appends ("audit" in ASCII hex); must never change */
export const AUDIT_LOCK = 0x6175646974;

export async function appendAuditPg(db: PgDb, e: AuditInput, at = new Date()): Promise<Row> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`);
    const [last] = await tx.select({ hash: auditEvents.hash }).from(auditEvents).orderBy(desc(auditEvents.seq)).limit(1);
    const prevHash = last?.hash ?? GENESIS;
    const r = {
      at: at.toISOString(), actor: e.actor, action: e.action, jobId: e.jobId ?? null, deployment: e.deployment ?? null,
      valuesHash: e.valuesHash ?? null, decision: e.decision ?? null, result: e.result ?? null, details: e.details ?? null,
    };
    const [row] = await tx.insert(auditEvents).values({ ...r, prevHash, hash: rowHash(prevHash, r) }).returning();
    return row!;
  });
}

export async function verifyAuditChainPg(db: PgDb): Promise<{ ok: true; count: number } | { ok: false; brokenAtSeq: number; reason: string }> {
  let prev = GENESIS;
  let count = 0;
  for (const r of await db.select().from(auditEvents).orderBy(asc(auditEvents.seq))) {
    if (r.prevHash !== prev) return { ok: false, brokenAtSeq: r.seq, reason: 'prev_hash does not match previous row' };
    if (rowHash(prev, r) !== r.hash) return { ok: false, brokenAtSeq: r.seq, reason: 'row content does not match its hash' };
    prev = r.hash;
    count++;
  }
  return { ok: true, count };
}
