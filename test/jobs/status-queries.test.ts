import { describe, it, expect, afterEach } from 'vitest';
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import { StepFailure, type StepHandler } from '../../src/checklist/types.ts';
import type { JobEngine } from '../../src/jobs/types.ts';
import { statusQueries } from '../../src/jobs/status-queries.ts';
import { statusReport } from '../../src/jobs/status.ts';
import type { Store } from '../../src/store/db.ts';
import { approvals, approvalVotes, deployments, jobs, jobSteps } from '../../src/store/schema.ts';
import { fakeSpec, makeEngine, ok, policy } from './helpers.ts';

// the drizzle query-builder reads the prepared statements replaced, kept here as the reference
const opt = <T>(v: T | null | undefined): T | undefined => (v == null ? undefined : v);
function drizzleJobView(store: Store, jobId: string) {
  const j = store.db.select({
    id: jobs.id, deployment: jobs.deployment, state: jobs.state, attempt: jobs.attempt, requestedBy: jobs.requestedBy, origin: jobs.origin,
    createdAt: jobs.createdAt, startedAt: jobs.startedAt, finishedAt: jobs.finishedAt, valuesHash: jobs.valuesHash, chart: jobs.chart, error: jobs.error,
  }).from(jobs).where(eq(jobs.id, jobId)).get();
  if (!j) return undefined;
  const steps = store.db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(asc(jobSteps.number)).all().map((s) => ({
    stepId: s.stepId, number: s.number, title: s.title, state: s.state, summary: opt(s.summary), warnings: opt(s.warnings), error: opt(s.error),
    startedAt: opt(s.startedAt), finishedAt: opt(s.finishedAt), durationMs: opt(s.durationMs), attempt: s.attempt, output: opt(s.output),
  }));
  const appr = store.db.select().from(approvals).where(eq(approvals.jobId, jobId)).orderBy(asc(approvals.requestedAt)).all().map((a) => {
    const votes = store.db.select().from(approvalVotes).where(eq(approvalVotes.approvalId, a.id)).orderBy(asc(approvalVotes.at)).all();
    return {
      id: a.id, jobId: a.jobId, stepId: a.stepId, hash: a.hash, title: a.title, state: a.state, required: a.required,
      approvals: votes.filter((v) => v.decision === 'approve').map((v) => ({ user: v.user, at: v.at })),
      rejectedBy: opt(a.rejectedBy), rejectReason: opt(a.rejectReason), approvers: (a.policy as { approvers?: string[] } | null)?.approvers ?? [],
      expiresAt: a.expiresAt, facts: a.facts, changedKeys: a.changedKeys, diffText: a.diffText, ...(a.review ? { review: a.review } : {}),
    };
  });
  return {
    id: j.id, deployment: j.deployment, state: j.state, attempt: j.attempt, requestedBy: j.requestedBy, origin: j.origin, createdAt: j.createdAt,
    startedAt: opt(j.startedAt), finishedAt: opt(j.finishedAt), valuesHash: j.valuesHash, chart: j.chart, error: opt(j.error), steps, approvals: appr,
  };
}

const engines: JobEngine[] = [];
afterEach(async () => { for (const e of engines.splice(0)) await e.stop(); });

const gate = (id: string): StepHandler => ({
  id,
  run: async (ctx) => {
    const g = await ctx.requireApproval({ title: 'helm upgrade', hash: 'H1', diffText: '+ a: 1', changedKeys: ['a'], facts: { chart: '2.3.3' } });
    return { status: 'succeeded', summary: `approved by ${g.approvedBy.join(',')}`, output: { helmRevision: 3 } };
  },
});

