/** Setup-wizard sessions between pages on SQLite (src/slack/wizard-store.ts says what a row holds). */
import { and, eq, gt, lte } from 'drizzle-orm';
import type { WizardSessionRow, WizardStore } from '../slack/wizard-store.ts';
import type { Store } from './db.ts';
import { wizardSessions } from './schema.ts';

type DbRow = typeof wizardSessions.$inferSelect;
const toWizardRow = (r: DbRow): WizardSessionRow => ({ key: r.key, user: r.userId, channel: r.channel, createdAt: r.createdAt, expiresAt: r.expiresAt, session: r.session });
const fromWizardRow = (r: WizardSessionRow): DbRow => ({ key: r.key, userId: r.user, channel: r.channel, createdAt: r.createdAt, expiresAt: r.expiresAt, session: r.session });

/** `now`: the repository clock (expiry) */
export function sqliteWizardSessions(store: Store, now: () => number): WizardStore {
  const { db } = store;
  return {
    async put(row) {
      const { key: _key, ...rest } = fromWizardRow(row);
      db.insert(wizardSessions).values({ key: row.key, ...rest }).onConflictDoUpdate({ target: wizardSessions.key, set: rest }).run();
    },
    async get(key) {
      const r = db.select().from(wizardSessions).where(and(eq(wizardSessions.key, key), gt(wizardSessions.expiresAt, now()))).get();
      return r && toWizardRow(r);
    },
    async delete(key) {
      const r = db.delete(wizardSessions).where(eq(wizardSessions.key, key)).returning().get();
      return r && toWizardRow(r);
    },
    sweep: async () => db.delete(wizardSessions).where(lte(wizardSessions.expiresAt, now())).run().changes,
  };
}
