/**
 * Approvals and votes (src/jobs/approvals.ts) called directly with a settable clock: the request a step
 * records, who may vote, how votes are counted, expiry at decision time and by the sweep, and what each
 * outcome does to the waiting job. No worker loop runs; the job rows are written with src/jobs/queue.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.ts';
import { exportAudit, appendAudit } from '../../src/store/audit.ts';
import { claimNext, failJob, getJob, submitJob, type AuditFn } from '../../src/jobs/queue.ts';
import { createApprovals, type DecideInput } from '../../src/jobs/approvals.ts';
import { SuspendForApproval } from '../../src/jobs/runner.ts';
import { jobView } from '../../src/jobs/views.ts';
import type { ApprovalPolicy, JobEvent } from '../../src/jobs/types.ts';
import type { ApprovalRequest } from '../../src/checklist/types.ts';
import { fakePlan, fakeSpec, policy as mkPolicy, tmpDb } from './helpers.ts';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const HOUR = 3_600_000;
const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const carol = { id: 'UCAROL' };
const dave = { id: 'UDAVE' };

const stores: Store[] = [];
afterEach(() => { for (const s of stores.splice(0)) s.close(); });

const req = (hash = 'H1', o: Partial<ApprovalRequest> = {}): ApprovalRequest =>
  ({ title: 'helm upgrade sales', hash, diffText: '+ replicas: 2', changedKeys: ['replicas'], facts: { chart: 'astro-agent 2.3.3' }, ...o });

function setup(p: Partial<ApprovalPolicy> = {}, store = openStore({ path: tmpDb() })) {
  if (!stores.includes(store)) stores.push(store);
  const clock = { t: T0 };
  const events: JobEvent[] = [];
  const failed: Array<[string, string]> = [];
  let kicks = 0;
  const audit: AuditFn = (j, actor, action, extra = {}) =>
    void appendAudit(store, { actor, action, jobId: j.id, deployment: j.deployment, valuesHash: j.valuesHash, ...extra }, new Date(clock.t));
  const iso = () => new Date(clock.t).toISOString();
  const ap = createApprovals({
    store, policy: mkPolicy({ expiresInMs: HOUR, ...p }), now: () => clock.t, iso, emit: (e) => events.push(e),
    view: (id) => jobView(store, id)!, audit,
    failJob: (id, error) => { failed.push([id, error]); failJob(store, id, error, iso()); },
    kick: () => { kicks++; },
  });
  /** a running job of deployment `name` requested by alice */
  const running = (id = 'j1', name = 'sales') => {
    const spec = fakeSpec(name);
    submitJob(store, { spec, requestedBy: alice, origin: { kind: 'cli' }, id, plan: fakePlan(spec), at: iso() }, () => {});
    claimNext(store, { owner: 'w', now: clock.t, leaseMs: 60_000, at: iso(), exclude: [] });
    return getJob(store, id)!;
  };
  /** the step asks for approval: returns the approval id it is suspended on */
  const ask = async (jobId = 'j1', stepId = 'b', r = req()) => {
    const err = await ap.requireApproval(getJob(store, jobId)!, stepId, r).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(SuspendForApproval);
    return (err as SuspendForApproval).approvalId;
  };
  const decide = (id: string, by: { id: string; display?: string }, o: Partial<DecideInput> = {}) => ap.decide(id, { by, decision: 'approve', hash: 'H1', ...o });
  const approval = (id: string) => store.sqlite.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Record<string, unknown>;
  const votes = (id: string) => (store.sqlite.prepare('SELECT user, decision FROM approval_votes WHERE approval_id = ? ORDER BY at, user').all(id) as Array<{ user: string; decision: string }>).map((v) => `${v.user}:${v.decision}`);
  const job = (id = 'j1') => getJob(store, id)!;
  const step = (stepId = 'b', jobId = 'j1') => store.sqlite.prepare('SELECT state, error, finished_at AS finishedAt FROM job_steps WHERE job_id = ? AND step_id = ?').get(jobId, stepId) as { state: string; error: string | null; finishedAt: string | null };
  const audits = (action: string) => exportAudit(store).filter((e) => e.action === action);
  return { store, clock, events, failed, kicks: () => kicks, ap, running, ask, decide, approval, votes, job, step, audits };
}

