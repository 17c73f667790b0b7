/** The agent tokens re-bot created (ids, names, expiry; never values), as jobs report them in step outputs. */
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Store } from './db.ts';
import { agentTokens } from './schema.ts';

export interface AgentTokenRow {
  id: string;
  deployment: string;
  name: string;
  endAt?: string;
  jobId?: string;
  createdAt: string;
  deletedAt?: string;
}

/** Idempotent: the same token reported twice (a relayed event, a resumed step) is one row. */
export function recordAgentToken(store: Store, t: { id: string; deployment: string; name: string; endAt?: string; jobId?: string }, at = new Date().toISOString()): void {
  store.db.insert(agentTokens).values({ id: t.id, deployment: t.deployment, name: t.name, endAt: t.endAt ?? null, jobId: t.jobId ?? null, createdAt: at })
    .onConflictDoUpdate({ target: agentTokens.id, set: { name: t.name, endAt: t.endAt ?? null } }).run();
}

export function markAgentTokenDeleted(store: Store, id: string, at = new Date().toISOString()): void {
  store.db.update(agentTokens).set({ deletedAt: at }).where(and(eq(agentTokens.id, id), isNull(agentTokens.deletedAt))).run();
}

/** The newest token of the deployment that re-bot has not deleted: the one its agents use. */
export function liveAgentToken(store: Store, deployment: string): AgentTokenRow | undefined {
  let q = liveQueries.get(store);
  if (!q) liveQueries.set(store, (q = prepareLive(store)));
  const r = q.get({ deployment });
  if (!r) return undefined;
  return { id: r.id, deployment: r.deployment, name: r.name, createdAt: r.createdAt, ...(r.endAt ? { endAt: r.endAt } : {}), ...(r.jobId ? { jobId: r.jobId } : {}) };
}

export function agentTokenRows(store: Store, deployment: string): AgentTokenRow[] {
  return store.db.select().from(agentTokens).where(eq(agentTokens.deployment, deployment)).orderBy(desc(agentTokens.createdAt)).all()
    .map((r) => ({ id: r.id, deployment: r.deployment, name: r.name, createdAt: r.createdAt, ...(r.endAt ? { endAt: r.endAt } : {}), ...(r.jobId ? { jobId: r.jobId } : {}), ...(r.deletedAt ? { deletedAt: r.deletedAt } : {}) }));
}

/** `/re status` warns this long before the token expires */
export const EXPIRY_WARNING_DAYS = 14;

/** "expires … (in N days)", with a warning from EXPIRY_WARNING_DAYS before the end (and after it). */
export function expiryText(endAt: string | undefined, now = Date.now()): { text: string; warning?: string } {
  if (!endAt) return { text: 'never expires' };
  const ms = Date.parse(endAt) - now;
  const days = Math.floor(ms / 86_400_000);
  if (ms <= 0) return { text: `expired ${endAt}`, warning: `the agent token expired on ${endAt.slice(0, 10)}: the agents cannot connect; rotate it with /re rotate-token` };
  const text = `expires ${endAt} (in ${days} day${days === 1 ? '' : 's'})`;
  return ms <= EXPIRY_WARNING_DAYS * 86_400_000 ? { text, warning: `the agent token expires in ${days} day${days === 1 ? '' : 's'} (${endAt.slice(0, 10)}); rotate it with /re rotate-token` } : { text };
}

// prepared once per store: `/re status` reads it on every answer, and drizzle would otherwise rebuild and
// re-prepare the query each time (≈ 70 % of a status answer's CPU in a bench profile)
function prepareLive(store: Store) {
  return store.db.select().from(agentTokens).where(and(eq(agentTokens.deployment, sql.placeholder('deployment')), isNull(agentTokens.deletedAt)))
    .orderBy(desc(agentTokens.createdAt), desc(agentTokens.id)).limit(1).prepare();
}
const liveQueries = new WeakMap<Store, ReturnType<typeof prepareLive>>();
