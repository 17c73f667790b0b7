import { describe, it, expect, afterEach } from 'vitest';
import { StepFailure, type StepHandler } from '../../src/checklist/types.ts';
import { DeploymentLockedError, type JobEngine } from '../../src/jobs/types.ts';
import { verifyAuditChain, exportAudit } from '../../src/store/audit.ts';
import { fakeSpec, makeEngine, ok, policy } from './helpers.ts';

const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const carol = { id: 'UCAROL' };
const engines: JobEngine[] = [];
afterEach(async () => { for (const e of engines.splice(0)) await e.stop(); });
const track = <T extends { engine: JobEngine }>(x: T) => { engines.push(x.engine); return x; };

const gate = (id: string, hash: () => string, runs: string[] = []): StepHandler => ({
  id,
  run: async (ctx) => {
    runs.push(id);
    const g = await ctx.requireApproval({ title: 'helm upgrade', hash: hash(), diffText: '+ a: 1', changedKeys: ['a'], facts: { chart: '2.3.3' } });
    return { status: 'succeeded', summary: `approved by ${g.approvedBy.join(',')}`, output: { helmRevision: 3 } };
  },
});

describe('job engine', () => {
  it('runs all steps in order, records skip reasons, outputs and audit', async () => {
    const seen: string[] = [];
    const { engine, store } = track(makeEngine([ok('a', { output: { x: 1 } }),
      { id: 'b', run: async (ctx) => { seen.push(`b sees ${JSON.stringify(ctx.outputOf('a'))}`); return { status: 'warned', summary: 'b', warnings: ['careful'] }; } },
      ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec('sales', ['c']), requestedBy: alice, origin: { kind: 'cli' } });
    const v = await engine.settled(j.id);
    expect(v.state).toBe('succeeded');
    expect(v.steps.map((s) => s.state)).toEqual(['succeeded', 'warned', 'skipped', 'succeeded']);
    expect(v.steps[2].summary).toBe('c not configured');
    expect(v.steps[1].warnings).toEqual(['careful']);
    expect(seen).toEqual(['b sees {"x":1}']);
    expect(verifyAuditChain(store)).toMatchObject({ ok: true });
    expect(exportAudit(store, { jobId: j.id }).map((e) => e.action)).toEqual(['job.submitted', 'job.started', 'step.finished', 'step.finished', 'step.finished', 'job.finished']);
  });

  it('refuses a second job for the same deployment naming the holder; lock frees at the end', async () => {
    const { engine } = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]));
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const err = await engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } }).catch((e) => e);
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect(err.holder).toMatchObject({ jobId: j.id, requestedBy: 'UALICE', state: 'queued' });
    expect(err.message).toContain(j.id);
    await engine.submit({ spec: fakeSpec('other'), requestedBy: bob, origin: { kind: 'cli' } });
    engine.start();
    await engine.settled(j.id);
    await expect(engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } })).resolves.toMatchObject({ state: 'queued' });
  });

  it('approval: pending → refuses requester, non-approver, stale hash → approved by another user → continues', async () => {
    const runs: string[] = [];
    const { engine, store } = track(makeEngine([ok('a'), gate('b', () => 'H1', runs), ok('c'), ok('d')], { policy: policy({ approvers: [bob.id, 'SPLATFORM'] }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    let v = await engine.settled(j.id);
    expect(v.state).toBe('waiting_approval');
    expect(v.steps[1].state).toBe('waiting_approval');
    const ap = v.approvals[0];
    expect(ap).toMatchObject({ state: 'pending', hash: 'H1', diffText: '+ a: 1' });
    expect(await engine.decide(ap.id, { by: alice, decision: 'approve', hash: 'H1', userGroups: ['SPLATFORM'] })).toMatchObject({ ok: false, reason: 'self_approval' });
    expect(await engine.decide(ap.id, { by: carol, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'not_approver' });
    expect(await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H0' })).toMatchObject({ ok: false, reason: 'stale_hash' });
    expect((await engine.job(j.id))!.state).toBe('waiting_approval');
    // a member of an approver group counts
    expect(await engine.decide(ap.id, { by: carol, decision: 'approve', hash: 'H1', userGroups: ['SPLATFORM'] })).toMatchObject({ ok: true });
    v = await engine.settled(j.id);
    await new Promise((r) => setTimeout(r, 10));
    v = await waitState(engine, j.id, 'succeeded');
    expect(v.steps[1].summary).toBe('approved by UCAROL');
    expect(runs).toEqual(['b', 'b']);
    const refused = exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'approval.refused').map((e) => e.result);
    expect(refused).toEqual(['self_approval', 'not_approver', 'stale_hash']);
  });

  it('N=2 needs two distinct users; a second click by the same user is a duplicate', async () => {
    const { engine } = track(makeEngine([ok('a'), gate('b', () => 'H1'), ok('c'), ok('d')], { policy: policy({ required: 2 }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    expect(await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: true, approval: { state: 'pending' } });
    expect(await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'duplicate' });
    expect((await engine.job(j.id))!.state).toBe('waiting_approval');
    expect(await engine.decide(ap.id, { by: carol, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: true, approval: { state: 'approved' } });
    expect((await waitState(engine, j.id, 'succeeded')).steps[1].summary).toBe('approved by UBOB,UCAROL');
  });

  it('a changed hash after approval supersedes it and asks again', async () => {
    let hash = 'H1';
    const { engine } = track(makeEngine([ok('a'), gate('b', () => hash), ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap1 = (await engine.settled(j.id)).approvals[0];
    hash = 'H2'; // the values changed between the request and the re-run after approval
    expect(await engine.decide(ap1.id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: true, approval: { state: 'approved' } });
    await waitFor(async () => (await engine.job(j.id))!.approvals.length === 2);
    const v = await engine.settled(j.id);
    expect(v.state).toBe('waiting_approval');
    expect(v.approvals.map((a) => [a.hash, a.state])).toEqual([['H1', 'superseded'], ['H2', 'pending']]);
    expect(await engine.decide(ap1.id, { by: carol, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'stale_hash' });
    await engine.decide(v.approvals[1].id, { by: carol, decision: 'approve', hash: 'H2' });
    expect((await waitState(engine, j.id, 'succeeded')).steps[1].summary).toBe('approved by UCAROL');
  });

  it('expiry fails the job with the reason and frees the lock', async () => {
    let t = Date.now();
    const { engine } = track(makeEngine([ok('a'), gate('b', () => 'H1'), ok('c'), ok('d')], { clock: () => t, policy: policy({ expiresInMs: 1000 }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    t += 2000;
    const v = await waitState(engine, j.id, 'failed');
    expect(v.error).toMatch(/expired/);
    expect(v.approvals[0].state).toBe('expired');
    expect(await engine.decide(ap.id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'expired' });
    await expect(engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } })).resolves.toBeTruthy();
  });

  it('reject fails the job and records who rejected', async () => {
    const { engine } = track(makeEngine([ok('a'), gate('b', () => 'H1'), ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    const ap = (await engine.settled(j.id)).approvals[0];
    await engine.decide(ap.id, { by: bob, decision: 'reject', hash: 'H1' });
    const v = (await engine.job(j.id))!;
    expect(v.state).toBe('failed');
    expect(v.approvals[0]).toMatchObject({ state: 'rejected', rejectedBy: 'UBOB' });
    expect(v.error).toContain('UBOB');
  });

  it('cancel aborts a long step via its signal and frees the lock', async () => {
    let aborted = false;
    const long: StepHandler = { id: 'b', run: (ctx) => new Promise((_, rej) => ctx.signal.addEventListener('abort', () => { aborted = true; rej(new Error('killed')); })) };
    const { engine } = track(makeEngine([ok('a'), long, ok('c'), ok('d')]));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    await waitStep(engine, j.id, 'b', 'running');
    const v = await engine.cancel(j.id, bob);
    expect(v.state).toBe('cancelled');
    expect(aborted).toBe(true);
    expect(v.steps[1].state).toBe('cancelled');
    await expect(engine.submit({ spec: fakeSpec(), requestedBy: bob, origin: { kind: 'cli' } })).resolves.toBeTruthy();
  });

  it('retry re-runs only the failed step and keeps earlier outputs', async () => {
    const runs: string[] = [];
    let fail = true;
    const rec = (id: string): StepHandler => ({ id, run: async (ctx) => {
      runs.push(id);
      if (id === 'c' && fail) throw new StepFailure('c broke', { logTail: 'last lines' });
      return { status: 'succeeded', summary: id, output: { from: id, prev: ctx.outputOf('a') } };
    } });
    const { engine } = track(makeEngine(['a', 'b', 'c', 'd'].map(rec)));
    const events: string[] = [];
    engine.on((e) => { if (e.type === 'step.failed') events.push(`${e.stepId}:${e.error}:${e.logTail}`); });
    engine.start();
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    let v = await engine.settled(j.id);
    expect(v.state).toBe('failed');
    expect(v.error).toContain('c broke');
    expect(events).toEqual(['c:c broke:last lines']);
    fail = false;
    await engine.retry(j.id, bob);
    v = await waitState(engine, j.id, 'succeeded');
    expect(runs).toEqual(['a', 'b', 'c', 'c', 'd']);
    expect(v.attempt).toBe(2);
    expect(v.steps[3].output).toEqual({ from: 'd', prev: { from: 'a' } });
  });

  it('a second engine reclaims an expired lease and resumes at the first unfinished step (checkpoint kept)', async () => {
    const runs: string[] = [];
    const hang: StepHandler = { id: 'c', run: async (ctx) => { runs.push(`c1 ${ctx.checkpoint.get('k') ?? '-'}`); ctx.checkpoint.set('k', 'v1'); return new Promise((_, rej) => ctx.signal.addEventListener('abort', () => rej(new Error('aborted')))); } };
    const first = makeEngine([ok('a'), ok('b'), hang, ok('d')], { leaseMs: 200, owner: 'otherhost:1:aaaa' });
    first.engine.start();
    const j = await first.engine.submit({ spec: fakeSpec(), requestedBy: alice, origin: { kind: 'cli' } });
    await waitStep(first.engine, j.id, 'c', 'running');
    // simulate a crash: the first engine stops renewing (timers gone) without touching the DB
    const fake = Date.now() + 10_000;
    const resumeRuns: string[] = [];
    const second = track(makeEngine([ok('a'), ok('b'), { id: 'c', run: async (ctx) => { resumeRuns.push(`c2 ${ctx.checkpoint.get('k')}`); return { status: 'succeeded', summary: 'c' }; } }, ok('d')],
      { path: first.store.path, leaseMs: 200, clock: () => fake, owner: 'otherhost:2:bbbb' }));
    second.engine.start();
    const v = await waitState(second.engine, j.id, 'succeeded');
    expect(resumeRuns).toEqual(['c2 v1']);
    expect(v.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(runs).toEqual(['c1 -']);
    await first.engine.stop();
  });
});

async function waitState(engine: JobEngine, id: string, state: string, ms = 5000) {
  const t0 = Date.now();
  for (;;) {
    const v = (await engine.job(id))!;
    if (v.state === state) return v;
    if (Date.now() - t0 > ms) throw new Error(`job ${id} is ${v.state}, wanted ${state}: ${JSON.stringify(v.steps.map((s) => s.state))} ${v.error}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function waitStep(engine: JobEngine, id: string, stepId: string, state: string, ms = 5000) {
  const t0 = Date.now();
  while ((await engine.job(id))!.steps.find((s) => s.stepId === stepId)!.state !== state) {
    if (Date.now() - t0 > ms) throw new Error(`step ${stepId} never reached ${state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('prepared steps and checkpoint.once', () => {
  it('a step applied with a later step stays `prepared` (never succeeded) until that step completes, and is not promoted on a rejection', async () => {
    const during: string[] = [];
    const mk = () => track(makeEngine([
      { id: 'a', run: async () => ({ status: 'warned', summary: 'a prepared', warnings: ['w'], output: { name: 'n' }, appliedWith: 'c' }) },
      { id: 'b', run: async (ctx) => ({ status: 'succeeded', summary: `b sees ${JSON.stringify(ctx.outputOf('a'))}` }) },
      { id: 'c', run: async (ctx) => {
        await ctx.requireApproval({ title: 'apply', hash: 'h1', diffText: '', changedKeys: [], facts: {} });
        return { status: 'succeeded', summary: 'applied' };
      } },
      ok('d'),
    ], { policy: policy({ allowSelfApproval: true }) }));
    const { engine } = mk();
    engine.on((e) => { if (e.type === 'step.finished') during.push(`${e.stepId}:${e.job.steps.find((s) => s.stepId === 'a')!.state}`); });
    engine.start();
    const j = await engine.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    let v = await engine.settled(j.id);
    expect(v.state).toBe('waiting_approval');
    expect(v.steps.map((s) => s.state)).toEqual(['prepared', 'succeeded', 'waiting_approval', 'pending']);
    expect(v.steps[1].summary).toBe('b sees {"name":"n"}');
    await engine.decide(v.approvals[0].id, { by: alice, decision: 'approve', hash: 'h1' });
    v = await engine.settled(j.id);
    expect(v.state).toBe('succeeded');
    expect(v.steps.map((s) => s.state)).toEqual(['warned', 'succeeded', 'succeeded', 'succeeded']);
    expect(during).toEqual(['a:prepared', 'b:prepared', 'c:warned', 'a:warned', 'd:warned']);

    // rejected: the prepared step never shows as done
    const second = mk().engine;
    second.start();
    const j2 = await second.submit({ spec: fakeSpec('other'), requestedBy: alice, origin: { kind: 'cli' } });
    const w = await second.settled(j2.id);
    await second.decide(w.approvals[0].id, { by: alice, decision: 'reject', hash: 'h1' });
    const r = await second.settled(j2.id);
    expect(r.state).toBe('failed');
    expect(r.steps[0].state).toBe('prepared');
  });

  it('checkpoint.once runs its function once per job, across re-runs of the step; a throw stores nothing', async () => {
    let calls = 0;
    let fail = true;
    const { engine } = track(makeEngine([{ id: 'a', run: async (ctx) => {
      const v = await ctx.checkpoint.once('tag', () => `t${++calls}`);
      await ctx.checkpoint.once('never', () => { if (fail) throw new StepFailure('boom'); return 1; }).catch(() => undefined);
      await ctx.requireApproval({ title: 'x', hash: 'h', diffText: '', changedKeys: [], facts: {} });
      return { status: 'succeeded', summary: v, output: { never: ctx.checkpoint.get('never') ?? null } };
    } }, ok('b'), ok('c'), ok('d')], { policy: policy({ allowSelfApproval: true }) }));
    engine.start();
    const j = await engine.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    const w = await engine.settled(j.id);
    fail = false;
    await engine.decide(w.approvals[0].id, { by: alice, decision: 'approve', hash: 'h' });
    const v = await engine.settled(j.id);
    expect(v.steps[0].summary).toBe('t1');
    expect(calls).toBe(1);
    expect(v.steps[0].output).toEqual({ never: 1 });
  });
});
