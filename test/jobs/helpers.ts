import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../src/spec/plan.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { openStore } from '../../src/store/db.ts';
import { createJobEngine, type JobEngineOptions } from '../../src/jobs/engine.ts';
import type { ApprovalPolicy, SubmitInput } from '../../src/jobs/types.ts';

export const tmpDb = () => join(mkdtempSync(join(tmpdir(), 'rebot-jobs-')), 're-bot.db');

export function fakeSpec(name = 'sales', skip: string[] = []): SubmitInput['spec'] {
  return { deployment: { name, id: 'cm0abc123' }, skip } as unknown as SubmitInput['spec'];
}

export const STEPS = ['a', 'b', 'c', 'd'];
export function fakePlan(spec: SubmitInput['spec']): Plan {
  const skip = (spec as unknown as { skip: string[] }).skip ?? [];
  return {
    deployment: spec.deployment.name, release: 'r', namespace: 'ns', chart: 'astro-agent 2.3.3', valuesHash: 'vh1', secrets: [],
    steps: STEPS.map((id, i) => ({ id, number: i + 1, title: `Step ${id}`, order: i + 1, applies: !skip.includes(id), skipReason: skip.includes(id) ? `${id} not configured` : undefined, actions: [], touches: {} })),
  } as unknown as Plan;
}

export const policy = (p: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({ approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 60_000, ...p });

export function makeEngine(handlers: StepHandler[], o: Partial<JobEngineOptions> & { path?: string } = {}) {
  const store = o.store ?? openStore({ path: o.path ?? tmpDb() });
  const engine = createJobEngine({
    store, handlers, policy: policy(), concurrency: 2, leaseMs: 500, pollMs: 30, plan: fakePlan,
    buildContext: () => ({ infra: {} as never, resolveSecret: async () => 'x' }), ...o,
  });
  return { store, engine };
}

export const ok = (id: string, extra: Partial<Awaited<ReturnType<StepHandler['run']>>> = {}): StepHandler =>
  ({ id, run: async () => ({ status: 'succeeded', summary: `${id} done`, ...extra }) });
