/**
 * Approval votes and the per-deployment lock on PostgreSQL are the database's unique constraints, not process
 * memory: two replicas receiving the same Slack click both try to insert, one row results.
 */
import { approvalVotes } from './schema.ts';
import type { PgDb } from './open.ts';

/** PostgreSQL's unique_violation; `constraint` names the index (drizzle wraps driver errors in `cause`). */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  for (let e = err as { code?: string; constraint?: string; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.code === '23505') return constraint === undefined || e.constraint === constraint;
  }
  return false;
}

export const DEPLOYMENT_LOCK_CONSTRAINT = 'jobs_one_active_per_deployment';

/** Records `user`'s vote on the approval once: false when that user's vote was already there (the first one stands). */
export async function recordVote(db: PgDb, v: { approvalId: string; user: string; decision: string; at: string }): Promise<boolean> {
  const r = await db.insert(approvalVotes).values(v).onConflictDoNothing({ target: [approvalVotes.approvalId, approvalVotes.user] })
    .returning({ user: approvalVotes.user });
  return r.length === 1;
}
