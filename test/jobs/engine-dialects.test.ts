/**
 * The job engine on both databases (`[sqlite]` and `[postgres]`, test/support/dialects.ts): the same engine
 * (src/jobs/engine.ts) over each dialect's Repository. Two engines on two repositories of one database are two
 * replicas: they never run the same job, one takes over a job whose owner stopped renewing its lease and resumes
 * it from the step's checkpoint, and one approval click decided on both at once records one vote.
 */
import { afterEach, expect, it } from 'vitest';
import type { ApprovalRequest, StepHandler } from '../../src/checklist/types.ts';
import { createJobEngine, type LocalJobEngine } from '../../src/jobs/engine.ts';
import type { JobEvent, JobView } from '../../src/jobs/types.ts';
import type { Repository } from '../../src/store/repo.ts';
import { describeEachDialect, type DialectStore } from '../support/dialects.ts';
import { fakePlan, fakeSpec, ok, policy } from './helpers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const request: ApprovalRequest = { title: 'helm upgrade --install astro-agent', hash: 'hash-1', diffText: '+ replicas: 2', changedKeys: ['replicas'], facts: { chart: '2.3.3' } };

async function until<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describeEachDialect('job engine', (store: () => DialectStore) => {
  const engines: LocalJobEngine[] = [];
  const repos: Repository[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop();
    for (const r of repos.splice(0)) await r.close();
  });
  const engine = (repo: Repository, handlers: StepHandler[], o: { leaseMs?: number; owner?: string; required?: number } = {}) => {
    const e = createJobEngine({
      repo, handlers, policy: policy({ required: o.required ?? 1 }), plan: fakePlan, concurrency: 2, leaseMs: o.leaseMs ?? 5_000, pollMs: 25,
      ...(o.owner ? { owner: o.owner } : {}), buildContext: () => ({ infra: {} as never, resolveSecret: async () => 'x' }),
    });
    engines.push(e);
    return e;
  };
  /** a second replica: another repository on the same database */
  const replica = async (s: DialectStore) => {
    const r = await s.openAgain();
    repos.push(r);
    return r;
  };
  const asking: StepHandler = { id: 'b', run: async (ctx) => {
    const grant = await ctx.requireApproval(request);
    return { status: 'succeeded', summary: `approved by ${grant.approvedBy.join(', ')}` };
  } };
  const actions = async (repo: Repository, jobId: string) => (await repo.audit.export({ jobId })).map((r) => `${r.action}${r.result ? `:${r.result}` : ''}`);

  it('submit → claim → steps → approval → decide → finish: the same states, events and audit rows', async () => {
    const { repo } = store();
    const e = engine(repo, [ok('a'), asking, ok('c'), ok('d')]);
    const events: string[] = [];
    e.on((ev: JobEvent) => events.push(`${ev.type}${'stepId' in ev ? `:${ev.stepId}` : ''}`));
    e.start();
    const j = await e.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    const waiting = await e.settled(j.id);
    expect(waiting.state).toBe('waiting_approval');
    expect(waiting.steps.map((s) => s.state)).toEqual(['succeeded', 'waiting_approval', 'pending', 'pending']);
    const a = waiting.approvals[0];
    expect(a).toMatchObject({ state: 'pending', hash: 'hash-1', approvals: [] });
    expect(await e.decide(a.id, { by: alice, decision: 'approve', hash: 'hash-1' })).toMatchObject({ ok: false, reason: 'self_approval' });
    expect(await e.decide(a.id, { by: bob, decision: 'approve', hash: 'hash-1' })).toMatchObject({ ok: true, approval: { state: 'approved' } });
    await until(async () => events.includes('job.succeeded'), 'the job to finish');
    const done = (await e.job(j.id))!;
    expect(done.state).toBe('succeeded');
    expect(done.steps.map((s) => [s.stepId, s.state, s.summary])).toEqual([
      ['a', 'succeeded', 'a done'], ['b', 'succeeded', 'approved by UBOB'], ['c', 'succeeded', 'c done'], ['d', 'succeeded', 'd done'],
    ]);
    expect(events).toEqual([
      'job.queued', 'job.started', 'step.started:a', 'step.finished:a', 'step.started:b', 'approval.requested',
      'approval.updated', 'job.started', 'step.started:b', 'step.finished:b', 'step.started:c', 'step.finished:c', 'step.started:d', 'step.finished:d', 'job.succeeded',
    ]);
    expect(await actions(repo, j.id)).toEqual([
      'job.submitted', 'job.started', 'step.finished:succeeded', 'approval.requested', 'approval.refused:self_approval', 'approval.decided:approved',
      'job.started', 'step.finished:succeeded', 'step.finished:succeeded', 'step.finished:succeeded', 'job.finished:succeeded',
    ]);
    expect(await repo.audit.verify()).toMatchObject({ ok: true });
    expect(await e.latestJobFor('sales')).toMatchObject({ id: j.id, state: 'succeeded' });
  });

  it('a rejection fails the job once: one job.finished row, one job.failed event', async () => {
    const { repo } = store();
    const e = engine(repo, [ok('a'), asking, ok('c'), ok('d')]);
    const failed: string[] = [];
    e.on((ev) => { if (ev.type === 'job.failed') failed.push(ev.job.error ?? ''); });
    e.start();
    const j = await e.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    const a = (await e.settled(j.id)).approvals[0];
    expect(await e.decide(a.id, { by: bob, decision: 'reject', hash: 'hash-1', reason: 'not today' })).toMatchObject({ ok: true, approval: { state: 'rejected' } });
    expect(await e.job(j.id)).toMatchObject({ state: 'failed', error: 'rejected by UBOB: helm upgrade --install astro-agent — reason: not today' });
    expect(failed).toEqual(['rejected by UBOB: helm upgrade --install astro-agent — reason: not today']);
    expect((await actions(repo, j.id)).filter((x) => x.startsWith('job.finished'))).toEqual(['job.finished:failed']);
  });

  it('two engines on two repositories (two replicas) never run the same job; every job runs each step once', async () => {
    const s = store();
    const other = await replica(s);
    const runs: string[] = [];
    const active = new Set<string>();
    let overlap = 0;
    const slow = (who: string): StepHandler => ({ id: 'b', run: async (ctx) => {
      if (active.has(ctx.jobId)) overlap++;
      active.add(ctx.jobId);
      runs.push(`${ctx.jobId}:${who}`);
      await sleep(60);
      active.delete(ctx.jobId);
      return { status: 'succeeded', summary: `b by ${who}` };
    } });
    const A = engine(s.repo, [ok('a'), slow('A'), ok('c'), ok('d')], { owner: 'hostA:1:aaaa' });
    const B = engine(other, [ok('a'), slow('B'), ok('c'), ok('d')], { owner: 'hostB:1:bbbb' });
    const jobs: JobView[] = [];
    for (let i = 0; i < 6; i++) jobs.push(await A.submit({ spec: fakeSpec(`d${i}`), requestedBy: alice, origin: { kind: 'cli' } }));
    A.start();
    B.start();
    for (const j of jobs) await until(async () => (await A.job(j.id))?.state === 'succeeded', `job ${j.id} to succeed`);
    expect(overlap).toBe(0);
    expect(runs).toHaveLength(6);
    expect(new Set(runs.map((r) => r.split(':')[0])).size).toBe(6);
    // both replicas worked
    expect(new Set(runs.map((r) => r.split(':')[1]))).toEqual(new Set(['A', 'B']));
    for (const j of jobs) expect((await actions(s.repo, j.id)).filter((x) => x === 'job.started')).toHaveLength(1);
  });

  it('an engine that stops renewing its lease mid-step loses the job to the other, which resumes from the checkpoint; the old owner writes nothing after', async () => {
    const s = store();
    const other = await replica(s);
    let lateWrite: boolean | undefined;
    let releaseA!: () => void;
    const stuck = new Promise<void>((r) => { releaseA = r; });
    const dying: StepHandler = { id: 'b', run: async (ctx) => {
      await ctx.checkpoint.once('pod', async () => 'pod-1');
      await stuck; // hangs (its replica is frozen) until the test lets it go, after the takeover
      // a write after the takeover: refused, and it aborts this run
      await ctx.checkpoint.once('late', async () => 'from A');
      lateWrite = ctx.signal.aborted;
      return { status: 'succeeded', summary: 'b by A' };
    } };
    const seen: Array<Record<string, unknown>> = [];
    const resuming: StepHandler = { id: 'b', run: async (ctx) => {
      seen.push({ pod: ctx.checkpoint.get('pod') });
      const pod = await ctx.checkpoint.once('pod', async () => 'pod-2');
      return { status: 'succeeded', summary: `b by B on ${pod}` };
    } };
    const A = engine(s.repo, [ok('a'), dying, ok('c'), ok('d')], { owner: 'hostA:1:aaaa', leaseMs: 400 });
    const j = await A.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    A.start();
    await until(async () => (await s.repo.steps.get(j.id, 'b'))?.checkpoint && true, 'A to checkpoint step b');
    A.pauseHeartbeat();
    const B = engine(other, [ok('a'), resuming, ok('c'), ok('d')], { owner: 'hostB:1:bbbb', leaseMs: 400 });
    B.start();
    const done = await until(async () => { const v = await B.job(j.id); return v?.state === 'succeeded' && v; }, 'B to finish the job');
    expect(seen).toEqual([{ pod: 'pod-1' }]);
    expect(done.steps.find((x) => x.stepId === 'b')).toMatchObject({ state: 'succeeded', summary: 'b by B on pod-1', attempt: 2 });
    releaseA();
    await until(async () => lateWrite !== undefined, 'A to try its late write');
    expect(lateWrite).toBe(true);
    await sleep(100);
    const b = await s.repo.steps.get(j.id, 'b');
    expect(b).toMatchObject({ state: 'succeeded', summary: 'b by B on pod-1', checkpoint: { pod: 'pod-1' } });
    expect((b!.checkpoint as Record<string, unknown>).late).toBeUndefined();
    const started = (await s.repo.audit.export({ jobId: j.id })).filter((r) => r.action === 'job.started').map((r) => (r.details as { owner: string }).owner);
    expect(started).toEqual(['hostA:1:aaaa', 'hostB:1:bbbb']);
    expect(await actions(s.repo, j.id)).toEqual([
      'job.submitted', 'job.started', 'step.finished:succeeded', 'job.started', 'step.finished:succeeded', 'step.finished:succeeded', 'step.finished:succeeded', 'job.finished:succeeded',
    ]);
  });

  it('one approval click decided on two engines at once records one vote and requeues the job once', async () => {
    const s = store();
    const other = await replica(s);
    const A = engine(s.repo, [ok('a'), asking, ok('c'), ok('d')], { owner: 'hostA:1:aaaa' });
    const B = engine(other, [ok('a'), asking, ok('c'), ok('d')], { owner: 'hostB:1:bbbb' });
    A.start();
    const j = await A.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'cli' } });
    const a = (await A.settled(j.id)).approvals[0];
    await A.stop();
    await B.stop();
    const both = await Promise.all([A.decide(a.id, { by: bob, decision: 'approve', hash: 'hash-1' }), B.decide(a.id, { by: bob, decision: 'approve', hash: 'hash-1' })]);
    expect(both.filter((r) => r.ok)).toHaveLength(1);
    expect(both.find((r) => !r.ok)).toMatchObject({ ok: false, reason: expect.stringMatching(/^(duplicate|already_decided)$/) });
    const view = await s.repo.approvals.view(a.id);
    expect(view).toMatchObject({ state: 'approved', approvals: [{ user: 'UBOB' }] });
    expect((await actions(s.repo, j.id)).filter((x) => x.startsWith('approval.decided'))).toEqual(['approval.decided:approved']);
    expect(await A.job(j.id)).toMatchObject({ state: 'queued' });
    B.start();
    await until(async () => (await B.job(j.id))?.state === 'succeeded', 'the approved job to finish');
  });
});