describe('requireApproval', () => {
  it('records one pending request with the frozen policy and expiry, parks the job without a lease, and suspends the step', async () => {
    const s = setup({ required: 2, approvers: ['UBOB'] });
    s.running();
    const id = await s.ask('j1', 'b', req('H1', { review: { summary: 'two replicas' } as never }));
    expect(id).toMatch(/^apr_/);
    expect(s.approval(id)).toMatchObject({ job_id: 'j1', step_id: 'b', hash: 'H1', title: 'helm upgrade sales', diff_text: '+ replicas: 2', state: 'pending', required: 2,
      requested_at: new Date(T0).toISOString(), expires_at: new Date(T0 + HOUR).toISOString(), decided_at: null });
    expect(JSON.parse(s.approval(id).policy as string)).toEqual({ approvers: ['UBOB'], required: 2, allowSelfApproval: false, expiresInMs: HOUR });
    expect(JSON.parse(s.approval(id).review as string)).toEqual({ summary: 'two replicas' });
    expect(s.job()).toMatchObject({ state: 'waiting_approval', leaseOwner: null, leaseExpiresAt: null });
    expect(s.step().state).toBe('waiting_approval');
    expect(s.events.map((e) => e.type)).toEqual(['approval.requested']);
    expect(s.events[0]).toMatchObject({ job: { id: 'j1', state: 'waiting_approval' }, approval: { id, state: 'pending', required: 2, approvers: ['UBOB'], approvals: [] } });
    expect(s.audits('approval.requested').map((e) => [e.actor, e.details])).toEqual([['system', { approvalId: id, stepId: 'b', hash: 'H1', title: 'helm upgrade sales' }]]);
  });

  it('a policy asking for 0 approvals still needs one; no review is stored as none', async () => {
    const s = setup({ required: 0 });
    s.running();
    const id = await s.ask();
    expect(s.approval(id)).toMatchObject({ required: 1, review: null });
  });

  it('asking again for the same values while pending reuses the request; new values supersede it', async () => {
    const s = setup();
    s.running();
    const first = await s.ask();
    expect(await s.ask()).toBe(first);
    expect(s.approval(first).state).toBe('pending');
    expect(s.store.sqlite.prepare('SELECT COUNT(*) AS n FROM approvals').get()).toEqual({ n: 1 });
    expect(s.audits('approval.requested')).toHaveLength(1);
    s.clock.t += 1000;
    const second = await s.ask('j1', 'b', req('H2'));
    expect(second).not.toBe(first);
    expect(s.approval(first)).toMatchObject({ state: 'superseded', decided_at: new Date(T0 + 1000).toISOString() });
    expect(s.approval(second)).toMatchObject({ state: 'pending', hash: 'H2' });
    expect(s.audits('approval.superseded').map((e) => [e.actor, e.jobId, e.details])).toEqual([['system', 'j1', { approvalId: first, oldHash: 'H1', newHash: 'H2' }]]);
    expect(await s.decide(first, bob)).toMatchObject({ ok: false, reason: 'stale_hash', message: 'these values changed after this request; approve the newer request instead' });
  });

  it('once approved, the same values pass with the approvers\' names; other values, another step or another job ask anew', async () => {
    const s = setup({ required: 2 });
    s.running();
    const id = await s.ask();
    await s.decide(id, bob);
    await s.decide(id, carol);
    expect(await s.ap.requireApproval(s.job(), 'b', req())).toEqual({ approvalId: id, hash: 'H1', approvedBy: ['UBOB', 'UCAROL'] });
    // the same hash for another step is a new request; the approval of step b stands
    const forC = await s.ask('j1', 'c');
    expect(forC).not.toBe(id);
    expect(s.approval(id).state).toBe('approved');
    // and another job of another deployment with the same hash asks too
    s.running('j2', 'billing');
    expect(await s.ask('j2', 'b')).not.toBe(id);
    // changed values after the approval: the approval no longer counts
    await s.ask('j1', 'b', req('H9'));
    expect(s.approval(id).state).toBe('superseded');
  });

  it('a rejected or expired request is never reused: after a retry the same values need a new approval', async () => {
    const s = setup();
    s.running();
    const rejected = await s.ask();
    await s.decide(rejected, bob, { decision: 'reject' });
    s.store.sqlite.prepare("UPDATE jobs SET state = 'running' WHERE id = 'j1'").run(); // retried and running again
    const again = await s.ask();
    expect(again).not.toBe(rejected);
    expect(s.approval(again).state).toBe('pending');
    s.clock.t += HOUR;
    s.ap.expireApprovals();
    s.store.sqlite.prepare("UPDATE jobs SET state = 'running' WHERE id = 'j1'").run();
    const third = await s.ask();
    expect([rejected, again]).not.toContain(third);
    expect(s.approval(third).state).toBe('pending');
  });
});

