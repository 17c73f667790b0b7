import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { eq } from 'drizzle-orm';
import { ConfigError } from '../config-error.ts';
import { registerSecret } from '../redact.ts';
import type { Store } from './db.ts';
import { sealedSecrets } from './schema.ts';

const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * RE_BOT_SECRET_KEY as a key, or undefined when unset. A malformed value is a ConfigError (exit 2); the
 * message never repeats the value.
 */
export function secretKeyFromEnv(env: Record<string, string | undefined> = process.env): Buffer | undefined {
  const raw = env.RE_BOT_SECRET_KEY?.trim();
  if (!raw) return undefined;
  const key = Buffer.from(raw, 'base64');
  if (!BASE64.test(raw) || key.length !== 32) {
    throw new ConfigError([{ variable: 'RE_BOT_SECRET_KEY', message: `expected base64 of exactly 32 bytes, got ${BASE64.test(raw) ? `${key.length} bytes` : 'a value that is not base64'} (generate one with \`openssl rand -base64 32\`)` }]);
  }
  return key;
}

/** Key from RE_BOT_SECRET_KEY (base64, 32 bytes) or a 0600 `re-bot.key` beside the DB, created on first use. */
export function loadSecretKey(store: Store): Buffer {
  const fromEnv = secretKeyFromEnv();
  if (fromEnv) return fromEnv;
  const dir = store.path === ':memory:' ? process.cwd() : dirname(resolve(store.path));
  const file = join(dir, 're-bot.key');
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  }
  chmodSync(file, 0o600);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) {
    throw new ConfigError([{ variable: file, message: 'expected base64 of exactly 32 bytes; restore the original key file (secrets sealed with it cannot be opened without it)' }]);
  }
  return key;
}

export function createSecretBox(store: Store, key: Buffer = loadSecretKey(store)) {
  return {
    sealSecret(value: string, purpose = 'secret'): string {
      registerSecret(value);
      const id = `sec_${randomUUID()}`;
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(id));
      const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
      store.db.insert(sealedSecrets).values({
        id, ciphertext: ct.toString('base64'), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'),
        createdAt: new Date().toISOString(), purpose,
      }).run();
      return id;
    },
    openSecret(id: string): string {
      const row = store.db.select().from(sealedSecrets).where(eq(sealedSecrets.id, id)).get();
      if (!row) throw new Error(`sealed secret ${id} not found`);
      if (row.erasedAt || !row.ciphertext || !row.iv || !row.tag) throw new Error(`sealed secret ${id} was erased`);
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(row.iv, 'base64'));
      d.setAAD(Buffer.from(id));
      d.setAuthTag(Buffer.from(row.tag, 'base64'));
      const value = Buffer.concat([d.update(Buffer.from(row.ciphertext, 'base64')), d.final()]).toString('utf8');
      registerSecret(value);
      return value;
    },
    eraseSecret(id: string): void {
      store.db.update(sealedSecrets).set({ ciphertext: null, iv: null, tag: null, erasedAt: new Date().toISOString() })
        .where(eq(sealedSecrets.id, id)).run();
    },
  };
}
export type SecretBox = ReturnType<typeof createSecretBox>;
