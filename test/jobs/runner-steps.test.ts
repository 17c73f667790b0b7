/**
 * One step's run (src/jobs/runner.ts) as the step, the user and the audit log see it: the context a step gets,
 * its checkpoint, what is stored and emitted for each outcome, failures, `prepared` steps and their promotion,
 * and approvals gating the step that applies.
 */
import { describe, it, expect } from 'vitest';
import { StepFailure, type StepContext, type StepHandler } from '../../src/checklist/types.ts';
import type { JobEngine, JobEvent } from '../../src/jobs/types.ts';
import type { Plan } from '../../src/spec/plan.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { registerSecret } from '../../src/redact.ts';
import { fakePlan, makeEngine, ok, policy } from './helpers.ts';
import { alice, bob, sleep, stopEnginesAfterEach, submit, waitState } from './engine-harness.ts';

const track = stopEnginesAfterEach();
const step = async (engine: JobEngine, jobId: string, stepId: string) => (await engine.job(jobId))!.steps.find((s) => s.stepId === stepId)!;
const stepRow = (engine: { store: { sqlite: { prepare(s: string): { get(...a: unknown[]): unknown } } } }, jobId: string, stepId: string) =>
  engine.store.sqlite.prepare('select state, checkpoint from job_steps where job_id = ? and step_id = ?').get(jobId, stepId) as { state: string; checkpoint: string | null };
const label = (e: JobEvent) => `${e.type}${'stepId' in e ? `:${e.stepId}` : ''}`;

