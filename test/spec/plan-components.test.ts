import { describe, expect, it } from 'vitest';
import { expectedComponents } from '../../src/checklist/release.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import { AGENT_IMAGE, spec } from './fixtures.ts';

function step2Wait(s: ReturnType<typeof spec>): string {
  return buildPlan(s).steps.find((x) => x.id === 'agents')!.actions.find((a) => a.startsWith('wait up to'))!;
}

describe('the pods `re-bot plan` says step 2 waits for are the ones `re-bot run` waits for', () => {
  it('Sentinel on (the default): 4 components, Sentinel included', () => {
    const s = spec();
    expect(expectedComponents(s)).toEqual(['sales-worker-default-worker', 'sales-dag-processor', 'sales-triggerer', 'sales-sentinel']);
    expect(step2Wait(s)).toBe('wait up to 300s for 4 component(s) to have a Ready pod: sales-worker-default-worker, sales-dag-processor, sales-triggerer, sales-sentinel');
  });

  it('Sentinel off, a second worker queue, and a worker scaled to zero', () => {
    const s = spec({
      sentinel: { enabled: false },
      agent: {
        image: AGENT_IMAGE,
        token: { env: 'T_AGENT' },
        workers: [
          { name: 'default-worker', queues: 'default', replicas: 1 },
          { name: 'gpu', queues: 'gpu', replicas: 2 },
          { name: 'idle', queues: 'idle', replicas: 0 },
        ],
      },
    });
    const comps = expectedComponents(s);
    expect(comps).toEqual(['sales-worker-default-worker', 'sales-worker-gpu', 'sales-dag-processor', 'sales-triggerer']);
    expect(step2Wait(s)).toContain(`for ${comps.length} component(s) to have a Ready pod: ${comps.join(', ')}`);
  });
});