describe('votes', () => {
  it('a duplicate vote is refused and not counted: with two required, the same user twice leaves it pending', async () => {
    const s = setup({ required: 2 });
    s.running();
    const id = await s.ask();
    expect(await s.decide(id, bob)).toMatchObject({ ok: true, approval: { state: 'pending', approvals: [{ user: 'UBOB' }] } });
    expect(s.kicks()).toBe(0);
    expect(s.job().state).toBe('waiting_approval');
    expect(await s.decide(id, bob)).toEqual({ ok: false, reason: 'duplicate', message: 'you already voted on this request; another approver is needed' });
    expect(await s.decide(id, bob, { decision: 'reject' })).toMatchObject({ ok: false, reason: 'duplicate' });
    expect(s.votes(id)).toEqual(['UBOB:approve']);
    expect(s.approval(id).state).toBe('pending');
    expect(s.job().state).toBe('waiting_approval');
    expect(s.kicks()).toBe(0);
    expect(await s.decide(id, carol)).toMatchObject({ ok: true, approval: { state: 'approved', approvals: [{ user: 'UBOB' }, { user: 'UCAROL' }] } });
  });

  it('the required count is met exactly at N distinct approvals: then the step is pending again, the job queued and the worker woken once', async () => {
    const s = setup({ required: 3 });
    s.running();
    const id = await s.ask();
    s.clock.t += 10;
    await s.decide(id, bob);
    s.clock.t += 10;
    const second = await s.decide(id, carol);
    expect(second).toMatchObject({ ok: true, approval: { state: 'pending' } });
    expect(s.job().state).toBe('waiting_approval');
    s.clock.t += 10;
    const third = await s.decide(id, dave, { by: { id: 'UDAVE', display: 'Dave' } });
    expect(third).toMatchObject({ ok: true, approval: { state: 'approved', approvals: [{ user: 'UBOB' }, { user: 'UCAROL' }, { user: 'UDAVE' }] } });
    expect(s.approval(id)).toMatchObject({ state: 'approved', decided_at: new Date(T0 + 30).toISOString() });
    expect(s.job()).toMatchObject({ state: 'queued', updatedAt: new Date(T0 + 30).toISOString() });
    expect(s.step().state).toBe('pending');
    expect(s.kicks()).toBe(1);
    expect(s.audits('approval.decided').map((e) => [e.actor, e.decision, e.result, e.details])).toEqual([
      ['UBOB', 'approve', 'pending', { approvalId: id, hash: 'H1' }],
      ['UCAROL', 'approve', 'pending', { approvalId: id, hash: 'H1' }],
      ['UDAVE', 'approve', 'approved', { approvalId: id, hash: 'H1', as: 'Dave' }],
    ]);
    expect(s.events.filter((e) => e.type === 'approval.updated').map((e) => (e as { approval: { state: string; approvals: unknown[] } }).approval.state)).toEqual(['pending', 'pending', 'approved']);
  });

  it('the requester may not approve their own job unless the policy allows it', async () => {
    const s = setup({ required: 2 });
    s.running();
    const id = await s.ask();
    expect(await s.decide(id, alice)).toEqual({ ok: false, reason: 'self_approval', message: 'the requester cannot approve their own job' });
    expect(s.votes(id)).toEqual([]);
    const r = s.audits('approval.refused');
    expect(r.map((e) => [e.actor, e.jobId, e.deployment, e.valuesHash, e.decision, e.result, e.details])).toEqual([
      ['UALICE', 'j1', 'sales', 'vh1', 'approve', 'self_approval', { approvalId: id, hash: 'H1', message: 'the requester cannot approve their own job' }],
    ]);
    expect(r[0].at).toBe(new Date(T0).toISOString());

    const open = setup({ allowSelfApproval: true });
    open.running();
    const id2 = await open.ask();
    expect(await open.decide(id2, alice)).toMatchObject({ ok: true, approval: { state: 'approved', approvals: [{ user: 'UALICE' }] } });
  });

  it('with an approver list, only listed users or members of a listed group may vote; without one, anyone but the requester', async () => {
    const s = setup({ approvers: ['UBOB', 'SPLATFORM'], required: 3 });
    s.running();
    const id = await s.ask();
    expect(await s.decide(id, carol)).toEqual({ ok: false, reason: 'not_approver', message: 'you are not on the approver list for this deployment' });
    expect(await s.decide(id, carol, { userGroups: ['SOTHER'] })).toMatchObject({ ok: false, reason: 'not_approver' });
    expect(await s.decide(id, bob)).toMatchObject({ ok: true });
    expect(await s.decide(id, carol, { userGroups: ['SOTHER', 'SPLATFORM'] })).toMatchObject({ ok: true });
    expect(s.votes(id)).toEqual(['UBOB:approve', 'UCAROL:approve']);

    const anyone = setup();
    anyone.running();
    const id2 = await anyone.ask();
    expect(await anyone.decide(id2, dave)).toMatchObject({ ok: true, approval: { state: 'approved' } });
  });

  it('decides under the policy frozen at request time, not the one configured later', async () => {
    const store = openStore({ path: tmpDb() });
    const before = setup({ approvers: ['UBOB'], required: 1 }, store);
    before.running();
    const id = await before.ask();
    const later = setup({ approvers: ['UCAROL'], required: 1, allowSelfApproval: true }, store);
    expect(await later.decide(id, carol)).toMatchObject({ ok: false, reason: 'not_approver' });
    expect(await later.decide(id, alice)).toMatchObject({ ok: false, reason: 'self_approval' });
    expect(await later.decide(id, bob)).toMatchObject({ ok: true, approval: { state: 'approved' } });
  });

  it('a vote for other values than the pending request is refused, naming both hashes', async () => {
    const s = setup();
    s.running();
    const id = await s.ask('j1', 'b', req('0123456789abcdefXXXX'));
    expect(await s.decide(id, bob, { hash: 'fedcba9876543210YYYY' })).toEqual({ ok: false, reason: 'stale_hash',
      message: 'you approved values hash fedcba987654, but the pending request is for 0123456789ab' });
    expect(s.votes(id)).toEqual([]);
  });

  it('a rejection ends the request at once, fails the step and the job with the reason, and wakes nobody', async () => {
    const s = setup({ required: 2 });
    s.running();
    const id = await s.ask();
    await s.decide(id, bob);
    s.clock.t += 5;
    const r = await s.decide(id, carol, { decision: 'reject', reason: `  wrong cluster ${'x'.repeat(600)}  ` });
    expect(r).toMatchObject({ ok: true, approval: { state: 'rejected', rejectedBy: 'UCAROL' } });
    const reason = `wrong cluster ${'x'.repeat(600)}`.slice(0, 500);
    expect(s.approval(id)).toMatchObject({ state: 'rejected', rejected_by: 'UCAROL', reject_reason: reason, decided_at: new Date(T0 + 5).toISOString() });
    const msg = `rejected by UCAROL: helm upgrade sales — reason: ${reason}`;
    expect(s.failed).toEqual([['j1', msg]]);
    expect(s.job()).toMatchObject({ state: 'failed', error: msg });
    expect(s.step()).toEqual({ state: 'failed', error: msg, finishedAt: new Date(T0 + 5).toISOString() });
    expect(s.kicks()).toBe(0);
    expect(s.audits('approval.decided').at(-1)).toMatchObject({ actor: 'UCAROL', decision: 'reject', result: 'rejected', details: { approvalId: id, hash: 'H1', reason } });
    expect(await s.decide(id, dave)).toEqual({ ok: false, reason: 'already_decided', message: 'this approval is already rejected' });
  });

  it('a rejection without a reason (or only spaces) says who rejected and nothing more', async () => {
    const s = setup();
    s.running();
    const id = await s.ask();
    await s.decide(id, bob, { decision: 'reject', reason: '   ' });
    expect(s.approval(id).reject_reason).toBeNull();
    expect(s.job().error).toBe('rejected by UBOB: helm upgrade sales');
    expect(s.audits('approval.decided').at(-1)!.details).toEqual({ approvalId: id, hash: 'H1' });
  });

  it('an approved request refuses further votes', async () => {
    const s = setup();
    s.running();
    const id = await s.ask();
    await s.decide(id, bob);
    expect(await s.decide(id, carol)).toEqual({ ok: false, reason: 'already_decided', message: 'this approval is already approved' });
    expect(await s.decide(id, carol, { decision: 'reject' })).toMatchObject({ ok: false, reason: 'already_decided' });
    expect(s.votes(id)).toEqual(['UBOB:approve']);
    expect(s.job().state).toBe('queued');
  });

  it('an unknown approval id is refused and the refusal is audited', async () => {
    const s = setup();
    expect(await s.decide('apr_nope', bob)).toEqual({ ok: false, reason: 'not_found', message: 'approval apr_nope not found' });
    expect(s.audits('approval.refused').map((e) => [e.actor, e.jobId, e.result, e.details])).toEqual([['UBOB', null, 'not_found', { approvalId: 'apr_nope', hash: 'H1', message: 'approval apr_nope not found' }]]);
  });

  it('approving or rejecting a request whose job already ended does not revive or re-fail the job', async () => {
    const s = setup();
    s.running('j1', 'sales');
    const a = await s.ask('j1');
    s.running('j2', 'billing');
    const b = await s.ask('j2');
    failJob(s.store, 'j1', 'runner crashed', new Date(T0).toISOString());
    failJob(s.store, 'j2', 'runner crashed', new Date(T0).toISOString());
    expect(await s.decide(a, bob)).toMatchObject({ ok: true, approval: { state: 'approved' } });
    expect(s.job('j1')).toMatchObject({ state: 'failed', error: 'runner crashed' });
    expect(s.step('b', 'j1').state).toBe('waiting_approval');
    expect(await s.decide(b, bob, { decision: 'reject' })).toMatchObject({ ok: true, approval: { state: 'rejected' } });
    expect(s.job('j2')).toMatchObject({ state: 'failed', error: 'runner crashed' });
    expect(s.failed).toEqual([]);
  });
});

