/**
 * Approval requests and decisions of src/store/pg/approvals.ts against src/jobs/approvals.ts: the same refusals
 * (reason and message), votes, approval/job/step states and audit rows; on PostgreSQL alone, replicas receiving
 * clicks at once decide once.
 */
import { expect, it } from 'vitest';
import * as queue from '../../src/jobs/queue.ts';
import { createApprovals, type DecideInput } from '../../src/jobs/approvals.ts';
import { SuspendForApproval } from '../../src/jobs/runner.ts';
import { jobView } from '../../src/jobs/views.ts';
import type { ApprovalPolicy, DecisionResult } from '../../src/jobs/types.ts';
import type { ApprovalRequest } from '../../src/checklist/types.ts';
import { decideApprovalPg, expireApprovalsPg, requestApprovalPg } from '../../src/store/pg/approvals.ts';
import { getJobPg, submitJobPg } from '../../src/store/pg/jobs.ts';
import { verifyAuditChainPg } from '../../src/store/pg/audit.ts';
import { verifyAuditChain } from '../../src/store/audit.ts';
import { fakePlan, fakeSpec, policy } from '../jobs/helpers.ts';
import { describeTwins, rowsOf, type Twins } from '../support/pg-twins.ts';

const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const carol = { id: 'UCAROL' };

const request = (hash = 'hash-1'): ApprovalRequest => ({
  title: 'helm upgrade --install astro-agent', hash, diffText: '+ replicas: 2', changedKeys: ['replicas'], facts: { chart: '2.3.3' },
});

function sqliteApprovals(t: Twins, p: ApprovalPolicy) {
  return createApprovals({
    store: t.lite, policy: p, now: t.now, iso: t.iso, emit: () => {}, view: (id) => jobView(t.lite, id)!, audit: t.liteAudit, kick: () => {},
    // as the engine's failJob (src/jobs/engine.ts)
    failJob: (jobId, error) => {
      queue.failJob(t.lite, jobId, error, t.iso());
      t.liteAudit(queue.getJob(t.lite, jobId)!, 'system', 'job.finished', { result: 'failed', details: { error } });
    },
  });
}

/** a job of alice's, running step b, which asks for approval on both sides; returns each side's approval id */
async function waitingJob(t: Twins, p: ApprovalPolicy, req = request()) {
  const spec = fakeSpec('sales');
  const input = { spec, requestedBy: alice, origin: { kind: 'cli' as const }, id: 'job-1', plan: fakePlan(spec), at: t.iso() };
  queue.submitJob(t.lite, input, t.liteAudit);
  await submitJobPg(t.pg.db, input, t.pgAudit);
  return ask(t, p, req);
}

async function ask(t: Twins, p: ApprovalPolicy, req: ApprovalRequest) {
  t.tick();
  let liteId = '';
  await sqliteApprovals(t, p).requireApproval(queue.getJob(t.lite, 'job-1')!, 'b', req).catch((err: unknown) => {
    if (!(err instanceof SuspendForApproval)) throw err;
    liteId = err.approvalId;
  });
  const asked = await requestApprovalPg(t.pg.db, (await getJobPg(t.pg.db, 'job-1'))!, 'b', req, { policy: p, now: t.now, iso: t.iso, audit: t.pgAudit });
  if (!('pending' in asked)) throw new Error('expected a pending request');
  return { liteId, pgId: asked.pending.approvalId };
}

const outcome = (r: DecisionResult | Awaited<ReturnType<typeof decideApprovalPg>>) => (r.ok ? { ok: true } : { ok: false, reason: r.reason, message: r.message });

async function decideBoth(t: Twins, p: ApprovalPolicy, ids: { liteId: string; pgId: string }, input: DecideInput) {
  t.tick();
  const l = await sqliteApprovals(t, p).decide(ids.liteId, input);
  const g = await decideApprovalPg(t.pg.db, ids.pgId, input, { now: t.now, iso: t.iso, audit: t.pgAudit });
  expect(outcome(g), `${input.by.id} ${input.decision}`).toEqual(outcome(l));
  return { lite: l, pg: g };
}

async function sameRows(t: Twins) {
  const [l, p] = [await rowsOf(t, 'lite', { hashes: false }), await rowsOf(t, 'pg', { hashes: false })];
  expect(p).toEqual(l);
  expect(await verifyAuditChainPg(t.pg.db)).toMatchObject({ ok: true });
  expect(verifyAuditChain(t.lite)).toMatchObject({ ok: true });
  return p;
}

