/**
 * The engine's safety properties that a single-line bug can break without any other test noticing:
 * expiry at decision time, vote counting, lease renewal, handing a job over, and the deployment lock on retry.
 */
import { describe, it, expect, afterEach } from 'vitest';
import type { StepHandler } from '../../src/checklist/types.ts';
import { DeploymentLockedError, type JobEngine } from '../../src/jobs/types.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { fakeSpec, makeEngine, ok, policy } from './helpers.ts';

const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const carol = { id: 'UCAROL' };
const engines: JobEngine[] = [];
afterEach(async () => { for (const e of engines.splice(0)) await e.stop(); });
const track = <T extends { engine: JobEngine }>(x: T) => { engines.push(x.engine); return x; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const gate = (id: string, hash = 'H1'): StepHandler => ({
  id,
  run: async (ctx) => {
    const g = await ctx.requireApproval({ title: 'helm upgrade', hash, diffText: '+ a: 1', changedKeys: ['a'], facts: { chart: '2.3.3' } });
    return { status: 'succeeded', summary: `approved by ${g.approvedBy.join(',')}` };
  },
});

/** a step that takes `ms` unless aborted; counts how many copies run at the same time */
function slowStep(id: string, ms: number, log: string[], shared: { active: number; max: number }, who: string): StepHandler {
  return {
    id,
    run: (ctx) => new Promise((resolve, reject) => {
      shared.active++;
      shared.max = Math.max(shared.max, shared.active);
      log.push(`${who}:${id}:start`);
      const t = setTimeout(() => { shared.active--; log.push(`${who}:${id}:end`); resolve({ status: 'succeeded', summary: `${id} by ${who}` }); }, ms);
      ctx.signal.addEventListener('abort', () => { clearTimeout(t); shared.active--; log.push(`${who}:${id}:aborted`); reject(new Error('aborted')); });
    }),
  };
}

describe('approvals: decision-time checks', () => {
  it('decide() on an approval past its expiry refuses and fails the job, even before the worker noticed', async () => {
    let t = Date.now();
    const { engine } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')], { clock: () => t, policy: policy({ expiresInMs: 1000 }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    await engine.stop(); // no worker tick can expire it first
    t += 1001;
    const r = await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' });
    expect(r).toMatchObject({ ok: false, reason: 'expired' });
    const v = (await engine.job(j.id))!;
    expect(v.approvals[0]).toMatchObject({ state: 'expired', approvals: [] });
    expect(v.state).toBe('failed');
    expect(v.error).toMatch(/expired/);
    expect(v.steps[1].state).toBe('failed');
  });

  it('one millisecond before expiry an approval still counts', async () => {
    let t = Date.now();
    const { engine } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')], { clock: () => t, policy: policy({ expiresInMs: 1000 }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    await engine.stop();
    t += 999;
    expect(await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: true, approval: { state: 'approved' } });
    expect((await engine.job(j.id))!.state).toBe('queued');
  });

  it('a second approve by the same user is refused and not counted: N=2 still needs another person', async () => {
    const { engine, store } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')], { policy: policy({ required: 2 }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    const first = await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' });
    expect(first).toMatchObject({ ok: true, approval: { state: 'pending', required: 2, approvals: [{ user: 'UBOB' }] } });
    const again = await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' });
    expect(again).toMatchObject({ ok: false, reason: 'duplicate' });
    const v = (await engine.job(j.id))!;
    expect(v.approvals[0].state).toBe('pending');
    expect(v.approvals[0].approvals.map((x) => x.user)).toEqual(['UBOB']);
    expect(v.state).toBe('waiting_approval');
    // a reject after an approve by the same user is a duplicate too, it does not flip the decision
    expect(await engine.decide(ap.id, { by: bob, decision: 'reject', hash: 'H1' })).toMatchObject({ ok: false, reason: 'duplicate' });
    expect((await engine.job(j.id))!.approvals[0].state).toBe('pending');
    expect(exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'approval.decided').map((e) => [e.actor, e.result])).toEqual([['UBOB', 'pending']]);
    const second = await engine.decide(ap.id, { by: carol, decision: 'approve', hash: 'H1' });
    expect(second).toMatchObject({ ok: true, approval: { state: 'approved', approvals: [{ user: 'UBOB' }, { user: 'UCAROL' }] } });
  });

  it('a decided approval refuses further votes; an unknown approval id is refused', async () => {
    const { engine } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    await engine.decide(ap.id, { by: bob, decision: 'reject', hash: 'H1' });
    expect(await engine.decide(ap.id, { by: carol, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'already_decided', message: 'this approval is already rejected' });
    expect((await engine.job(j.id))!.state).toBe('failed');
    expect(await engine.decide('apr_nope', { by: carol, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'not_found' });
  });

  it('self-approval is allowed only when the policy says so', async () => {
    const { engine } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')], { policy: policy({ allowSelfApproval: true }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    expect(await engine.decide(ap.id, { by: alice, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: true, approval: { state: 'approved' } });
  });
});

