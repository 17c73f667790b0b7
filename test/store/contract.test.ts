/**
 * Contract tests: what exists on both stores today behaves the same on SQLite and on PostgreSQL. Each test runs
 * once per dialect (test/support/dialects.ts), through each side's own code and schema.
 */
import { expect, it } from 'vitest';
import { GENESIS, rowHash } from '../../src/store/audit.ts';
import { ConstraintError, describeEachDialect, type DialectStore } from '../support/dialects.ts';

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
});
