/** The agent tokens re-bot created (ids, names, expiry; never values) on PostgreSQL: src/store/agent-tokens.ts, async. */
import { and, desc, eq, isNull } from 'drizzle-orm';
import type { AgentTokenRow } from '../agent-tokens.ts';
import type { PgExec } from './jobs.ts';
import { agentTokens } from './schema.ts';

type Row = typeof agentTokens.$inferSelect;
const toRow = (r: Row, withDeleted: boolean): AgentTokenRow => ({
  id: r.id, deployment: r.deployment, name: r.name, createdAt: r.createdAt, ...(r.endAt ? { endAt: r.endAt } : {}), ...(r.jobId ? { jobId: r.jobId } : {}),
  ...(withDeleted && r.deletedAt ? { deletedAt: r.deletedAt } : {}),
});

/** Idempotent: the same token reported twice (a relayed event, a resumed step) is one row. */
export async function recordAgentTokenPg(db: PgExec, t: { id: string; deployment: string; name: string; endAt?: string; jobId?: string }, at = new Date().toISOString()): Promise<void> {
  await db.insert(agentTokens).values({ id: t.id, deployment: t.deployment, name: t.name, endAt: t.endAt ?? null, jobId: t.jobId ?? null, createdAt: at })
    .onConflictDoUpdate({ target: agentTokens.id, set: { name: t.name, endAt: t.endAt ?? null } });
}

export async function markAgentTokenDeletedPg(db: PgExec, id: string, at = new Date().toISOString()): Promise<void> {
  await db.update(agentTokens).set({ deletedAt: at }).where(and(eq(agentTokens.id, id), isNull(agentTokens.deletedAt)));
}

/** The newest token of the deployment that re-bot has not deleted: the one its agents use. */
export async function liveAgentTokenPg(db: PgExec, deployment: string): Promise<AgentTokenRow | undefined> {
  const [r] = await db.select().from(agentTokens).where(and(eq(agentTokens.deployment, deployment), isNull(agentTokens.deletedAt)))
    .orderBy(desc(agentTokens.createdAt), desc(agentTokens.id)).limit(1);
  return r && toRow(r, false);
}

export async function agentTokenRowsPg(db: PgExec, deployment: string): Promise<AgentTokenRow[]> {
  return (await db.select().from(agentTokens).where(eq(agentTokens.deployment, deployment)).orderBy(desc(agentTokens.createdAt))).map((r) => toRow(r, true));
}
