/**
 * Sealed secrets on PostgreSQL: the `sealed_secrets` rows of src/store/crypto.ts's secret box (same columns, same
 * AES-256-GCM records with the id as authenticated data, same errors), async.
 *
 * The key must come from RE_BOT_SECRET_KEY: SQLite's fallback, a `re-bot.key` file created beside the database on
 * first use, has no meaning for a shared database. Each replica would create its own key and none could open what
 * another sealed.
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { ConfigError } from '../../config-error.ts';
import { registerSecret } from '../../redact.ts';
import { openValue, sealValue, secretKeyFromEnv } from '../crypto.ts';
import type { PgExec } from './jobs.ts';
import { sealedSecrets } from './schema.ts';

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
