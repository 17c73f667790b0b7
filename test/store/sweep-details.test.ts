/**
 * What an operator sees of the sealed-secret sweep and its settings: the audit row says what was erased and why,
 * a secret referenced anywhere in an active job's spec (also inside a list) is kept, and blank or borderline
 * settings behave as documented.
 */
import { describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.ts';
import { createSecretBox, secretKeyFromEnv, sealedTtlMsFromEnv, sweepSealedSecrets } from '../../src/store/crypto.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { tmpDb } from '../jobs/helpers.ts';

const H = 3600_000;

function sealedAt(store: Store, value: string, at: number): string {
  const id = createSecretBox(store, Buffer.alloc(32, 9)).sealSecret(value, 'dags.git.token');
  store.sqlite.prepare('UPDATE sealed_secrets SET created_at = ? WHERE id = ?').run(new Date(at).toISOString(), id);
  return id;
}

function activeJob(store: Store, id: string, spec: unknown) {
  const at = new Date().toISOString();
  store.sqlite.prepare(`INSERT INTO jobs (id, deployment, state, attempt, requested_by, origin, spec, plan, values_hash, chart, created_at, updated_at)
    VALUES (?, ?, 'running', 1, 'U1', '{"kind":"cli"}', ?, '{}', 'vh', 'c', ?, ?)`).run(id, id, JSON.stringify(spec), at, at);
}

describe('sealed secret sweep, details', () => {
  it('keeps a secret an active job references inside a list, and audits what it erased with the age limit in hours', () => {
    const store = openStore({ path: tmpDb() });
    const now = Date.now();
    const inList = sealedAt(store, 'token-in-a-list', now - 30 * H);
    const orphan = sealedAt(store, 'token-nobody-needs', now - 30 * H);
    activeJob(store, 'j-list', { deployment: { name: 'd' }, dags: { bundles: [{ name: 'main', git: { token: { stored: inList } } }] } });
    expect(sweepSealedSecrets(store, 6 * H, now)).toEqual([orphan]);
    const [row] = exportAudit(store).filter((e) => e.action === 'secrets.swept');
    expect(row).toMatchObject({ actor: 'system', action: 'secrets.swept', result: 'erased' });
    expect(row.details).toEqual({ ids: [orphan], olderThanHours: 6 });
    store.close();
  });

  it('RE_BOT_SEALED_TTL_HOURS: blank means the default, exactly 2 h is allowed, less is refused naming the setting, the minimum and the value', () => {
    expect(sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: '  ' })).toBe(24 * H);
    expect(sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: ' 2 ' })).toBe(2 * H);
    let err: any;
    try {
      sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: '1.5' });
    } catch (e) {
      err = e;
    }
    expect(err?.message).toBe('RE_BOT_SEALED_TTL_HOURS: expected a number of hours of at least 2 (a setup wizard stays open that long), got "1.5"');
  });

  it('RE_BOT_SECRET_KEY: blank means unset (the key file is used); a short key is refused naming the variable, never echoing it', () => {
    expect(secretKeyFromEnv({ RE_BOT_SECRET_KEY: ' \n' })).toBeUndefined();
    const short = Buffer.alloc(16, 3).toString('base64');
    let err: any;
    try {
      secretKeyFromEnv({ RE_BOT_SECRET_KEY: short });
    } catch (e) {
      err = e;
    }
    expect(err?.message).toBe('RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes, got 16 bytes (generate one with `openssl rand -base64 32`)');
    expect(err?.message).not.toContain(short);
    expect(() => secretKeyFromEnv({ RE_BOT_SECRET_KEY: 'not base64!' })).toThrow('RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes, got a value that is not base64 (generate one with `openssl rand -base64 32`)');
  });
});