describeTwins('PostgreSQL approvals, beside SQLite\'s', (twins) => {
  it('a request parks step and job; asking again for the same hash adds nothing; a new hash supersedes the old request', async () => {
    const t = twins();
    const p = policy();
    await waitingJob(t, p);
    let rows = await sameRows(t);
    expect(rows.jobs[0]).toMatchObject({ state: 'waiting_approval', leaseOwner: null });
    expect(rows.steps.find((s) => s.stepId === 'b')!.state).toBe('waiting_approval');
    await ask(t, p, request());
    await ask(t, p, request('hash-2'));
    rows = await sameRows(t);
    expect(rows.approvals.map((a) => [a.hash, a.state])).toEqual([['hash-1', 'superseded'], ['hash-2', 'pending']]);
    expect(rows.audit.map((a) => a.action)).toEqual(['job.submitted', 'approval.requested', 'approval.superseded', 'approval.requested']);
  });

  it('refusals are the same, then an approval requeues the job, and asking again for that hash is granted', async () => {
    const t = twins();
    const p = policy({ approvers: ['UBOB', 'S-OPS'] });
    const ids = await waitingJob(t, p);
    const refused = [
      await decideBoth(t, p, ids, { by: alice, decision: 'approve', hash: 'hash-1', userGroups: ['S-OPS'] }),
      await decideBoth(t, p, ids, { by: bob, decision: 'approve', hash: 'hash-0' }),
      await decideBoth(t, p, ids, { by: carol, decision: 'approve', hash: 'hash-1' }),
    ];
    expect(refused.map((r) => (r.pg.ok ? 'ok' : r.pg.reason))).toEqual(['self_approval', 'stale_hash', 'not_approver']);
    const ok = await decideBoth(t, p, ids, { by: carol, decision: 'approve', hash: 'hash-1', userGroups: ['S-OPS'] });
    expect(ok.pg).toMatchObject({ ok: true, outcome: 'approved', jobRequeued: true });
    const again = await decideBoth(t, p, ids, { by: bob, decision: 'approve', hash: 'hash-1' });
    expect(again.pg).toMatchObject({ ok: false, reason: 'already_decided', message: 'this approval is already approved' });
    const rows = await sameRows(t);
    expect(rows.jobs[0]!.state).toBe('queued');
    expect(rows.steps.find((s) => s.stepId === 'b')!.state).toBe('pending');
    expect(rows.audit.filter((a) => a.action === 'approval.refused').map((a) => a.result)).toEqual(['self_approval', 'stale_hash', 'not_approver', 'already_decided']);
    const granted = await requestApprovalPg(t.pg.db, (await getJobPg(t.pg.db, 'job-1'))!, 'b', request(), { policy: p, now: t.now, iso: t.iso, audit: t.pgAudit });
    expect(granted).toEqual({ granted: { approvalId: ids.pgId, hash: 'hash-1', approvedBy: ['UCAROL'] } });
  });

  it('two approvals required: a second vote by the same user is refused; the second approver decides', async () => {
    const t = twins();
    const p = policy({ required: 2 });
    const ids = await waitingJob(t, p);
    expect((await decideBoth(t, p, ids, { by: bob, decision: 'approve', hash: 'hash-1' })).pg).toMatchObject({ ok: true, outcome: 'pending', jobRequeued: false });
    expect((await decideBoth(t, p, ids, { by: bob, decision: 'approve', hash: 'hash-1' })).pg).toMatchObject({ ok: false, reason: 'duplicate' });
    expect((await decideBoth(t, p, ids, { by: carol, decision: 'approve', hash: 'hash-1' })).pg).toMatchObject({ ok: true, outcome: 'approved' });
    const rows = await sameRows(t);
    expect(rows.votes.map((v) => v.user)).toEqual(['UBOB', 'UCAROL']);
  });

  it('a rejection with a reason fails the step and the job with the same message', async () => {
    const t = twins();
    const p = policy();
    const ids = await waitingJob(t, p);
    const r = await decideBoth(t, p, ids, { by: bob, decision: 'reject', hash: 'hash-1', reason: '  wrong cluster  ' });
    expect(r.pg).toMatchObject({ ok: true, outcome: 'rejected', jobFailed: 'rejected by UBOB: helm upgrade --install astro-agent — reason: wrong cluster' });
    const rows = await sameRows(t);
    expect(rows.jobs[0]).toMatchObject({ state: 'failed', error: 'rejected by UBOB: helm upgrade --install astro-agent — reason: wrong cluster' });
    expect(rows.approvals[0]).toMatchObject({ state: 'rejected', rejectedBy: 'UBOB', rejectReason: 'wrong cluster' });
  });

  it('expiry is honoured at decide time: the click past the deadline expires the request and fails the job', async () => {
    const t = twins();
    const p = policy({ expiresInMs: 60_000 });
    const ids = await waitingJob(t, p);
    t.tick(60_000);
    const late = await decideBoth(t, p, ids, { by: bob, decision: 'approve', hash: 'hash-1' });
    expect(late.pg).toMatchObject({ ok: false, reason: 'expired' });
    expect((late.pg as { message: string }).message).toMatch(/^this approval expired at 2026-01-01T12:01:01\.000Z; the job failed/);
    const again = await decideBoth(t, p, ids, { by: carol, decision: 'approve', hash: 'hash-1' });
    expect(again.pg).toMatchObject({ ok: false, reason: 'expired', message: 'this approval expired at 2026-01-01T12:01:01.000Z' });
    const rows = await sameRows(t);
    expect(rows.jobs[0]).toMatchObject({ state: 'failed', error: 'approval "helm upgrade --install astro-agent" expired at 2026-01-01T12:01:01.000Z without 1 approval(s)' });
    expect(rows.votes).toEqual([]);
  });

  it('the expiry sweep expires the same requests and fails the same jobs', async () => {
    const t = twins();
    const p = policy({ expiresInMs: 60_000 });
    await waitingJob(t, p);
    t.tick(30_000);
    sqliteApprovals(t, p).expireApprovals();
    expect(await expireApprovalsPg(t.pg.db, { now: t.now, iso: t.iso, audit: t.pgAudit })).toEqual([]);
    t.tick(30_000);
    sqliteApprovals(t, p).expireApprovals();
    expect(await expireApprovalsPg(t.pg.db, { now: t.now, iso: t.iso, audit: t.pgAudit })).toHaveLength(1);
    const rows = await sameRows(t);
    expect(rows.approvals.map((a) => a.state)).toEqual(['expired']);
    expect(rows.jobs[0]!.state).toBe('failed');
  });

  it('the same click reaching two replicas at once is decided once', async () => {
    const t = twins();
    const p = policy();
    const { pgId } = await waitingJob(t, p);
    const click: DecideInput = { by: bob, decision: 'approve', hash: 'hash-1' };
    const results = await Promise.all([t.pg, t.pg2, t.pg, t.pg2].map((s) => decideApprovalPg(s.db, pgId, click, { now: t.now, iso: t.iso, audit: t.pgAudit })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual(['already_decided', 'already_decided', 'already_decided']);
    const rows = await rowsOf(t, 'pg', { hashes: false });
    expect(rows.votes).toHaveLength(1);
    expect(rows.audit.filter((a) => a.action === 'approval.decided')).toHaveLength(1);
    expect(rows.jobs[0]!.state).toBe('queued');
    expect(await verifyAuditChainPg(t.pg.db)).toMatchObject({ ok: true });
  });

  it('two approvals required and both approvers clicking at once on two replicas: approved, exactly once', async () => {
    const t = twins();
    const p = policy({ required: 2 });
    const { pgId } = await waitingJob(t, p);
    const results = await Promise.all([[t.pg, bob], [t.pg2, carol]].map(([s, by]) =>
      decideApprovalPg((s as Twins['pg']).db, pgId, { by: by as typeof bob, decision: 'approve', hash: 'hash-1' }, { now: t.now, iso: t.iso, audit: t.pgAudit })));
    // without the row lock both transactions count one vote and neither approves
    expect(results.map((r) => r.ok && r.outcome).sort()).toEqual(['approved', 'pending']);
    const rows = await rowsOf(t, 'pg', { hashes: false });
    expect(rows.approvals[0]!.state).toBe('approved');
    expect(rows.jobs[0]!.state).toBe('queued');
    expect(rows.audit.filter((a) => a.action === 'approval.decided').map((a) => a.result).sort()).toEqual(['approved', 'pending']);
  });
}, 'pg_approvals');
