/**
 * Contract tests: what exists on both stores today behaves the same on SQLite and on PostgreSQL. Each test runs
 * once per dialect (test/support/dialects.ts), through each side's own code and schema: the audit chain, votes,
 * the deployment lock, claims and leases, sealed secrets, and every operation of the repository (src/store/repo.ts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS, rowHash } from '../../src/store/audit.ts';
import { openValue, sealValue } from '../../src/store/crypto.ts';
import { pgSecretKey } from '../../src/store/pg/secrets.ts';
import { forgetAllSecrets, redact } from '../../src/redact.ts';
import { ConfigError } from '../../src/config-error.ts';
import { DeploymentLockedError } from '../../src/jobs/types.ts';
import type { ApprovalRequest } from '../../src/checklist/types.ts';
import { openRepository, type Repository, type StepRow } from '../../src/store/repo.ts';
import { fakePlan, fakeSpec, policy } from '../jobs/helpers.ts';
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

  repositoryContract(store);
});

/**
 * The repository (src/store/repo.ts): the same operations through each dialect's implementation give the same
 * answers. Declared inside the block above so both share its store (one PostgreSQL cluster per file).
 */
function repositoryContract(store: () => DialectStore) {
  const alice = { id: 'UALICE' };
  const bob = { id: 'UBOB' };
  const submit = (repo: Repository, id: string, deployment = 'sales', skip: string[] = []) => {
    const spec = fakeSpec(deployment, skip);
    return repo.jobs.submit({ spec, requestedBy: alice, origin: { kind: 'cli' }, id, plan: fakePlan(spec) });
  };
  const lockedBy = async (p: Promise<unknown>) => {
    try {
      await p;
      return undefined;
    } catch (err) {
      if (err instanceof DeploymentLockedError) return { deployment: err.deployment, holder: err.holder.jobId, state: err.holder.state };
      throw err;
    }
  };
  const request = (hash = 'hash-1'): ApprovalRequest => ({ title: 'helm upgrade --install astro-agent', hash, diffText: '+ replicas: 2', changedKeys: ['replicas'], facts: { chart: '2.3.3' } });
  /** a job claimed by w1 running step b, which asked for approval */
  async function waitingJob(repo: Repository, p = policy()) {
    await submit(repo, 'job-1');
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBe('job-1');
    await repo.steps.update('job-1', 'a', { state: 'succeeded' });
    await repo.steps.update('job-1', 'b', { state: 'running' });
    const asked = await repo.approvals.request((await repo.jobs.get('job-1'))!, 'b', request(), p);
    if (!('pending' in asked)) throw new Error('expected a pending request');
    return asked.pending.approvalId;
  }

  it('repo jobs: submit queues the job with its steps and audit row; a second submit for the deployment names the holder; reads agree', async () => {
    const { repo } = store();
    await submit(repo, 'job-1', 'sales', ['c']);
    const j = (await repo.jobs.get('job-1'))!;
    expect(j).toMatchObject({ id: 'job-1', deployment: 'sales', state: 'queued', attempt: 1, requestedBy: 'UALICE', valuesHash: 'vh1', cancelRequested: false });
    expect((await repo.steps.list('job-1')).map((s) => [s.stepId, s.state, s.summary])).toEqual([['a', 'pending', null], ['b', 'pending', null], ['c', 'skipped', 'c not configured'], ['d', 'pending', null]]);
    expect(await lockedBy(submit(repo, 'job-2'))).toEqual({ deployment: 'sales', holder: 'job-1', state: 'queued' });
    expect((await repo.jobs.activeFor('sales'))?.id).toBe('job-1');
    expect(await repo.jobs.latestId('sales')).toBe('job-1');
    expect(await repo.jobs.activeFor('other')).toBeUndefined();
    await submit(repo, 'job-3', 'other');
    expect(await repo.deployments.names()).toEqual(['other', 'sales']);
    expect(await repo.deployments.exists('sales')).toBe(true);
    expect(await repo.deployments.exists('sale')).toBe(false);
    expect((await repo.jobs.withIdPrefix('JOB-', 5)).map((h) => h.id).sort()).toEqual(['job-1', 'job-3']);
    expect(await repo.jobs.withIdPrefix('job-3', 5)).toEqual([{ id: 'job-3', deployment: 'other', state: 'queued' }]);
    const audit = await repo.audit.export();
    expect(audit.map((r) => [r.action, r.jobId, r.actor])).toEqual([['job.submitted', 'job-1', 'UALICE'], ['job.submitted', 'job-3', 'UALICE']]);
    expect(await repo.audit.export({ jobId: 'job-3' })).toHaveLength(1);
    expect(await repo.audit.verify()).toEqual({ ok: true, count: 2 });
  });

  it('repo jobs: claim, heartbeat, lease release, completion; the lock is free once the job finished', async () => {
    const { repo } = store();
    await submit(repo, 'job-1');
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000, exclude: ['job-1'] })).toBeUndefined();
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBe('job-1');
    expect(await repo.jobs.claimNext({ owner: 'w2', leaseMs: 60_000 })).toBeUndefined();
    expect(await repo.jobs.renewLease({ jobId: 'job-1', owner: 'w1', leaseMs: 60_000 })).toBe(true);
    expect(await repo.jobs.renewLease({ jobId: 'job-1', owner: 'w2', leaseMs: 60_000 })).toBe(false);
    expect((await repo.jobs.leased()).map((l) => [l.id, l.leaseOwner])).toEqual([['job-1', 'w1']]);
    expect((await repo.jobs.get('job-1'))).toMatchObject({ state: 'running', leaseOwner: 'w1', startedAt: expect.any(String) });
    // a clean stop: another worker may resume it at once
    await repo.jobs.releaseLeases('w1');
    expect(await repo.jobs.requeueExpired('job-1', 'w2')).toBe(false);
    expect(await repo.jobs.requeueExpired('job-1', 'w1')).toBe(true);
    expect(await repo.jobs.claimNext({ owner: 'w2', leaseMs: 60_000 })).toBe('job-1');
    await repo.jobs.complete('job-1');
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'succeeded', leaseOwner: null, leaseExpiresAt: null, finishedAt: expect.any(String) });
    expect(await repo.jobs.activeFor('sales')).toBeUndefined();
    expect(await lockedBy(submit(repo, 'job-2'))).toBeUndefined();
    expect(await repo.jobs.idsOf('sales')).toEqual(['job-2', 'job-1']);
  });

  it('repo jobs: cancel ends the job, its running step and its pending approval; retry queues attempt 2 unless another job holds the deployment', async () => {
    const { repo } = store();
    const approvalId = await waitingJob(repo);
    await repo.jobs.cancel((await repo.jobs.get('job-1'))!, bob);
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'cancelled', cancelRequested: true, error: 'cancelled by UBOB' });
    expect((await repo.steps.get('job-1', 'b'))?.state).toBe('cancelled');
    expect((await repo.approvals.get(approvalId))?.state).toBe('superseded');
    await submit(repo, 'job-2');
    expect(await lockedBy(repo.jobs.retry((await repo.jobs.get('job-1'))!, bob))).toEqual({ deployment: 'sales', holder: 'job-2', state: 'queued' });
    // nothing of the refused retry was applied
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'cancelled', attempt: 1 });
    await repo.jobs.fail('job-2', 'boom');
    await repo.jobs.retry((await repo.jobs.get('job-1'))!, bob);
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'queued', attempt: 2, error: null, cancelRequested: false });
    expect((await repo.steps.get('job-1', 'b'))?.state).toBe('pending');
    expect((await repo.steps.next('job-1'))?.stepId).toBe('b');
    expect((await repo.audit.export({ jobId: 'job-1' })).map((r) => r.action)).toEqual(['job.submitted', 'approval.requested', 'job.cancelled', 'job.retried']);
    expect(await repo.audit.verify()).toMatchObject({ ok: true });
  });

  it('repo steps: a running step writes only while its worker holds the lease; a lost lease or a cancel writes nothing', async () => {
    const s = store();
    const { repo } = s;
    await submit(repo, 'job-1');
    expect(await repo.steps.writeLeased({ jobId: 'job-1', stepId: 'a', owner: 'w1' }, { state: 'running' })).toBe(false);
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBe('job-1');
    expect(await repo.steps.writeLeased({ jobId: 'job-1', stepId: 'a', owner: 'w1' }, { state: 'running', checkpoint: { pod: 'p1' } })).toBe(true);
    expect(await repo.steps.writeLeased({ jobId: 'job-1', stepId: 'a', owner: 'w2' }, { checkpoint: { pod: 'stolen' } })).toBe(false);
    expect(await repo.steps.get('job-1', 'a')).toMatchObject({ state: 'running', checkpoint: { pod: 'p1' } });
    expect((await repo.steps.next('job-1'))?.stepId).toBe('a');
    await s.requestCancel('job-1');
    expect(await repo.steps.writeLeased({ jobId: 'job-1', stepId: 'a', owner: 'w1' }, { state: 'succeeded' })).toBe(false);
    expect((await repo.steps.get('job-1', 'a'))?.state).toBe('running');
    await repo.steps.update('job-1', 'a', { state: 'succeeded' });
    await repo.steps.update('job-1', 'b', { state: 'prepared' });
    expect((await repo.steps.next('job-1'))?.stepId).toBe('c');
  });

  it('repo steps: finishing a step writes it, its audit row and the prepared steps it applies in one go, only under the lease', async () => {
    const { repo } = store();
    await submit(repo, 'job-1');
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBe('job-1');
    // a is applied with c, b with a (as the runner's PREPARED_KEY checkpoint says)
    await repo.steps.update('job-1', 'a', { state: 'prepared', checkpoint: { prep: { status: 'succeeded', appliedWith: 'c' } } });
    await repo.steps.update('job-1', 'b', { state: 'prepared', checkpoint: { prep: { status: 'warned', appliedWith: 'a' } } });
    await repo.steps.update('job-1', 'c', { state: 'running' });
    const promote = (from: string) => (prepared: StepRow[]) => {
      const out: Array<{ stepId: string; state: string; audit: { action: string; extra: { result: string; details: Record<string, unknown> } } }> = [];
      const walk = (applied: string) => {
        for (const s of prepared) {
          const p = (s.checkpoint as { prep?: { status: string; appliedWith: string } } | null)?.prep;
          if (p?.appliedWith !== applied) continue;
          out.push({ stepId: s.stepId, state: p.status, audit: { action: 'step.applied', extra: { result: p.status, details: { stepId: s.stepId, appliedWith: applied } } } });
          walk(s.stepId);
        }
      };
      walk(from);
      return out;
    };
    const job = (await repo.jobs.get('job-1'))!;
    const finish = (stepId: string, owner: string) => repo.steps.finish({ job, stepId, owner }, {
      values: { state: 'succeeded', summary: `${stepId} done` }, audit: { action: 'step.finished', extra: { result: 'succeeded', details: { stepId } } }, promote: promote(stepId),
    });
    expect(await finish('d', 'w2')).toBe(false);
    expect(await finish('c', 'w1')).toEqual(['a', 'b']);
    expect((await repo.steps.list('job-1')).map((s) => [s.stepId, s.state, s.summary])).toEqual([['a', 'succeeded', null], ['b', 'warned', null], ['c', 'succeeded', 'c done'], ['d', 'pending', null]]);
    expect((await repo.audit.export({ jobId: 'job-1' })).slice(1).map((r) => [r.action, r.result, (r.details as { stepId: string }).stepId])).toEqual([
      ['step.finished', 'succeeded', 'c'], ['step.applied', 'succeeded', 'a'], ['step.applied', 'warned', 'b'],
    ]);
    // the lease is gone: nothing is written, not even the audit row
    await repo.jobs.complete('job-1');
    expect(await finish('d', 'w1')).toBe(false);
    expect((await repo.steps.get('job-1', 'd'))?.state).toBe('pending');
    expect(await repo.audit.export({ jobId: 'job-1' })).toHaveLength(4);
  });

  it('repo approvals: a request parks the job once per hash; refusals keep their reasons; the approval requeues the job and a later ask is granted', async () => {
    const { repo } = store();
    const id = await waitingJob(repo);
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'waiting_approval', leaseOwner: null });
    expect((await repo.steps.get('job-1', 'b'))?.state).toBe('waiting_approval');
    expect(await repo.approvals.request((await repo.jobs.get('job-1'))!, 'b', request(), policy())).toEqual({ pending: { approvalId: id, created: false } });
    expect(await repo.approvals.decide(id, { by: alice, decision: 'approve', hash: 'hash-1' })).toEqual({ ok: false, reason: 'self_approval', message: 'the requester cannot approve their own job', jobId: 'job-1' });
    expect(await repo.approvals.decide(id, { by: bob, decision: 'approve', hash: 'hash-2' })).toMatchObject({ ok: false, reason: 'stale_hash' });
    expect(await repo.approvals.decide('apr_nope', { by: bob, decision: 'approve', hash: 'hash-1' })).toEqual({ ok: false, reason: 'not_found', message: 'approval apr_nope not found' });
    expect(await repo.approvals.decide(id, { by: bob, decision: 'approve', hash: 'hash-1' })).toEqual({ ok: true, approvalId: id, jobId: 'job-1', outcome: 'approved', jobRequeued: true });
    expect(await repo.approvals.decide(id, { by: { id: 'UCAROL' }, decision: 'approve', hash: 'hash-1' })).toMatchObject({ ok: false, reason: 'already_decided', message: 'this approval is already approved' });
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'queued' });
    expect((await repo.steps.get('job-1', 'b'))?.state).toBe('pending');
    expect(await repo.approvals.view(id)).toMatchObject({ id, state: 'approved', required: 1, approvals: [{ user: 'UBOB' }], facts: { chart: '2.3.3' }, changedKeys: ['replicas'] });
    expect(await repo.approvals.request((await repo.jobs.get('job-1'))!, 'b', request(), policy())).toEqual({ granted: { approvalId: id, hash: 'hash-1', approvedBy: ['UBOB'] } });
    expect((await repo.audit.export()).filter((r) => r.action.startsWith('approval.')).map((r) => [r.action, r.result])).toEqual([
      ['approval.requested', null], ['approval.refused', 'self_approval'], ['approval.refused', 'stale_hash'], ['approval.refused', 'not_found'],
      ['approval.decided', 'approved'], ['approval.refused', 'already_decided'],
    ]);
  });

  it('repo approvals: an approval granted after its job failed for another reason leaves the job failed and says it was not requeued', async () => {
    const { repo } = store();
    const id = await waitingJob(repo);
    await repo.jobs.fail('job-1', 'the cluster went away');
    expect(await repo.approvals.decide(id, { by: bob, decision: 'approve', hash: 'hash-1' })).toEqual({ ok: true, approvalId: id, jobId: 'job-1', outcome: 'approved', jobRequeued: false });
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'failed', error: 'the cluster went away' });
    expect((await repo.steps.get('job-1', 'b'))?.state).toBe('waiting_approval');
  });

  it('repo approvals: a rejection fails the job with its reason; an expired request is expired once and fails its job', async () => {
    const s = store();
    const { repo } = s;
    const id = await waitingJob(repo);
    expect(await repo.approvals.decide(id, { by: bob, decision: 'reject', hash: 'hash-1', reason: 'not today' })).toEqual({
      ok: true, approvalId: id, jobId: 'job-1', outcome: 'rejected', jobRequeued: false, jobFailed: 'rejected by UBOB: helm upgrade --install astro-agent — reason: not today',
    });
    expect(await repo.jobs.get('job-1')).toMatchObject({ state: 'failed', error: 'rejected by UBOB: helm upgrade --install astro-agent — reason: not today' });

    await submit(repo, 'job-2', 'other');
    expect(await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBe('job-2');
    const asked = await repo.approvals.request((await repo.jobs.get('job-2'))!, 'b', request(), policy({ expiresInMs: 60_000 }));
    const id2 = (asked as { pending: { approvalId: string } }).pending.approvalId;
    expect(await repo.approvals.expireDue()).toEqual([]);
    s.tick(61_000);
    expect(await repo.approvals.expireDue()).toEqual([id2]);
    expect(await repo.approvals.expireDue()).toEqual([]);
    expect(await repo.jobs.get('job-2')).toMatchObject({ state: 'failed', error: expect.stringMatching(/^approval "helm upgrade --install astro-agent" expired at .* without 1 approval\(s\)$/) });
    expect(await repo.approvals.decide(id2, { by: bob, decision: 'approve', hash: 'hash-1' })).toMatchObject({ ok: false, reason: 'expired' });
    expect((await repo.audit.export({ jobId: 'job-2' })).map((r) => [r.action, r.result])).toEqual([
      ['job.submitted', null], ['approval.requested', null], ['approval.expired', 'expired'], ['job.finished', 'failed'], ['approval.refused', 'expired'],
    ]);
  });

  it('repo status: the answer holds the latest view, the lock holder and the last good setup', async () => {
    const { repo } = store();
    expect(await repo.status.answer('sales')).toEqual({ deploymentExists: false });
    await submit(repo, 'job-1');
    await repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 });
    await repo.jobs.complete('job-1');
    store().tick(1000);
    await submit(repo, 'job-2');
    const a = await repo.status.answer('sales');
    expect(a).toMatchObject({ deploymentExists: true, latestJobId: 'job-2', lastSucceededJobId: 'job-1', lock: { id: 'job-2', requestedBy: 'UALICE', state: 'queued', startedAt: null } });
    expect(a.view).toEqual(await repo.status.jobView('job-2'));
    expect(a.lastGood).toEqual(await repo.status.jobView('job-1'));
    expect(a.view?.steps.map((s) => [s.stepId, s.state])).toEqual([['a', 'pending'], ['b', 'pending'], ['c', 'pending'], ['d', 'pending']]);
    expect(await repo.status.jobView('nope')).toBeUndefined();
  });

  it('repo metrics: job counts per state, pending approvals, whether any job is active, a deployment\'s recent jobs, the applied migrations', async () => {
    const s = store();
    const { repo } = s;
    expect(await repo.metrics.jobCounts()).toEqual({});
    expect(await repo.metrics.hasActiveJobs()).toBe(false);
    expect(await repo.metrics.lastMigrationAt()).toBeGreaterThan(Date.UTC(2025, 0, 1));
    await waitingJob(repo);
    s.tick(1000);
    await submit(repo, 'job-2', 'other');
    s.tick(1000);
    await submit(repo, 'job-3', 'third');
    await repo.jobs.fail('job-3', 'boom');
    expect(await repo.metrics.jobCounts()).toEqual({ waiting_approval: 1, queued: 1, failed: 1 });
    expect(await repo.metrics.approvalsPending()).toBe(1);
    expect(await repo.metrics.hasActiveJobs()).toBe(true);
    await repo.jobs.cancel((await repo.jobs.get('job-1'))!, bob);
    await repo.jobs.fail('job-2', 'boom');
    expect(await repo.metrics.hasActiveJobs()).toBe(false);
    expect(await repo.metrics.approvalsPending()).toBe(0);
    s.tick(1000);
    await submit(repo, 'job-4');
    expect(await repo.metrics.recentJobs('sales', 10)).toEqual([
      { id: 'job-4', state: 'queued', createdAt: expect.any(String), requestedBy: 'UALICE' }, { id: 'job-1', state: 'cancelled', createdAt: expect.any(String), requestedBy: 'UALICE' },
    ]);
    expect(await repo.metrics.recentJobs('sales', 1)).toHaveLength(1);
  });

  it('repo outbox: thread order, updates replaced while pending, sending → sent, the poll takes the channels with due rows', async () => {
    const { repo } = store();
    const now = Date.now();
    await repo.outbox.upsert({ key: 'p1', kind: 'post', channel: 'C1', args: { text: 'parent' } });
    await repo.outbox.upsert({ key: 'r1', kind: 'post', channel: 'C1', ref: 'p1', args: { text: 'reply' } });
    await repo.outbox.upsert({ key: 'u1', kind: 'update', channel: 'C2', ref: 'x', args: { text: 'v1' } });
    await repo.outbox.upsert({ key: 'u1', kind: 'update', channel: 'C2', ref: 'x', args: { text: 'v2' } });
    expect(await repo.outbox.pendingCount()).toBe(3);
    expect(await repo.outbox.oldestPendingAt()).toBeGreaterThan(now - 60_000);
    expect(await repo.outbox.takeChannels({ owner: 'A', leaseMs: 10_000, max: 10 })).toEqual(['C1', 'C2']);
    expect(await repo.outbox.renewChannel({ channel: 'C1', owner: 'A', leaseMs: 10_000 })).toBe(true);
    const due = await repo.outbox.due(now + 1000, 'A');
    expect(due.map((d) => d.key)).toEqual(['p1', 'u1']);
    expect((await repo.outbox.get('u1'))?.args).toEqual({ text: 'v2' });
    const p1 = due[0]!;
    expect(await repo.outbox.markSending(p1.id, 'A')).toBe(true);
    expect(await repo.outbox.head('p1')).toEqual({ state: 'sending', ts: undefined, channel: 'C1' });
    expect(await repo.outbox.markSent(p1.id, '111.222', 'A')).toBe(true);
    expect(await repo.outbox.head('p1')).toEqual({ state: 'sent', ts: '111.222', channel: 'C1' });
    expect((await repo.outbox.due(now + 1000, 'A')).map((d) => d.key)).toEqual(['r1', 'u1']);
    const r1 = (await repo.outbox.get('r1'))!;
    expect(await repo.outbox.markSending(r1.id, 'A')).toBe(true);
    expect(await repo.outbox.markRetry(r1.id, now + 5000, 'ratelimited', 'A', true)).toBe(true);
    expect(await repo.outbox.get('r1')).toMatchObject({ state: 'pending', attempts: 0, notBefore: now + 5000, error: 'ratelimited' });
    expect(await repo.outbox.markSending(r1.id, 'A')).toBe(true);
    // a restart: the reply in flight is to be looked up in Slack before it is posted again
    expect(await repo.outbox.recoverInFlight('A')).toBe(1);
    expect(await repo.outbox.get('r1')).toMatchObject({ state: 'pending', verify: true });
    // looked up and refused (a missing scope): given up as unknown, never doubled
    expect(await repo.outbox.markSending(r1.id, 'A')).toBe(true);
    expect(await repo.outbox.markUnknown(r1.id, 'lookup failed: missing_scope', 'A')).toBe(true);
    expect(await repo.outbox.get('r1')).toMatchObject({ state: 'unknown', error: 'lookup failed: missing_scope' });
    expect(await repo.outbox.markUnknown(r1.id, 'again', 'A')).toBe(false);
    await repo.outbox.releaseChannel({ channel: 'C1', owner: 'A' });
  });

  it('repo outbox: a taken channel recovers only its own rows in flight; a reply without parent fails while pending; a queued ephemeral can be dropped', async () => {
    const { repo } = store();
    for (const [key, channel] of [['a', 'CA'], ['b', 'CB']]) await repo.outbox.upsert({ key, kind: 'post', channel, args: { text: key } });
    await repo.outbox.upsert({ key: 'orphan', kind: 'post', channel: 'CA', ref: 'never', args: { text: 'reply' } });
    await repo.outbox.upsert({ key: 'e', kind: 'ephemeral', channel: 'CB', args: { text: 'eph', user: 'U1' } });
    expect(await repo.outbox.takeChannels({ owner: 'A', leaseMs: 60_000, max: 10 })).toEqual(['CA', 'CB']);
    for (const key of ['a', 'b']) expect(await repo.outbox.markSending((await repo.outbox.get(key))!.id, 'A')).toBe(true);
    expect(await repo.outbox.recoverInFlight('A', ['CB'])).toBe(1);
    expect((await repo.outbox.head('a'))!.state).toBe('sending');
    expect((await repo.outbox.head('b'))!.state).toBe('pending');
    expect(await repo.outbox.markFailed((await repo.outbox.get('orphan'))!.id, 'target never was never posted', 'A')).toBe(true);
    expect((await repo.outbox.head('orphan'))!.state).toBe('failed');
    const e = (await repo.outbox.get('e'))!;
    expect(await repo.outbox.dropPending(e.id, 'dropped: ephemeral backlog full')).toBe(true);
    expect(await repo.outbox.dropPending(e.id, 'dropped again')).toBe(false);
    expect(await repo.outbox.get('e')).toMatchObject({ state: 'failed', error: 'dropped: ephemeral backlog full' });
  });

  it('repo agent tokens, secrets and readiness', async () => {
    const { repo } = store();
    await repo.agentTokens.record({ id: 't1', deployment: 'sales', name: 'first', endAt: '2027-01-01T00:00:00.000Z', jobId: 'job-1' }, '2026-01-01T00:00:00.000Z');
    await repo.agentTokens.record({ id: 't2', deployment: 'sales', name: 'second' }, '2026-02-01T00:00:00.000Z');
    await repo.agentTokens.record({ id: 't2', deployment: 'sales', name: 'second, renamed' }, '2026-03-01T00:00:00.000Z');
    expect(await repo.agentTokens.live('sales')).toEqual({ id: 't2', deployment: 'sales', name: 'second, renamed', createdAt: '2026-02-01T00:00:00.000Z' });
    await repo.agentTokens.markDeleted('t2', '2026-04-01T00:00:00.000Z');
    expect(await repo.agentTokens.live('sales')).toEqual({ id: 't1', deployment: 'sales', name: 'first', createdAt: '2026-01-01T00:00:00.000Z', endAt: '2027-01-01T00:00:00.000Z', jobId: 'job-1' });
    expect((await repo.agentTokens.rows('sales')).map((r) => [r.id, r.deletedAt])).toEqual([['t2', '2026-04-01T00:00:00.000Z'], ['t1', undefined]]);
    expect(await repo.agentTokens.live('other')).toBeUndefined();

    const id = await repo.secrets.seal('repo-sealed-value-31337', 'git-token');
    expect(await repo.secrets.open(id)).toBe('repo-sealed-value-31337');
    expect(await store().everyRowAsText()).not.toContain('repo-sealed-value-31337');
    await repo.secrets.erase(id);
    await expect(repo.secrets.open(id)).rejects.toThrow(`sealed secret ${id} was erased`);
    expect(await repo.ping(2000)).toBe(true);
  });

  it('repo secrets: the sweep erases old secrets no active or recently failed job refers to, and audits it', async () => {
    const s = store();
    const { repo } = s;
    const H = 3600_000;
    const old = new Date(Date.now() - 25 * H).toISOString();
    const sealOld = async (value: string) => {
      const id = await repo.secrets.seal(value, 'agent.token');
      await s.setSealedRow(id, { createdAt: old });
      return id;
    };
    const [abandoned, active, failedLongAgo, failedRecently] = [await sealOld('abandoned-wizard-token'), await sealOld('active-job-token'), await sealOld('old-failure-token'), await sealOld('new-failure-token')];
    const fresh = await repo.secrets.seal('fresh-wizard-token');
    const submitUsing = (id: string, deployment: string, secret: string) => {
      const spec = { ...fakeSpec(deployment), agent: { token: { stored: secret } } } as unknown as ReturnType<typeof fakeSpec>;
      return repo.jobs.submit({ spec, requestedBy: alice, origin: { kind: 'cli' }, id, plan: fakePlan(spec) });
    };
    await submitUsing('job-active', 'sales', active);
    s.tick(-25 * H);
    await submitUsing('job-old', 'old', failedLongAgo);
    await repo.jobs.fail('job-old', 'boom');
    s.tick(24 * H);
    await submitUsing('job-recent', 'recent', failedRecently);
    await repo.jobs.fail('job-recent', 'boom');
    s.tick(H);
    expect((await repo.secrets.sweep(24 * H)).sort()).toEqual([abandoned, failedLongAgo].sort());
    expect(await repo.secrets.sweep(24 * H)).toEqual([]);
    for (const id of [abandoned, failedLongAgo]) await expect(repo.secrets.open(id)).rejects.toThrow(`sealed secret ${id} was erased`);
    expect(await repo.secrets.open(active)).toBe('active-job-token');
    expect(await repo.secrets.open(failedRecently)).toBe('new-failure-token');
    expect(await repo.secrets.open(fresh)).toBe('fresh-wizard-token');
    const swept = (await repo.audit.export()).filter((r) => r.action === 'secrets.swept');
    expect(swept).toHaveLength(1);
    expect(swept[0]).toMatchObject({ actor: 'system', result: 'erased', details: { olderThanHours: 24 } });
    expect(((swept[0]!.details as { ids: string[] }).ids).sort()).toEqual([abandoned, failedLongAgo].sort());
    expect(await repo.audit.verify()).toMatchObject({ ok: true });
    expect(await repo.deployments.lastSpec('sales')).toMatchObject({ agent: { token: { stored: active } } });
    expect(await repo.deployments.lastSpec('nope')).toBeUndefined();
  });

  it('openRepository: the same database opened again (another replica) sees the same rows and the same lock', async () => {
    const s = store();
    const other = await s.openAgain();
    try {
      expect(other.dialect).toBe(s.repo.dialect);
      await submit(s.repo, 'job-1');
      expect(await lockedBy(submit(other, 'job-2'))).toEqual({ deployment: 'sales', holder: 'job-1', state: 'queued' });
      const id = await s.repo.secrets.seal('shared-between-replicas-77');
      expect(await other.secrets.open(id)).toBe('shared-between-replicas-77');
      expect(await other.jobs.claimNext({ owner: 'w2', leaseMs: 60_000 })).toBe('job-1');
      expect(await s.repo.jobs.claimNext({ owner: 'w1', leaseMs: 60_000 })).toBeUndefined();
    } finally {
      await other.close();
    }
  });
}

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

  it('openRepository on PostgreSQL without RE_BOT_SECRET_KEY is refused by name before connecting; a malformed URL names RE_BOT_DATABASE_URL', async () => {
    const saved = process.env.RE_BOT_SECRET_KEY;
    delete process.env.RE_BOT_SECRET_KEY;
    try {
      // port 1: nothing listens there, so a connection attempt would fail with another message
      const err = await openRepository('postgres://rebot:s3cret-pw@127.0.0.1:1/rebot').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^RE_BOT_SECRET_KEY: is required with RE_BOT_DATABASE_URL/);
      expect((err as Error).message).not.toContain('s3cret-pw');
      const bad = await openRepository('postgres://rebot@:99999/rebot', { secretKey: randomBytes(32) }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(ConfigError);
      expect((bad as Error).message).toMatch(/^RE_BOT_DATABASE_URL: /);
    } finally {
      if (saved !== undefined) process.env.RE_BOT_SECRET_KEY = saved;
    }
  });
});
