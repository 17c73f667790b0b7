/** Job kinds besides the setup (e.g. rotate-token): their own plan and steps, checked like the setup's. */
import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { ALL_HANDLERS, STEP_HANDLERS } from '../../src/checklist/index.ts';
import { createJobEngine } from '../../src/jobs/engine.ts';
import type { Plan } from '../../src/spec/plan.ts';
import { JOB_KINDS } from '../../src/spec/rotate-plan.ts';
import { openStore } from '../../src/store/db.ts';
import { jobs } from '../../src/store/schema.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { fakePlan, fakeSpec, makeEngine, ok, policy, tmpDb } from './helpers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });

const otherPlan = (spec: Parameters<typeof fakePlan>[0]): Plan => ({
  ...fakePlan(spec),
  steps: ['x', 'y'].map((id, i) => ({ id, number: i + 1, title: `Step ${id}`, order: 2 - i, applies: true, actions: [], touches: {} })),
});

describe('job kinds', () => {
  it('the real rotate-token kind needs each of its step handlers; ALL_HANDLERS has them', () => {
    const s = openStore({ path: tmpDb() });
    cleanup.push(() => s.close());
    const base = { store: s, policy: policy(), buildContext: () => ({ infra: {} as never, resolveSecret: async () => '' }), jobKinds: JOB_KINDS };
    expect(() => createJobEngine({ ...base, handlers: STEP_HANDLERS })).toThrow(/no handler for step\(s\) token-create, token-secret, token-roll, token-verify, token-delete-old/);
    expect(() => createJobEngine({ ...base, handlers: ALL_HANDLERS.filter((h) => h.id !== 'token-delete-old') })).toThrow(/no handler for step\(s\) token-delete-old/);
    expect(() => createJobEngine({ ...base, handlers: ALL_HANDLERS })).not.toThrow();
  });

  it("a kind's job runs its own steps in its own order and records its kind; an unknown kind starts nothing", async () => {
    const ran: string[] = [];
    const tracked = (id: string): StepHandler => ({ id, run: async () => { ran.push(id); return { status: 'succeeded', summary: id }; } });
    const { engine, store } = makeEngine([ok('a'), ok('b'), ok('c'), ok('d'), tracked('x'), tracked('y')], { stepIds: ['a', 'b', 'c', 'd'], jobKinds: { other: { plan: otherPlan, stepIds: ['x', 'y'] } } });
    cleanup.push(() => store.close(), () => engine.stop());
    engine.start();
    await expect(engine.submit({ spec: fakeSpec('k1'), kind: 'nope', requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } })).rejects.toThrow(/unknown job kind nope; known: setup, other/);
    expect(await engine.latestJobFor('k1')).toBeUndefined();
    const j = await engine.submit({ spec: fakeSpec('k1'), kind: 'other', requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } });
    const v = await engine.settled(j.id);
    expect(v.state).toBe('succeeded');
    expect(v.steps.map((s) => s.stepId)).toEqual(['x', 'y']);
    expect(ran).toEqual(['y', 'x']);
    expect((store.db.select({ plan: jobs.plan }).from(jobs).where(eq(jobs.id, j.id)).get()!.plan as Plan).kind).toBe('other');
    const setup = await engine.settled((await engine.submit({ spec: fakeSpec('k1'), requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } })).id);
    expect(setup.steps.map((s) => s.stepId)).toEqual(['a', 'b', 'c', 'd']);
  });
});