describe('status queries (prepared statements)', () => {
  it('read exactly what the drizzle queries read: jobs with warnings, outputs, errors, approvals and votes; the lock; the live release', async () => {
    let failC = true;
    const handlers: StepHandler[] = [
      ok('a', { output: { x: 1, nested: { y: [1, 2] } } }),
      gate('b'),
      { id: 'c', run: async () => { if (failC) throw new StepFailure('boom: <c> failed'); return { status: 'warned', summary: 'c', warnings: ['careful', 'twice'] }; } },
      ok('d'),
    ];
    const { engine, store } = makeEngine(handlers, { policy: policy({ approvers: ['UBOB', 'UCAROL'], required: 2 }) });
    engines.push(engine);
    engine.start();
    const alice = { id: 'UALICE' };
    const j1 = await engine.submit({ spec: fakeSpec('sales'), requestedBy: alice, origin: { kind: 'slack', channel: 'C1', threadTs: '1.2' } as never });
    let v = await engine.settled(j1.id);
    const ap = v.approvals[0];
    await engine.decide(ap.id, { by: { id: 'UBOB' }, decision: 'approve', hash: 'H1' });
    await engine.decide(ap.id, { by: { id: 'UCAROL' }, decision: 'approve', hash: 'H1' });
    v = await engine.settled(j1.id);
    expect(v.state).toBe('failed');
    failC = false;
    await engine.retry(j1.id, { id: 'UBOB' });
    v = await engine.settled(j1.id);
    expect(v.state).toBe('succeeded');
    // a second job of the same deployment, held at its approval: the lock, and a live release from the older job
    const j2 = await engine.submit({ spec: fakeSpec('sales'), requestedBy: { id: 'UDAVE' }, origin: { kind: 'cli' } });
    const v2 = await engine.settled(j2.id);
    expect(v2.state).toBe('waiting_approval');
    await engine.decide(v2.approvals[0].id, { by: { id: 'UBOB' }, decision: 'reject', hash: 'H1', reason: 'not now' } as never);
    const j3 = await engine.submit({ spec: fakeSpec('sales'), requestedBy: { id: 'UERIN' }, origin: { kind: 'cli' } });
    await engine.settled(j3.id);

    const q = statusQueries(store);
    for (const id of [j1.id, j2.id, j3.id]) {
      const ref = drizzleJobView(store, id);
      expect(ref!.steps.length).toBeGreaterThan(0);
      expect(q.jobView(id)).toStrictEqual(ref);
    }
    expect(q.jobView(j1.id)!.steps.find((s) => s.stepId === 'c')!.warnings).toEqual(['careful', 'twice']);
    expect(q.jobView(j1.id)!.approvals[0].approvals.map((a) => a.user)).toEqual(['UBOB', 'UCAROL']);
    expect(q.jobView('job_nope')).toBeUndefined();

    expect(q.latestJobId('sales')).toBe(store.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.deployment, 'sales')).orderBy(desc(jobs.createdAt), desc(jobs.id)).limit(1).get()!.id);
    const holder = store.db.select().from(jobs).where(and(eq(jobs.deployment, 'sales'), inArray(jobs.state, ['queued', 'running', 'waiting_approval']))).limit(1).get()!;
    expect(q.lockHolder('sales')).toEqual({ id: holder.id, requestedBy: holder.requestedBy, state: holder.state, createdAt: holder.createdAt, startedAt: holder.startedAt });
    expect(q.lastSucceededJobId('sales')).toBe(j1.id);
    expect(q.deploymentExists('sales')).toBe(true);
    expect(q.deploymentExists('nope')).toBe(false);
    expect(q.latestJobId('nope')).toBeUndefined();
    expect(q.lockHolder('nope')).toBeUndefined();

    const r = statusReport(store, 'sales')!;
    expect(r.job!.id).toBe(j3.id);
    expect(r.lock).toMatchObject({ jobId: j3.id, requestedBy: 'UERIN', state: 'waiting_approval' });
    expect(r.live).toMatchObject({ jobId: j1.id, approvedBy: ['UBOB', 'UCAROL'] });
    // a deployment without jobs is known, with an empty report
    store.db.insert(deployments).values({ name: 'empty', updatedAt: 'x' }).run();
    expect(statusReport(store, 'empty')).toEqual({ deployment: 'empty', steps: [], approvals: [], lock: undefined });
    expect(statusReport(store, 'nope')).toBeUndefined();
  });
});
