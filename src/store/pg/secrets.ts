/**
 * Sealed secrets on PostgreSQL: the `sealed_secrets` rows of src/store/crypto.ts's secret box (same columns, same
 * AES-256-GCM records with the id as authenticated data, same errors), async.
 *
 * The key must come from RE_BOT_SECRET_KEY: SQLite's fallback, a `re-bot.key` file created beside the database on
 * first use, has no meaning for a shared database. Each replica would create its own key and none could open what
 * another sealed.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { ConfigError } from '../../config-error.ts';
import { registerSecret } from '../../redact.ts';
import { openValue, sealValue, secretKeyFromEnv, storedRefs } from '../crypto.ts';
import { appendAuditPg } from './audit.ts';
import type { PgDb } from './open.ts';
import type { PgExec } from './jobs.ts';
import { jobs, sealedSecrets } from './schema.ts';

/** RE_BOT_SECRET_KEY as a key; a ConfigError naming it when unset (or malformed, as on SQLite). */
export function pgSecretKey(env: Record<string, string | undefined> = process.env): Buffer {
  const key = secretKeyFromEnv(env);
  if (!key) {
    throw new ConfigError([{
      variable: 'RE_BOT_SECRET_KEY',
      message: 'is required with RE_BOT_DATABASE_URL (PostgreSQL): every replica must seal and open secrets with the same key, and no key file is created for a shared database. Set it to base64 of 32 bytes (`openssl rand -base64 32`), the same value on every replica',
    }]);
  }
  return key;
}

export function createPgSecretBox(db: PgExec, key: Buffer = pgSecretKey()) {
  return {
    async sealSecret(value: string, purpose = 'secret'): Promise<string> {
      registerSecret(value);
      const id = `sec_${randomUUID()}`;
      await db.insert(sealedSecrets).values({ id, ...sealValue(key, value, id), createdAt: new Date().toISOString(), purpose });
      return id;
    },
    async openSecret(id: string): Promise<string> {
      const [row] = await db.select().from(sealedSecrets).where(eq(sealedSecrets.id, id));
      if (!row) throw new Error(`sealed secret ${id} not found`);
      if (row.erasedAt || !row.ciphertext || !row.iv || !row.tag) throw new Error(`sealed secret ${id} was erased`);
      const value = openValue(key, { ciphertext: row.ciphertext, iv: row.iv, tag: row.tag }, id);
      registerSecret(value);
      return value;
    },
    async eraseSecret(id: string): Promise<void> {
      await db.update(sealedSecrets).set({ ciphertext: null, iv: null, tag: null, erasedAt: new Date().toISOString() })
        .where(eq(sealedSecrets.id, id));
    },
  };
}
export type PgSecretBox = ReturnType<typeof createPgSecretBox>;

/**
 * As sweepSealedSecrets of src/store/crypto.ts: erases sealed secrets older than `ttlMs` that no active job, nor a
 * job failed less than `ttlMs` ago, refers to, and audits `secrets.swept`; returns the erased ids. The jobs table
 * is locked in SHARE mode for the transaction (as SQLite's immediate transaction): a submission or retry from
 * any replica waits for the sweep, then finds its (old) secret erased and says so, or the sweep waits for it and
 * sees the job.
 */
export async function sweepSealedSecretsPg(db: PgDb, ttlMs: number, now = Date.now()): Promise<string[]> {
  const cutoff = new Date(now - ttlMs).toISOString();
  return db.transaction(async (tx) => {
    await tx.execute(sql`lock table jobs in share mode`);
    const keep = new Set<string>();
    const holders = await tx.select({ spec: jobs.spec }).from(jobs).where(or(
      inArray(jobs.state, ['queued', 'running', 'waiting_approval']),
      and(eq(jobs.state, 'failed'), sql`coalesce(${jobs.finishedAt}, ${jobs.updatedAt}) > ${cutoff}`),
    ));
    for (const j of holders) storedRefs(j.spec, keep);
    const stale = (await tx.select({ id: sealedSecrets.id }).from(sealedSecrets)
      .where(and(isNull(sealedSecrets.erasedAt), lt(sealedSecrets.createdAt, cutoff))).orderBy(sealedSecrets.createdAt, sealedSecrets.id))
      .map((r) => r.id).filter((id) => !keep.has(id));
    const at = new Date(now).toISOString();
    if (stale.length) {
      await tx.update(sealedSecrets).set({ ciphertext: null, iv: null, tag: null, erasedAt: at }).where(inArray(sealedSecrets.id, stale));
      await appendAuditPg(tx as unknown as PgDb, { actor: 'system', action: 'secrets.swept', result: 'erased', details: { ids: stale, olderThanHours: ttlMs / 3600_000 } }, new Date(now));
    }
    return stale;
  });
}