describe('expiry', () => {
  it('decide() at the expiry instant refuses, expires the request and fails the waiting job; one millisecond before, the vote counts', async () => {
    const s = setup();
    s.running('j1', 'sales');
    const late = await s.ask('j1');
    s.running('j2', 'billing');
    const inTime = await s.ask('j2');
    s.clock.t = T0 + HOUR - 1;
    expect(await s.decide(inTime, bob)).toMatchObject({ ok: true, approval: { state: 'approved' } });
    s.clock.t = T0 + HOUR;
    const expiresAt = new Date(T0 + HOUR).toISOString();
    expect(await s.decide(late, bob)).toEqual({ ok: false, reason: 'expired', message: `this approval expired at ${expiresAt}; the job failed — retry it to ask again` });
    expect(s.votes(late)).toEqual([]);
    expect(s.approval(late)).toMatchObject({ state: 'expired', decided_at: expiresAt });
    const msg = `approval "helm upgrade sales" expired at ${expiresAt} without 1 approval(s)`;
    expect(s.failed).toEqual([['j1', msg]]);
    expect(s.step('b', 'j1')).toEqual({ state: 'failed', error: msg, finishedAt: expiresAt });
    expect(s.audits('approval.expired').map((e) => [e.actor, e.jobId, e.result, e.details])).toEqual([['system', 'j1', 'expired', { approvalId: late, hash: 'H1' }]]);
    expect(s.audits('approval.refused').map((e) => e.result)).toEqual(['expired']);
    expect(s.events.at(-1)).toMatchObject({ type: 'approval.updated', approval: { id: late, state: 'expired' } });
    // asked again later: expired, without failing the job a second time
    expect(await s.decide(late, carol)).toEqual({ ok: false, reason: 'expired', message: `this approval expired at ${expiresAt}` });
    expect(s.failed).toHaveLength(1);
  });

  it('the sweep expires only requests whose time has come, and fails only jobs still waiting on them', async () => {
    const s = setup();
    s.running('j1', 'sales');
    const first = await s.ask('j1');
    s.clock.t += 1000;
    s.running('j2', 'billing');
    const second = await s.ask('j2');
    s.clock.t = T0 + HOUR - 1;
    s.ap.expireApprovals();
    expect([s.approval(first).state, s.approval(second).state]).toEqual(['pending', 'pending']);
    expect(s.failed).toEqual([]);
    s.clock.t = T0 + HOUR;
    s.ap.expireApprovals();
    expect([s.approval(first).state, s.approval(second).state]).toEqual(['expired', 'pending']);
    expect(s.failed.map(([id]) => id)).toEqual(['j1']);
    expect(s.job('j1').state).toBe('failed');
    expect(s.job('j2').state).toBe('waiting_approval');
    // a job that already failed (its runner crashed) is not failed again when its request expires
    failJob(s.store, 'j2', 'runner crashed', new Date(s.clock.t).toISOString());
    s.clock.t = T0 + HOUR + 1000;
    s.ap.expireApprovals();
    expect(s.approval(second).state).toBe('expired');
    expect(s.failed.map(([id]) => id)).toEqual(['j1']);
    expect(s.job('j2').error).toBe('runner crashed');
    expect(s.step('b', 'j2').state).toBe('waiting_approval');
  });
});