describe('leases', () => {
  it('a running job keeps its lease renewed while a step outlasts it', async () => {
    const log: string[] = [];
    const shared = { active: 0, max: 0 };
    const { engine, store } = track(makeEngine([ok('a'), slowStep('b', 2000, log, shared, 'A'), ok('c'), ok('d')], { leaseMs: 600 }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const lease = () => (store.sqlite.prepare('select lease_expires_at as e, lease_owner as o from jobs where id = ?').get(j.id) as { e: number | null; o: string | null });
    await waitFor(() => log.includes('A:b:start'));
    const first = lease().e!;
    expect(lease().o).toBe(engine.owner);
    await waitFor(() => (lease().e ?? 0) > first, 3000);
    expect(lease().o).toBe(engine.owner);
    await waitState(engine, j.id, 'succeeded');
    expect(lease()).toEqual({ e: null, o: null });
  });

  it('two engines on one DB: a step longer than the lease never runs on both at once', async () => {
    const log: string[] = [];
    const shared = { active: 0, max: 0 };
    const a = track(makeEngine([ok('a'), slowStep('b', 2000, log, shared, 'A'), ok('c'), ok('d')], { leaseMs: 600, owner: 'otherhost:1:aaaa' }));
    const b = track(makeEngine([ok('a'), slowStep('b', 2000, log, shared, 'B'), ok('c'), ok('d')], { leaseMs: 600, owner: 'otherhost:2:bbbb', path: a.store.path }));
    a.engine.start();
    const j = await a.engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    await waitFor(() => log.includes('A:b:start'));
    b.engine.start();
    const v = await waitState(a.engine, j.id, 'succeeded', 10_000);
    expect(shared.max).toBe(1);
    expect(log).toEqual(['A:b:start', 'A:b:end']);
    expect(v.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  });

  it('an engine that lost its lease (another owner took the job) aborts its step instead of finishing it too', async () => {
    const log: string[] = [];
    const shared = { active: 0, max: 0 };
    const dRuns: string[] = [];
    const d = (who: string): StepHandler => ({ id: 'd', run: async () => { dRuns.push(who); return { status: 'succeeded', summary: who }; } });
    const a = track(makeEngine([ok('a'), slowStep('b', 1500, log, shared, 'A'), ok('c'), d('A')], { leaseMs: 300, owner: 'otherhost:1:aaaa' }));
    a.engine.start();
    const j = await a.engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    await waitFor(() => log.includes('A:b:start'));
    // engine B's clock runs ahead, so A's (renewed) lease already looks expired to it: B takes the job over
    const ahead = () => Date.now() + 60_000;
    const b = track(makeEngine([ok('a'), slowStep('b', 1500, log, shared, 'B'), ok('c'), d('B')], { leaseMs: 300, owner: 'otherhost:2:bbbb', path: a.store.path, clock: ahead }));
    b.engine.start();
    await waitState(b.engine, j.id, 'succeeded', 10_000);
    await sleep(300);
    // A noticed it no longer holds the job while B was still running the step (not only once the job ended)
    expect(log.filter((l) => l.startsWith('A:'))).toEqual(['A:b:start', 'A:b:aborted']);
    expect(log.indexOf('A:b:aborted')).toBeLessThan(log.indexOf('B:b:end'));
    expect(dRuns).toEqual(['B']);
    expect((await b.engine.job(j.id))!.steps[1].summary).toBe('b by B');
  });
});

describe('retry and the deployment lock', () => {
  it('retry() of a failed job is refused while another job holds the deployment', async () => {
    let fail = true;
    const flaky: StepHandler = { id: 'a', run: async () => { if (fail) throw new Error('boom'); return { status: 'succeeded', summary: 'a' }; } };
    const { engine } = track(makeEngine([flaky, gate('b'), ok('c'), ok('d')]));
    engine.start();
    const j1 = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    expect((await engine.settled(j1.id)).state).toBe('failed');
    fail = false;
    const j2 = await engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } });
    expect((await engine.settled(j2.id)).state).toBe('waiting_approval');
    const err = await engine.retry(j1.id, alice).catch((e) => e);
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect(err.holder).toMatchObject({ jobId: j2.id, requestedBy: 'UBOB', state: 'waiting_approval' });
    const v1 = (await engine.job(j1.id))!;
    expect(v1.state).toBe('failed');
    expect(v1.attempt).toBe(1);
    // once the holder is gone, the retry goes through
    await engine.cancel(j2.id, bob);
    expect((await engine.retry(j1.id, alice)).state).toBe('queued');
    expect((await engine.settled(j1.id)).state).toBe('waiting_approval');
  });

  it('retry() refuses a job that is not failed or cancelled, and an unknown job', async () => {
    const { engine } = track(makeEngine([ok('a'), gate('b'), ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    await engine.settled(j.id);
    await expect(engine.retry(j.id, alice)).rejects.toThrow(`job ${j.id} is waiting_approval; only failed or cancelled jobs can be retried`);
    await expect(engine.retry('job_nope', alice)).rejects.toThrow('job job_nope not found');
    await expect(engine.cancel('job_nope', alice)).rejects.toThrow('job job_nope not found');
  });
});

async function waitState(engine: JobEngine, id: string, state: string, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const v = (await engine.job(id))!;
    if (v.state === state) return v;
    if (Date.now() - t0 > ms) throw new Error(`job ${id} is ${v.state}, wanted ${state}: ${JSON.stringify(v.steps.map((s) => s.state))} ${v.error}`);
    await sleep(20);
  }
}
async function waitFor(cond: () => boolean, ms = 5000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition never held');
    await sleep(20);
  }
}
