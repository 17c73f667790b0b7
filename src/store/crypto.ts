import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { and, eq, isNull, lt } from 'drizzle-orm';
import { ConfigError } from '../config-error.ts';
import { registerSecret } from '../redact.ts';
import { appendAudit } from './audit.ts';
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

/** One sealed value as stored: AES-256-GCM ciphertext, 12-byte IV and 16-byte tag, each base64. */
export interface SealedValue {
  ciphertext: string;
  iv: string;
  tag: string;
}

/**
 * Seals `plaintext` with AES-256-GCM under `key` and a fresh random IV; `aad` (the secret's id) is authenticated,
 * so a sealed record copied under another id does not open. Pure: no store, no redaction registry.
 */
export function sealValue(key: Buffer, plaintext: string, aad: string): SealedValue {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { ciphertext: ct.toString('base64'), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** The plaintext of `sealed`; throws when the key, the `aad` or any byte of the record differs from the sealing. */
export function openValue(key: Buffer, sealed: SealedValue, aad: string): string {
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return Buffer.concat([d.update(Buffer.from(sealed.ciphertext, 'base64')), d.final()]).toString('utf8');
}

export function createSecretBox(store: Store, key: Buffer = loadSecretKey(store)) {
  return {
    sealSecret(value: string, purpose = 'secret'): string {
      registerSecret(value);
      const id = `sec_${randomUUID()}`;
      store.db.insert(sealedSecrets).values({ id, ...sealValue(key, value, id), createdAt: new Date().toISOString(), purpose }).run();
      return id;
    },
    openSecret(id: string): string {
      const row = store.db.select().from(sealedSecrets).where(eq(sealedSecrets.id, id)).get();
      if (!row) throw new Error(`sealed secret ${id} not found`);
      if (row.erasedAt || !row.ciphertext || !row.iv || !row.tag) throw new Error(`sealed secret ${id} was erased`);
      const value = openValue(key, { ciphertext: row.ciphertext, iv: row.iv, tag: row.tag }, id);
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

/** Wizard sessions live 2 h (src/slack/wizard.ts): a shorter TTL could erase secrets of a wizard still open. */
const MIN_SEALED_TTL_HOURS = 2;
export const DEFAULT_SEALED_TTL_HOURS = 24;

/** RE_BOT_SEALED_TTL_HOURS (default 24) in ms; a malformed or too short value is a ConfigError. */
export function sealedTtlMsFromEnv(env: Record<string, string | undefined> = process.env): number {
  const raw = env.RE_BOT_SEALED_TTL_HOURS?.trim();
  if (!raw) return DEFAULT_SEALED_TTL_HOURS * 3600_000;
  const hours = Number(raw);
  if (!Number.isFinite(hours) || hours < MIN_SEALED_TTL_HOURS) {
    throw new ConfigError([{ variable: 'RE_BOT_SEALED_TTL_HOURS', message: `expected a number of hours of at least ${MIN_SEALED_TTL_HOURS} (a setup wizard stays open that long), got ${JSON.stringify(raw)}` }]);
  }
  return hours * 3600_000;
}

/** Every `{ stored: id }` secret reference in a spec (or any JSON value). */
export function storedRefs(v: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => storedRefs(x, out));
  else if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    const id = (v as { stored?: unknown }).stored;
    if (keys.length === 1 && typeof id === 'string') out.add(id);
    else for (const child of Object.values(v)) storedRefs(child, out);
  }
  return out;
}

/**
 * Erases sealed secrets nobody will open any more: sealed more than `ttlMs` ago and not referenced by a job that
 * is active (queued, running, waiting for approval) or failed less than `ttlMs` ago (it may be retried). Those are
 * the secrets of abandoned wizards (closed without notice, or open when the bot restarted) and of failed jobs
 * nobody retried. Jobs that succeed or are cancelled erase theirs at once (src/app/wire.ts). One immediate
 * transaction: a job submitted meanwhile is either seen, or finds its (old) secret erased and says so.
 * Returns the erased ids.
 */
export function sweepSealedSecrets(store: Store, ttlMs: number, now = Date.now()): string[] {
  const cutoff = new Date(now - ttlMs).toISOString();
  return store.sqlite.transaction(() => {
    const keep = new Set<string>();
    const holders = store.sqlite.prepare(
      "SELECT spec FROM jobs WHERE state IN ('queued', 'running', 'waiting_approval') OR (state = 'failed' AND coalesce(finished_at, updated_at) > ?)",
    ).all(cutoff) as Array<{ spec: string }>;
    for (const j of holders) storedRefs(JSON.parse(j.spec), keep);
    const stale = store.db.select({ id: sealedSecrets.id }).from(sealedSecrets)
      .where(and(isNull(sealedSecrets.erasedAt), lt(sealedSecrets.createdAt, cutoff))).all()
      .map((r) => r.id).filter((id) => !keep.has(id));
    const at = new Date(now).toISOString();
    for (const id of stale) {
      store.db.update(sealedSecrets).set({ ciphertext: null, iv: null, tag: null, erasedAt: at }).where(eq(sealedSecrets.id, id)).run();
    }
    if (stale.length) appendAudit(store, { actor: 'system', action: 'secrets.swept', result: 'erased', details: { ids: stale, olderThanHours: ttlMs / 3600_000 } }, new Date(now));
    return stale;
  }).immediate();
}