describe('the context a step runs with', () => {
  it('its job, attempt, spec, plan, adapters and secrets from buildContext, and a log naming job and step', async () => {
    const infra = { kube: 'the kube adapter' } as never;
    const built: Array<[string, string, string]> = [];
    const bindings: unknown[] = [];
    const log = { child: (b: unknown) => { bindings.push(b); return log; } } as never;
    const seen: Record<string, unknown> = {};
    let fail = true;
    const look: StepHandler = { id: 'b', run: async (ctx) => {
      Object.assign(seen, { jobId: ctx.jobId, attempt: ctx.attempt, name: ctx.spec.deployment.name, release: ctx.plan.release, infra: ctx.infra, secret: await ctx.resolveSecret({ env: 'X' } as never), log: ctx.log, seal: typeof ctx.sealSecret, erase: typeof ctx.eraseSecret, signal: ctx.signal.aborted });
      if (fail) throw new Error('first attempt fails');
      return { status: 'succeeded', summary: 'b' };
    } };
    const { engine } = track(makeEngine([ok('a'), look, ok('c'), ok('d')], {
      buildContext: (job, stepId) => { built.push([job.id, job.state, stepId]); return { infra, resolveSecret: async () => 'resolved', log }; },
    }));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'failed');
    expect(seen).toEqual({ jobId: j.id, attempt: 1, name: 'sales', release: 'r', infra, secret: 'resolved', log, seal: 'undefined', erase: 'undefined', signal: false });
    expect(built).toEqual([[j.id, 'running', 'a'], [j.id, 'running', 'b']]);
    expect(bindings).toEqual([{ jobId: j.id, stepId: 'a' }, { jobId: j.id, stepId: 'b' }]);
    fail = false;
    await engine.retry(j.id, bob);
    await waitState(engine, j.id, 'succeeded');
    expect(seen.attempt).toBe(2);
  });

  it('sealSecret and eraseSecret when the environment can seal', async () => {
    const sealed: string[] = [];
    const erased: string[] = [];
    const { engine } = track(makeEngine([{ id: 'a', run: async (ctx) => {
      const id = await ctx.sealSecret!('tok', 'agent token');
      await ctx.eraseSecret!(id);
      return { status: 'succeeded', summary: 'a' };
    } }, ok('b'), ok('c'), ok('d')], {
      buildContext: () => ({ infra: {} as never, resolveSecret: async () => 'x', sealSecret: async (v, p) => { sealed.push(`${v}/${p}`); return 'sec_1'; }, eraseSecret: async (id) => { erased.push(id); } }),
    }));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(sealed).toEqual(['tok/agent token']);
    expect(erased).toEqual(['sec_1']);
  });

  it('steps run in execution order, which need not be their number order', async () => {
    const runs: string[] = [];
    const reversed = (spec: Parameters<typeof fakePlan>[0]): Plan => {
      const p = fakePlan(spec);
      return { ...p, steps: p.steps.map((s, i) => ({ ...s, order: 10 - i })) } as Plan;
    };
    const { engine } = track(makeEngine(['a', 'b', 'c', 'd'].map((id) => ({ id, run: async () => { runs.push(id); return { status: 'succeeded' as const, summary: id }; } })), { plan: reversed }));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(runs).toEqual(['d', 'c', 'b', 'a']);
  });

  it('outputOf: only finished steps (succeeded, warned, skipped, prepared) answer; a step without output answers nothing', async () => {
    const got: Record<string, unknown> = {};
    const { engine } = track(makeEngine([
      ok('a', { output: { n: 1 }, appliedWith: 'd' }),
      ok('b'),
      { id: 'c', run: async (ctx) => {
        Object.assign(got, { a: ctx.outputOf('a'), b: ctx.outputOf('b') ?? 'none', c: ctx.outputOf('c') ?? 'none', d: ctx.outputOf('d') ?? 'none', x: ctx.outputOf('x') ?? 'none' });
        return { status: 'warned', summary: 'c', output: { w: 2 } };
      } },
      { id: 'd', run: async (ctx) => { got.fromD = ctx.outputOf('c'); return { status: 'succeeded', summary: 'd' }; } },
    ]));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(got).toEqual({ a: { n: 1 }, b: 'none', c: 'none', d: 'none', x: 'none', fromD: { w: 2 } });
  });

  it("a failed step's output is not offered to a later run of another step", async () => {
    let fail = true;
    const got: unknown[] = [];
    const { engine } = track(makeEngine([
      { id: 'a', run: async (ctx) => { ctx.checkpoint.set('k', 1); if (fail) throw new Error('no'); return { status: 'succeeded', summary: 'a', output: { o: 1 } }; } },
      { id: 'b', run: async (ctx) => { got.push(ctx.outputOf('a')); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d'),
    ]));
    const failed: unknown[] = [];
    engine.on((e) => { if (e.type === 'step.started' && e.stepId === 'b') failed.push(e.job.steps[0].state); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'failed');
    fail = false;
    await engine.retry(j.id, bob);
    await waitState(engine, j.id, 'succeeded');
    expect(got).toEqual([{ o: 1 }]);
  });
});

describe('checkpoints', () => {
  it('set() is in the database at once, with secrets masked; get() and once() read it back in a later run', async () => {
    const secret = 'cp-s3cr3t-value-9';
    registerSecret(secret);
    let rowDuring: ReturnType<typeof stepRow> | undefined;
    const runs: Array<[unknown, unknown]> = [];
    let onceCalls = 0;
    let engineRef!: ReturnType<typeof makeEngine>;
    const a: StepHandler = { id: 'a', run: async (ctx) => {
      runs.push([ctx.checkpoint.get('where'), ctx.checkpoint.get('token')]);
      const first = await ctx.checkpoint.once('release', () => { onceCalls++; return `rev${onceCalls}`; });
      ctx.checkpoint.set('where', 'half');
      ctx.checkpoint.set('token', secret);
      rowDuring = stepRow(engineRef, ctx.jobId, 'a');
      await ctx.requireApproval({ title: 'go', hash: 'h', diffText: '', changedKeys: [], facts: {} });
      return { status: 'succeeded', summary: first };
    } };
    engineRef = track(makeEngine([a, ok('b'), ok('c'), ok('d')], { policy: policy({ allowSelfApproval: true }) }));
    const { engine } = engineRef;
    engine.start();
    const j = await submit(engine);
    const w = await engine.settled(j.id);
    expect(w.state).toBe('waiting_approval');
    expect(JSON.parse(rowDuring!.checkpoint!)).toEqual({ release: 'rev1', where: 'half', token: '[REDACTED]' });
    await engine.decide(w.approvals[0].id, { by: alice, decision: 'approve', hash: 'h' });
    await waitState(engine, j.id, 'succeeded');
    expect(runs).toEqual([[undefined, undefined], ['half', '[REDACTED]']]);
    expect(onceCalls).toBe(1);
    expect((await step(engine, j.id, 'a')).summary).toBe('rev1');
  });

  it('once() runs its function again for a key holding undefined', async () => {
    let calls = 0;
    const { engine } = track(makeEngine([{ id: 'a', run: async (ctx) => {
      ctx.checkpoint.set('k', undefined);
      const v = await ctx.checkpoint.once('k', () => { calls++; return 'computed'; });
      return { status: 'succeeded', summary: String(v) };
    } }, ok('b'), ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(calls).toBe(1);
    expect((await step(engine, j.id, 'a')).summary).toBe('computed');
  });
});

describe('what is stored and emitted for each outcome', () => {
  it('a step row while running and when done: attempt, start, finish and duration from the engine clock; text masked', async () => {
    const secret = 'row-s3cr3t-value-7';
    registerSecret(secret);
    let t = 1_800_000_000_000;
    let during: Awaited<ReturnType<typeof step>> | undefined;
    let engineRef!: JobEngine;
    const b: StepHandler = { id: 'b', run: async (ctx) => {
      during = (await step(engineRef, ctx.jobId, 'b'));
      t += 250;
      return { status: 'warned', summary: `made ${secret}`, warnings: [`w ${secret}`, 'plain'], output: { k: secret, n: 1 } };
    } };
    const { engine, store } = track(makeEngine([ok('a'), b, ok('c'), ok('d')], { clock: () => t }));
    engineRef = engine;
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(during).toMatchObject({ state: 'running', attempt: 1, startedAt: new Date(1_800_000_000_000).toISOString() });
    expect(during!.finishedAt).toBeUndefined();
    expect(during!.durationMs).toBeUndefined();
    const done = (await step(engine, j.id, 'b'));
    expect(done).toMatchObject({ state: 'warned', attempt: 1, summary: 'made [REDACTED]', warnings: ['w [REDACTED]', 'plain'], output: { k: '[REDACTED]', n: 1 },
      finishedAt: new Date(1_800_000_000_250).toISOString(), durationMs: 250 });
    expect((await step(engine, j.id, 'a')).output).toBeUndefined();
    expect((await step(engine, j.id, 'a')).warnings).toBeUndefined();
    const fin = exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'step.finished');
    expect(fin.map((e) => [e.result, e.details])).toEqual([
      ['succeeded', { stepId: 'a', summary: 'a done' }], ['warned', { stepId: 'b', summary: 'made [REDACTED]' }],
      ['succeeded', { stepId: 'c', summary: 'c done' }], ['succeeded', { stepId: 'd', summary: 'd done' }],
    ]);
  });

  it('a re-run step shows its new attempt, with the old error cleared while it runs', async () => {
    let fail = true;
    let during: Awaited<ReturnType<typeof step>> | undefined;
    let engineRef!: JobEngine;
    const { engine } = track(makeEngine([ok('a'), { id: 'b', run: async (ctx) => {
      during = (await step(engineRef, ctx.jobId, 'b'));
      if (fail) throw new Error('first');
      return { status: 'succeeded', summary: 'b' };
    } }, ok('c'), ok('d')]));
    engineRef = engine;
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'failed');
    expect((await step(engine, j.id, 'b'))).toMatchObject({ state: 'failed', attempt: 1, error: 'first' });
    fail = false;
    await engine.retry(j.id, bob);
    await waitState(engine, j.id, 'succeeded');
    expect(during).toMatchObject({ state: 'running', attempt: 2 });
    expect(during!.error).toBeUndefined();
    expect(during!.finishedAt).toBeUndefined();
    expect((await step(engine, j.id, 'b'))).toMatchObject({ state: 'succeeded', attempt: 2 });
    expect((await step(engine, j.id, 'b')).error).toBeUndefined();
    expect((await step(engine, j.id, 'a')).attempt).toBe(1);
  });

  it('a step that finds nothing to do is skipped: a step.skipped event, even when it names a step that would apply it', async () => {
    const { engine, store } = track(makeEngine([ok('a', { status: 'skipped', summary: 'nothing to do', appliedWith: 'c' }), ok('b'),
      { id: 'c', run: async () => { await sleep(30); return { status: 'succeeded', summary: 'c' }; } }, ok('d')]));
    const seen: string[] = [];
    engine.on((e) => seen.push(`${label(e)}:${e.job.steps[0].state}`));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(seen.slice(0, 4)).toEqual(['job.queued:pending', 'job.started:pending', 'step.started:a:running', 'step.skipped:a:skipped']);
    expect(seen.filter((s) => s.startsWith('step.finished'))).toEqual(['step.finished:b:skipped', 'step.finished:c:skipped', 'step.finished:d:skipped']);
    expect((await step(engine, j.id, 'a'))).toMatchObject({ state: 'skipped', summary: 'nothing to do' });
    expect(exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'step.applied')).toEqual([]);
  });

  it('work applied by a step that already ran is final at once', async () => {
    const { engine } = track(makeEngine([ok('a', { status: 'warned' }), ok('b', { appliedWith: 'a' }), ok('c', { status: 'warned', appliedWith: 'b' }), ok('d')]));
    const seen: string[] = [];
    engine.on((e) => { if (e.type === 'step.finished') seen.push(`${e.stepId}:${e.job.steps.find((s) => s.stepId === e.stepId)!.state}`); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(seen).toEqual(['a:warned', 'b:succeeded', 'c:warned', 'd:succeeded']);
  });

  it('prepared steps wait until the step that applies them has reached the cluster (a chain too); each then takes its own status, audited as applied', async () => {
    const { engine, store } = track(makeEngine([
      ok('a', { status: 'warned', appliedWith: 'd' }),
      ok('b', { appliedWith: 'c' }),
      ok('c', { appliedWith: 'd' }),
      { id: 'd', run: async () => { await sleep(10); return { status: 'succeeded', summary: 'd' }; } },
    ]));
    const seen: string[] = [];
    engine.on((e) => { if (e.type === 'step.finished') seen.push(`${e.stepId}:${e.job.steps.map((s) => s.state).join(',')}`); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(seen).toEqual([
      'a:prepared,pending,pending,pending',
      'b:prepared,prepared,pending,pending',
      // c is applied by d, so it is only prepared: b, applied with c, has not reached the cluster either
      'c:prepared,prepared,prepared,pending',
      'd:warned,succeeded,succeeded,succeeded',
      'a:warned,succeeded,succeeded,succeeded',
      'c:warned,succeeded,succeeded,succeeded',
      'b:warned,succeeded,succeeded,succeeded',
    ]);
    const audit = exportAudit(store, { jobId: j.id });
    expect(audit.filter((e) => e.action === 'step.finished').map((e) => [e.result, e.details])).toEqual([
      ['prepared', { stepId: 'a', summary: 'a done', appliedWith: 'd' }], ['prepared', { stepId: 'b', summary: 'b done', appliedWith: 'c' }],
      ['prepared', { stepId: 'c', summary: 'c done', appliedWith: 'd' }], ['succeeded', { stepId: 'd', summary: 'd' }],
    ]);
    expect(audit.filter((e) => e.action === 'step.applied').map((e) => [e.result, e.details, e.actor])).toEqual([
      ['warned', { stepId: 'a', appliedWith: 'd' }, 'system'], ['succeeded', { stepId: 'c', appliedWith: 'd' }, 'system'], ['succeeded', { stepId: 'b', appliedWith: 'c' }, 'system'],
    ]);
    expect((await engine.job(j.id))!.steps.map((s) => s.state)).toEqual(['warned', 'succeeded', 'succeeded', 'succeeded']);
  });

  it('work prepared for a step that then finds nothing to apply (skipped) is never shown as done', async () => {
    const { engine, store } = track(makeEngine([ok('a', { appliedWith: 'c' }), ok('b'), ok('c', { status: 'skipped', summary: 'nothing changed' }), ok('d')]));
    engine.start();
    const j = await submit(engine);
    const v = await waitState(engine, j.id, 'succeeded');
    expect(v.steps.map((s) => s.state)).toEqual(['prepared', 'succeeded', 'skipped', 'succeeded']);
    expect(exportAudit(store, { jobId: j.id }).filter((e) => e.action === 'step.applied')).toEqual([]);
  });

  it('progress lines reach listeners masked, with the step they belong to', async () => {
    const secret = 'prog-s3cr3t-value-5';
    registerSecret(secret);
    const { engine } = track(makeEngine([ok('a'), { id: 'b', run: async (ctx) => { ctx.progress(`pushing with ${secret}`); ctx.progress('done pushing'); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d')]));
    const lines: Array<[string, string, string]> = [];
    engine.on((e) => { if (e.type === 'step.progress') lines.push([e.job.id, e.stepId, e.message]); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(lines).toEqual([[j.id, 'b', 'pushing with [REDACTED]'], [j.id, 'b', 'done pushing']]);
  });

  it('a burst of progress lines (helm output) reaches listeners whole and in order', async () => {
    const burst = Array.from({ length: 50 }, (_, i) => `line ${i}`);
    const { engine } = track(makeEngine([ok('a'), { id: 'b', run: async (ctx) => { for (const l of burst) ctx.progress(l); await new Promise((r) => setTimeout(r, 20)); ctx.progress('after'); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d')]));
    const lines: string[] = [];
    engine.on((e) => { if (e.type === 'step.progress') lines.push(e.message); });
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    expect(lines).toEqual([...burst, 'after']);
  });

  it("a step's own audit rows carry its step id, masked", async () => {
    const secret = 'aud-s3cr3t-value-3';
    registerSecret(secret);
    const { engine, store } = track(makeEngine([ok('a'), { id: 'b', run: async (ctx) => { ctx.audit!('recovery.deleted', { name: 'pod-1', token: secret }); return { status: 'succeeded', summary: 'b' }; } }, ok('c'), ok('d')]));
    engine.start();
    const j = await submit(engine);
    await waitState(engine, j.id, 'succeeded');
    const row = exportAudit(store, { jobId: j.id }).find((e) => e.action === 'recovery.deleted')!;
    expect(row).toMatchObject({ actor: 'system', deployment: 'sales', details: { stepId: 'b', name: 'pod-1', token: '[REDACTED]' } });
  });
});

describe('failures', () => {
  it('a StepFailure: error, log tail and hint reach the user masked; the row, audit and job say which step failed and when', async () => {
    const secret = 'fail-s3cr3t-value-1';
    registerSecret(secret);
    let t = 1_800_000_000_000;
    const runs: string[] = [];
    const { engine, store } = track(makeEngine([ok('a'), { id: 'b', run: async () => {
      t += 40;
      throw new StepFailure(`helm failed for ${secret}`, { logTail: `tail ${secret}`, hint: `check ${secret}` });
    } }, { id: 'c', run: async () => { runs.push('c'); return { status: 'succeeded', summary: 'c' }; } }, ok('d')], { clock: () => t }));
    const failed: JobEvent[] = [];
    engine.on((e) => { if (e.type === 'step.failed') failed.push(e); });
    engine.start();
    const j = await submit(engine);
    const v = await waitState(engine, j.id, 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ stepId: 'b', error: 'helm failed for [REDACTED]', logTail: 'tail [REDACTED]', hint: 'check [REDACTED]' });
    expect(failed[0].job.steps[1].state).toBe('failed');
    expect(v.error).toBe('Step b: helm failed for [REDACTED]');
    expect((await step(engine, j.id, 'b'))).toMatchObject({ state: 'failed', error: 'helm failed for [REDACTED]', finishedAt: new Date(1_800_000_000_040).toISOString(), durationMs: 40 });
    expect(runs).toEqual([]);
    expect(exportAudit(store, { jobId: j.id }).find((e) => e.action === 'step.failed')).toMatchObject({ actor: 'system', result: 'failed', details: { stepId: 'b', error: 'helm failed for [REDACTED]' } });
  });

  it('a plain error has no log tail or hint; a StepFailure without them neither', async () => {
    for (const err of [new Error('plain'), new StepFailure('bare')]) {
      const { engine } = track(makeEngine([{ id: 'a', run: async () => { throw err; } }, ok('b'), ok('c'), ok('d')]));
      const failed: JobEvent[] = [];
      engine.on((e) => { if (e.type === 'step.failed') failed.push(e); });
      engine.start();
      const j = await submit(engine);
      await waitState(engine, j.id, 'failed');
      expect(Object.keys(failed[0]).sort()).toEqual(['error', 'job', 'stepId', 'type']);
      await engine.stop();
    }
  });

  it('a job whose step has no handler in this worker fails at that step, naming it', async () => {
    const wide = (spec: Parameters<typeof fakePlan>[0]): Plan => {
      const p = fakePlan(spec);
      return { ...p, steps: [...p.steps, { ...p.steps[3], id: 'e', number: 5, title: 'Step e', order: 5 }] } as Plan;
    };
    const { store } = makeEngine([], { plan: wide });
    const cli = makeEngine([], { store, plan: wide });
    const j = await submit(cli.engine);
    const worker = track(makeEngine([ok('a'), ok('b'), ok('c'), ok('d')], { store }));
    worker.engine.start();
    const v = await waitState(worker.engine, j.id, 'failed');
    expect(v.error).toBe('Step e: no handler registered for step e');
    expect(v.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed']);
  });

  it('buildContext failing fails the step with its message', async () => {
    const runs: string[] = [];
    const { engine } = track(makeEngine([{ id: 'a', run: async () => { runs.push('a'); return { status: 'succeeded', summary: 'a' }; } }, ok('b'), ok('c'), ok('d')], {
      buildContext: () => { throw new Error('no kubeconfig'); },
    }));
    engine.start();
    const j = await submit(engine);
    expect((await waitState(engine, j.id, 'failed')).error).toBe('Step a: no kubeconfig');
    expect(runs).toEqual([]);
  });
});

describe('approvals gate the step that applies', () => {
  const applyStep = (applied: string[], hash = 'H1'): StepHandler => ({ id: 'c', run: async (ctx) => {
    const g = await ctx.requireApproval({ title: 'helm upgrade', hash, diffText: '+ a', changedKeys: ['a'], facts: {} });
    applied.push(`applied for ${g.approvedBy.join(',')}`);
    return { status: 'succeeded', summary: 'applied' };
  } });

  it('nothing is applied before the approval; after it, the step applies once and the job goes on at once', async () => {
    const applied: string[] = [];
    // no polling: the approval itself puts the job back to work
    const { engine } = track(makeEngine([ok('a'), ok('b'), applyStep(applied), ok('d')], { pollMs: 1_000_000 }));
    const seen: string[] = [];
    engine.on((e) => seen.push(`${label(e)}:${e.job.state}`));
    engine.start();
    const j = await submit(engine);
    const w = await engine.settled(j.id);
    expect(w.state).toBe('waiting_approval');
    expect(w.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'waiting_approval', 'pending']);
    await sleep(60);
    expect(applied).toEqual([]);
    expect(seen).not.toContain('step.failed:c:waiting_approval');
    expect(seen.at(-1)).toBe('approval.requested:waiting_approval');
    await engine.decide(w.approvals[0].id, { by: bob, decision: 'approve', hash: 'H1' });
    await waitState(engine, j.id, 'succeeded');
    expect(applied).toEqual(['applied for UBOB']);
  });

  it('a rejection or an expiry stops the job: nothing applied, later steps never run', async () => {
    for (const how of ['reject', 'expire'] as const) {
      let t = Date.now();
      const applied: string[] = [];
      const runs: string[] = [];
      const { engine } = track(makeEngine([ok('a'), ok('b'), applyStep(applied), { id: 'd', run: async () => { runs.push('d'); return { status: 'succeeded', summary: 'd' }; } }],
        { clock: () => t, policy: policy({ expiresInMs: 1000 }) }));
      engine.start();
      const j = await submit(engine);
      const w = await engine.settled(j.id);
      if (how === 'reject') await engine.decide(w.approvals[0].id, { by: bob, decision: 'reject', hash: 'H1' });
      else t += 1000;
      const v = await waitState(engine, j.id, 'failed');
      await sleep(60);
      expect(applied).toEqual([]);
      expect(runs).toEqual([]);
      expect(v.steps.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'failed', 'pending']);
      await engine.stop();
    }
  });

  it('an approve click that arrives after the expiry, before any worker noticed it, applies nothing', async () => {
    let t = Date.now();
    const applied: string[] = [];
    const { engine } = track(makeEngine([ok('a'), ok('b'), applyStep(applied), ok('d')], { clock: () => t, policy: policy({ expiresInMs: 1000 }) }));
    engine.start();
    const j = await submit(engine);
    const w = await engine.settled(j.id);
    await engine.stop(); // no worker tick expires it first
    t += 1000;
    expect(await engine.decide(w.approvals[0].id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false, reason: 'expired' });
    engine.start();
    await sleep(100);
    expect(applied).toEqual([]);
    expect((await engine.job(j.id))!.state).toBe('failed');
  });

  it('a cancel while waiting for approval: the approval is void, nothing applied', async () => {
    const applied: string[] = [];
    const { engine } = track(makeEngine([ok('a'), ok('b'), applyStep(applied), ok('d')]));
    engine.start();
    const j = await submit(engine);
    const w = await engine.settled(j.id);
    await engine.cancel(j.id, alice);
    expect(await engine.decide(w.approvals[0].id, { by: bob, decision: 'approve', hash: 'H1' })).toMatchObject({ ok: false });
    await sleep(60);
    expect(applied).toEqual([]);
    expect((await engine.job(j.id))!.state).toBe('cancelled');
  });
});
