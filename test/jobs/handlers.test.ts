/** A step without a handler is found when the engine is built, not when a job reaches that step. */
import { afterEach, describe, expect, it } from 'vitest';
import { STEP_HANDLERS } from '../../src/checklist/index.ts';
import { createRuntime } from '../../src/app/wire.ts';
import { createJobEngine } from '../../src/jobs/engine.ts';
import { openStore } from '../../src/store/db.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import { fakePlan, fakeSpec, makeEngine, ok, policy, tmpDb } from './helpers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c(); });
const store = () => { const s = openStore({ path: tmpDb() }); cleanup.push(() => s.close()); return s; };
const base = { policy: policy(), buildContext: () => ({ infra: {} as never, resolveSecret: async () => '' }) };

describe('step handlers are checked when the engine is created', () => {
  it('the real plan: a missing checklist step fails createJobEngine naming it', () => {
    const without = STEP_HANDLERS.filter((h) => h.id !== 'logging');
    expect(() => createJobEngine({ ...base, store: store(), handlers: without })).toThrow(/no handler for step\(s\) logging/);
    expect(() => createJobEngine({ ...base, store: store(), handlers: STEP_HANDLERS })).not.toThrow();
  });

  it('a handler for a misspelt step, or two for one step, is refused too', () => {
    const typo = STEP_HANDLERS.map((h) => (h.id === 'dag-sources' ? { ...h, id: 'dag-source' } : h));
    expect(() => createJobEngine({ ...base, store: store(), handlers: typo })).toThrow(/no handler for step\(s\) dag-sources; handler\(s\) for unknown step\(s\) dag-source/);
    expect(() => createJobEngine({ ...base, store: store(), handlers: [...STEP_HANDLERS, STEP_HANDLERS[0]] })).toThrow(/more than one handler for step\(s\) prerequisites/);
  });

  it('createRuntime (CLI, bot, worker) with incomplete handlers fails at start-up', async () => {
    const dbPath = tmpDb();
    await expect(createRuntime({ dbPath, handlers: STEP_HANDLERS.slice(0, STEP_IDS.length - 1) })).rejects.toThrow(/no handler for step\(s\) verify/);
  });

  it('a custom plan with declared step ids is checked the same way', () => {
    expect(() => createJobEngine({ ...base, store: store(), plan: fakePlan, stepIds: ['a', 'b', 'c', 'd'], handlers: [ok('a'), ok('b'), ok('d')] })).toThrow(/no handler for step\(s\) c/);
  });

  it('without declared step ids, submit refuses a plan with an unhandled step before anything is stored', async () => {
    const { engine, store: s } = makeEngine([ok('a'), ok('b'), ok('d')]);
    cleanup.push(() => s.close(), () => engine.stop());
    await expect(engine.submit({ spec: fakeSpec(), requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } })).rejects.toThrow(/no handler for step\(s\) c of this plan; nothing was started/);
    expect(await engine.latestJobFor('sales')).toBeUndefined();
    // a plan that skips c needs no handler for it
    await expect(engine.submit({ spec: fakeSpec('sales', ['c']), requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } })).resolves.toMatchObject({ state: 'queued' });
  });

  it('an engine without handlers submits and cancels but cannot be started', async () => {
    const { engine, store: s } = makeEngine([]);
    cleanup.push(() => s.close());
    const j = await engine.submit({ spec: fakeSpec(), requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } });
    expect(() => engine.start()).toThrow(/no step handlers/);
    await expect(engine.cancel(j.id, { id: 'UALICE' })).resolves.toMatchObject({ state: 'cancelled' });
  });
});
