/** Sealed wizard secrets that no job needs are erased after RE_BOT_SEALED_TTL_HOURS (issue 13). */
import { describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.ts';
import { createSecretBox, sealedTtlMsFromEnv, sweepSealedSecrets } from '../../src/store/crypto.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { createRuntime } from '../../src/app/wire.ts';
import { tmpDb } from '../jobs/helpers.ts';
import { ConfigError } from '../../src/config-error.ts';

const H = 3600_000;
const key = Buffer.alloc(32, 7);

function sealAt(store: Store, box: ReturnType<typeof createSecretBox>, value: string, at: number): string {
  const id = box.sealSecret(value, 'agent.token');
  store.sqlite.prepare('UPDATE sealed_secrets SET created_at = ? WHERE id = ?').run(new Date(at).toISOString(), id);
  return id;
}
function jobUsing(store: Store, id: string, state: string, secretId: string, finishedAt?: number) {
  const spec = JSON.stringify({ deployment: { name: id, apiToken: { env: 'X' } }, agent: { token: { stored: secretId } } });
  const at = new Date(finishedAt ?? Date.now()).toISOString();
  store.sqlite.prepare(`INSERT INTO jobs (id, deployment, state, attempt, requested_by, origin, spec, plan, values_hash, chart, created_at, updated_at, finished_at)
    VALUES (?, ?, ?, 1, 'U1', '{"kind":"cli"}', ?, '{}', 'vh', 'c', ?, ?, ?)`).run(id, id, state, spec, at, at, finishedAt === undefined ? null : at);
}

describe('sealed secret sweep', () => {
  it('erases old secrets no job needs (abandoned wizards, failed jobs nobody retried); keeps fresh ones and those of active or recently failed jobs', () => {
    const store = openStore({ path: tmpDb() });
    const box = createSecretBox(store, key);
    const now = Date.now();
    const abandoned = sealAt(store, box, 'abandoned-wizard-token', now - 25 * H);
    const fresh = sealAt(store, box, 'wizard-still-open-token', now - 1 * H);
    const waiting = sealAt(store, box, 'waiting-job-token', now - 30 * H);
    const failedRecently = sealAt(store, box, 'failed-recently-token', now - 30 * H);
    const failedLongAgo = sealAt(store, box, 'failed-long-ago-token', now - 80 * H);
    jobUsing(store, 'j-wait', 'waiting_approval', waiting);
    jobUsing(store, 'j-fail-new', 'failed', failedRecently, now - 2 * H);
    jobUsing(store, 'j-fail-old', 'failed', failedLongAgo, now - 50 * H);

    expect(sweepSealedSecrets(store, 24 * H, now).sort()).toEqual([abandoned, failedLongAgo].sort());
    expect(() => box.openSecret(abandoned)).toThrow(/erased/);
    expect(() => box.openSecret(failedLongAgo)).toThrow(/erased/);
    expect(box.openSecret(fresh)).toBe('wizard-still-open-token');
    expect(box.openSecret(waiting)).toBe('waiting-job-token');
    expect(box.openSecret(failedRecently)).toBe('failed-recently-token');
    // the ciphertext itself is gone, and the sweep is audited (ids only)
    expect(store.sqlite.prepare('SELECT ciphertext FROM sealed_secrets WHERE id = ?').get(abandoned)).toEqual({ ciphertext: null });
    const audit = exportAudit(store).filter((e) => e.action === 'secrets.swept');
    expect(audit).toHaveLength(1);
    expect(JSON.stringify(audit[0])).not.toContain('abandoned-wizard-token');
    // nothing left to sweep: no second audit row
    expect(sweepSealedSecrets(store, 24 * H, now)).toEqual([]);
    expect(exportAudit(store).filter((e) => e.action === 'secrets.swept')).toHaveLength(1);
    store.close();
  });

  it('the runtime sweeps when it starts (worker and bot alike)', async () => {
    const dbPath = tmpDb();
    process.env.RE_BOT_SECRET_KEY = key.toString('base64');
    try {
      const store = openStore({ path: dbPath });
      const box = createSecretBox(store, key);
      const old = sealAt(store, box, 'left-by-a-closed-tab', Date.now() - 25 * H);
      const young = sealAt(store, box, 'typed-a-minute-ago', Date.now() - 60_000);
      store.close();
      const rt = await createRuntime({ dbPath });
      try {
        await expect(rt.repo.secrets.open(old)).rejects.toThrow(/erased/);
        expect(await rt.repo.secrets.open(young)).toBe('typed-a-minute-ago');
      } finally {
        await rt.close();
      }
    } finally {
      delete process.env.RE_BOT_SECRET_KEY;
    }
  });

  it('RE_BOT_SEALED_TTL_HOURS: default 24; a malformed or too short value is a configuration error', () => {
    expect(sealedTtlMsFromEnv({})).toBe(24 * H);
    expect(sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: '72' })).toBe(72 * H);
    expect(() => sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: 'a day' })).toThrow(ConfigError);
    expect(() => sealedTtlMsFromEnv({ RE_BOT_SEALED_TTL_HOURS: '1' })).toThrow(/at least 2/);
  });
});
