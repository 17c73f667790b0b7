/**
 * Contract tests: what exists on both stores today behaves the same on SQLite and on PostgreSQL. Each test runs
 * once per dialect (test/support/dialects.ts), through each side's own code and schema.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS, rowHash } from '../../src/store/audit.ts';
import { openValue, sealValue } from '../../src/store/crypto.ts';
import { pgSecretKey } from '../../src/store/pg/secrets.ts';
import { forgetAllSecrets, redact } from '../../src/redact.ts';
import { ConfigError } from '../../src/config-error.ts';
import { ConstraintError, describeEachDialect, SECRET_KEY, type DialectStore } from '../support/dialects.ts';

const T0 = Date.UTC(2026, 0, 1);
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

async function refusal(write: Promise<void>): Promise<string | undefined> {
  try {
    await write;
    return undefined;
  } catch (err) {
    if (err instanceof ConstraintError) return err.constraint;
    throw err;
  }
}

describeEachDialect('store contract', (store: () => DialectStore) => {
  it('audit: appends chain each row to the previous one with the same hashes rowHash gives, and read back as written', async () => {
    const s = store();
    const events = [
      { actor: 'U1', action: 'job.submitted', jobId: 'j1', deployment: 'prod', valuesHash: 'h1', details: { zeta: 1, alpha: 'written second', nested: { z: 1, a: 2 } } },
      { actor: 'U2', action: 'approval.decided', jobId: 'j1', decision: 'approve', result: 'ok' },
      { actor: 'system', action: 'job.finished', jobId: 'j1', result: 'succeeded' },
    ];
    for (const [i, e] of events.entries()) await s.appendAudit(e, new Date(T0 + i));
    expect(await s.verifyAudit()).toEqual({ ok: true, count: 3 });

    // the expected chain, computed without any database: both dialects must store exactly this
    let prev = GENESIS;
    const rows = await s.auditRows();
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
    for (const [i, e] of events.entries()) {
      const body = {
        at: new Date(T0 + i).toISOString(), actor: e.actor, action: e.action, jobId: e.jobId ?? null, deployment: e.deployment ?? null,
        valuesHash: e.valuesHash ?? null, decision: e.decision ?? null, result: e.result ?? null, details: e.details ?? null,
      };
      const hash = rowHash(prev, body);
      expect(rows[i]).toEqual({ seq: i + 1, ...body, prevHash: prev, hash });
      prev = hash;
    }
    // key order survives the round trip (PostgreSQL json, not jsonb): the hash covers it
    expect(Object.keys(rows[0]!.details as object)).toEqual(['zeta', 'alpha', 'nested']);
  });

  it('audit: a row changed behind the chain\'s back is found, by its seq', async () => {
    const s = store();
    for (const action of ['job.submitted', 'approval.decided', 'job.finished']) await s.appendAudit({ actor: 'U1', action, jobId: 'j1', decision: 'approve' });
    await s.tamperAudit(2, 'reject');
    expect(await s.verifyAudit()).toEqual({ ok: false, brokenAtSeq: 2, reason: 'row content does not match its hash' });
  });

  it('audit: 30 concurrent appends keep one unbroken chain', async () => {
    const s = store();
    await Promise.all(Array.from({ length: 30 }, (_, i) => s.appendAudit({ actor: `U${i}`, action: 'approval.vote', jobId: `j${i}` })));
    expect(await s.verifyAudit()).toEqual({ ok: true, count: 30 });
  });

  it('votes: one per user per approval; the first stands, other users and other approvals are recorded', async () => {
    const s = store();
    await s.insertJob({ id: 'j1', deployment: 'prod', state: 'waiting_approval', createdAt: at(0) });
    await s.insertApproval('a1', 'j1');
    await s.insertApproval('a2', 'j1');
    expect(await refusal(s.insertVote({ approvalId: 'a1', user: 'U-ALICE', decision: 'approve', at: at(1) }))).toBeUndefined();
    expect(await refusal(s.insertVote({ approvalId: 'a1', user: 'U-ALICE', decision: 'reject', at: at(2) }))).toBe('approval_votes_unique');
    expect(await refusal(s.insertVote({ approvalId: 'a1', user: 'U-BOB', decision: 'reject', at: at(3) }))).toBeUndefined();
    expect(await refusal(s.insertVote({ approvalId: 'a2', user: 'U-ALICE', decision: 'approve', at: at(4) }))).toBeUndefined();
    expect(await s.votes('a1')).toEqual([{ user: 'U-ALICE', decision: 'approve' }, { user: 'U-BOB', decision: 'reject' }]);
    expect(await s.votes('a2')).toEqual([{ user: 'U-ALICE', decision: 'approve' }]);
  });

  it('votes: the same click arriving five times at once records one vote', async () => {
    const s = store();
    await s.insertJob({ id: 'j1', deployment: 'prod', state: 'waiting_approval', createdAt: at(0) });
    await s.insertApproval('a1', 'j1');
    const results = await Promise.all(Array.from({ length: 5 }, () => refusal(s.insertVote({ approvalId: 'a1', user: 'U-ALICE', decision: 'approve', at: at(1) }))));
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(results.filter((r) => r === 'approval_votes_unique')).toHaveLength(4);
    expect(await s.votes('a1')).toHaveLength(1);
  });

  it('deployment lock: one queued, running or waiting job per deployment; finished jobs do not hold it', async () => {
    const s = store();
    await s.insertJob({ id: 'j1', deployment: 'prod', state: 'queued', createdAt: at(0) });
    for (const [i, state] of ['queued', 'running', 'waiting_approval'].entries()) {
      expect(await refusal(s.insertJob({ id: `held-${i}`, deployment: 'prod', state, createdAt: at(1) })), state).toBe('jobs_one_active_per_deployment');
    }
    // another deployment is not affected
    expect(await refusal(s.insertJob({ id: 'other', deployment: 'staging', state: 'running', createdAt: at(1) }))).toBeUndefined();
    for (const state of ['running', 'waiting_approval']) {
      await s.setJobState('j1', state);
      expect(await refusal(s.insertJob({ id: `still-${state}`, deployment: 'prod', state: 'queued', createdAt: at(2) })), state).toBe('jobs_one_active_per_deployment');
    }
    // finished in any way: the lock is free, and any number of finished jobs may sit beside the next one
    for (const [i, state] of ['succeeded', 'failed', 'cancelled'].entries()) {
      await s.setJobState(i === 0 ? 'j1' : `next-${i - 1}`, state);
      expect(await refusal(s.insertJob({ id: `next-${i}`, deployment: 'prod', state: 'queued', createdAt: at(3 + i) })), `after ${state}`).toBeUndefined();
    }
    expect(await s.jobIds('prod')).toEqual(['j1', 'next-0', 'next-1', 'next-2']);
  });

  it('deployment lock: of two concurrent submissions for one deployment exactly one is queued', async () => {
    const s = store();
    const results = await Promise.all([1, 2, 3].map((i) => refusal(s.insertJob({ id: `race-${i}`, deployment: 'prod', state: 'queued', createdAt: at(i) }))));
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(await s.jobIds('prod')).toHaveLength(1);
  });

  it('claims: the oldest queued job first, excluded ones skipped, a leased job not claimed twice', async () => {
    const s = store();
    await s.insertJob({ id: 'newer', deployment: 'a', state: 'queued', createdAt: at(2) });
    await s.insertJob({ id: 'older', deployment: 'b', state: 'queued', createdAt: at(1) });
    await s.insertJob({ id: 'done', deployment: 'c', state: 'succeeded', createdAt: at(0) });
    expect(await s.claim({ owner: 'w1', leaseMs: 60_000, exclude: ['older'] })).toBe('newer');
    expect(await s.claim({ owner: 'w2', leaseMs: 60_000 })).toBe('older');
    expect(await s.claim({ owner: 'w3', leaseMs: 60_000 })).toBeUndefined();
  });

  it('claims: concurrent claimers over 12 jobs get each exactly once', async () => {
    const s = store();
    for (let i = 0; i < 12; i++) await s.insertJob({ id: `q${i}`, deployment: `d${i}`, state: 'queued', createdAt: at(i) });
    const claimer = async (owner: string) => {
      const got: string[] = [];
      for (let j; (j = await s.claim({ owner, leaseMs: 60_000 })); ) got.push(j);
      return got;
    };
    const all = (await Promise.all(['w1', 'w2', 'w3', 'w4'].map(claimer))).flat();
    expect(all.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `q${i}`).sort());
  });

  it('leases: the owner renews; another owner cannot; a cancel request ends the renewals', async () => {
    const s = store();
    await s.insertJob({ id: 'j1', deployment: 'prod', state: 'queued', createdAt: at(0) });
    expect(await s.claim({ owner: 'w1', leaseMs: 60_000 })).toBe('j1');
    expect(await s.renew({ jobId: 'j1', owner: 'w1', leaseMs: 60_000 })).toBe(true);
    expect(await s.renew({ jobId: 'j1', owner: 'w2', leaseMs: 60_000 })).toBe(false);
    await s.requestCancel('j1');
    expect(await s.renew({ jobId: 'j1', owner: 'w1', leaseMs: 60_000 })).toBe(false);
  });

  it('secrets: sealed values open back, are registered with the redactor, never stored in plaintext, and erase for good', async () => {
    const s = store();
    forgetAllSecrets();
    const plain = 'astro-agent-token-ZZ9-plural-z-alpha';
    const id = await s.secrets.sealSecret(plain, 'agent-token');
    expect(id).toMatch(/^sec_[0-9a-f-]{36}$/);
    expect(redact(`x ${plain}`)).toBe('x [REDACTED]');
    expect(await s.sealedRow(id)).toMatchObject({ purpose: 'agent-token', erasedAt: null });
    expect(await s.sealedRow(await s.secrets.sealSecret('default-purpose-888'))).toMatchObject({ purpose: 'secret' });
    // neither the value nor its base64 is in any table
    const everything = await s.everyRowAsText();
    expect(everything).toContain(id);
    expect(everything).not.toContain(plain);
    expect(everything).not.toContain(Buffer.from(plain).toString('base64').slice(0, 20));
    forgetAllSecrets();
    // a new process opening it registers it before any output can carry it
    expect(await s.secrets.openSecret(id)).toBe(plain);
    expect(redact(`x ${plain}`)).toBe('x [REDACTED]');
    await s.secrets.eraseSecret(id);
    expect(await s.sealedRow(id)).toMatchObject({ ciphertext: null, iv: null, tag: null, erasedAt: expect.any(String) });
    await expect(s.secrets.openSecret(id)).rejects.toThrow(`sealed secret ${id} was erased`);
    await expect(s.secrets.openSecret('sec_nope')).rejects.toThrow('sealed secret sec_nope not found');
  });

  it('secrets: the same value sealed twice gets a fresh 12-byte IV and another ciphertext', async () => {
    const s = store();
    const [a, b] = [await s.secrets.sealSecret('same-secret-value-123'), await s.secrets.sealSecret('same-secret-value-123')];
    const [ra, rb] = [(await s.sealedRow(a))!, (await s.sealedRow(b))!];
    expect(Buffer.from(ra.iv!, 'base64')).toHaveLength(12);
    expect(ra.iv).not.toBe(rb.iv);
    expect(ra.ciphertext).not.toBe(rb.ciphertext);
    expect(await s.secrets.openSecret(a)).toBe('same-secret-value-123');
    expect(await s.secrets.openSecret(b)).toBe('same-secret-value-123');
  });

  it('secrets: a row copied under another id, a changed byte or another key does not open', async () => {
    const s = store();
    const victim = await s.secrets.sealSecret('prod-agent-token-AAAA-1111', 'agent-token');
    const mine = await s.secrets.sealSecret('my-own-harmless-value', 'agent-token');
    const v = (await s.sealedRow(victim))!;
    await s.setSealedRow(mine, { ciphertext: v.ciphertext, iv: v.iv, tag: v.tag });
    await expect(s.secrets.openSecret(mine)).rejects.toThrow();
    expect(await s.secrets.openSecret(victim)).toBe('prod-agent-token-AAAA-1111');
    await expect(s.secretsWithKey(randomBytes(32)).openSecret(victim)).rejects.toThrow();
    const ct = Buffer.from(v.ciphertext!, 'base64');
    ct[0] ^= 1;
    await s.setSealedRow(victim, { ciphertext: ct.toString('base64') });
    await expect(s.secrets.openSecret(victim)).rejects.toThrow();
  });

  it('secrets: a row marked erased, or missing any of ciphertext/iv/tag, never opens and says it was erased', async () => {
    const s = store();
    for (const set of [{ erasedAt: '2026-01-01T00:00:00Z' }, { ciphertext: null }, { iv: null }, { tag: null }]) {
      const id = await s.secrets.sealSecret('half-erased-secret-99');
      await s.setSealedRow(id, set);
      await expect(s.secrets.openSecret(id), JSON.stringify(set)).rejects.toThrow(`sealed secret ${id} was erased`);
    }
  });

  it('secrets: a record sealed through one dialect\'s box opens with the pure openValue, and the reverse', async () => {
    const s = store();
    const id = await s.secrets.sealSecret('crosses-dialects-42');
    const r = (await s.sealedRow(id))!;
    expect(openValue(SECRET_KEY, { ciphertext: r.ciphertext!, iv: r.iv!, tag: r.tag! }, id)).toBe('crosses-dialects-42');
    const other = await s.secrets.sealSecret('placeholder');
    await s.setSealedRow(other, sealValue(SECRET_KEY, 'sealed-outside-the-box', other));
    expect(await s.secrets.openSecret(other)).toBe('sealed-outside-the-box');
  });
});

describe('sealed values without a store', () => {
  it('sealValue/openValue: the aad is authenticated and the IV is fresh', () => {
    const key = randomBytes(32);
    const a = sealValue(key, 'hello-sealed', 'sec_1');
    const b = sealValue(key, 'hello-sealed', 'sec_1');
    expect(a.iv).not.toBe(b.iv);
    expect(Buffer.from(a.tag, 'base64')).toHaveLength(16);
    expect(openValue(key, a, 'sec_1')).toBe('hello-sealed');
    expect(() => openValue(key, a, 'sec_2')).toThrow();
    expect(() => openValue(randomBytes(32), a, 'sec_1')).toThrow();
  });

  it('on PostgreSQL the key must be given: RE_BOT_SECRET_KEY unset is a ConfigError naming it; a malformed one too; a good one is the key', () => {
    const missing = (() => { try { pgSecretKey({}); } catch (err) { return err; } })();
    expect(missing).toBeInstanceOf(ConfigError);
    expect(String((missing as Error).message)).toMatch(/RE_BOT_SECRET_KEY.*required with RE_BOT_DATABASE_URL/s);
    expect(() => pgSecretKey({ RE_BOT_SECRET_KEY: '  ' })).toThrow(/RE_BOT_SECRET_KEY.*required/s);
    expect(() => pgSecretKey({ RE_BOT_SECRET_KEY: randomBytes(16).toString('base64') })).toThrow('RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes');
    const key = randomBytes(32);
    expect(pgSecretKey({ RE_BOT_SECRET_KEY: key.toString('base64') }).equals(key)).toBe(true);
  });
});

