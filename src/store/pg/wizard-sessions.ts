/** Setup-wizard sessions between pages on PostgreSQL: src/store/wizard-sessions.ts, async. */
import { and, eq, gt, lte } from 'drizzle-orm';
import type { WizardStore } from '../../slack/wizard-store.ts';
import type { PgExec } from './jobs.ts';
import { wizardSessions } from './schema.ts';

/** `now`: the repository clock (expiry), as on SQLite */
export function pgWizardSessions(db: PgExec, now: () => number): WizardStore {
  const toRow = (r: typeof wizardSessions.$inferSelect) => ({ key: r.key, user: r.userId, channel: r.channel, createdAt: r.createdAt, expiresAt: r.expiresAt, session: r.session });
  return {
    async put(row) {
      const set = { userId: row.user, channel: row.channel, createdAt: row.createdAt, expiresAt: row.expiresAt, session: row.session };
      await db.insert(wizardSessions).values({ key: row.key, ...set }).onConflictDoUpdate({ target: wizardSessions.key, set });
    },
    async get(key) {
      const [r] = await db.select().from(wizardSessions).where(and(eq(wizardSessions.key, key), gt(wizardSessions.expiresAt, now())));
      return r && toRow(r);
    },
    async delete(key) {
      const [r] = await db.delete(wizardSessions).where(eq(wizardSessions.key, key)).returning();
      return r && toRow(r);
    },
    sweep: async () => (await db.delete(wizardSessions).where(lte(wizardSessions.expiresAt, now())).returning({ key: wizardSessions.key })).length,
  };
}
