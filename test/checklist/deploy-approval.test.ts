import { afterEach, describe, expect, it } from 'vitest';
import { agents } from '../../src/checklist/agents.ts';
import { deploy } from '../../src/checklist/deploy.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import type { JobEngine, JobView } from '../../src/jobs/types.ts';
import { makeEngine } from '../jobs/helpers.ts';
import { AGENT_IMAGE } from '../spec/fixtures.ts';
import { createFakeInfra } from './fake-infra.ts';
import { testSpec } from './step-context.ts';

const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };
const engines: JobEngine[] = [];
afterEach(async () => { for (const e of engines.splice(0)) await e.stop(); });

async function until(engine: JobEngine, id: string, ok: (v: JobView) => boolean): Promise<JobView> {
  for (let i = 0; i < 200; i++) {
    const v = (await engine.job(id))!;
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} stuck in ${(await engine.job(id))!.state}`);
}

describe('step 7 approval through the job engine', () => {
  it('is a separate request with its own hash after step 2, and is not asked again once granted', async () => {
    const spec = testSpec({
      agent: { image: AGENT_IMAGE, token: { env: 'T_AGENT' }, readyTimeoutSeconds: 10 },
      images: { client: { repository: 'registry.acme.io/re/client', tag: 'v2', contextDir: 'examples/demo-project' } },
    });
    const infra = createFakeInfra();
    const { engine } = makeEngine([agents, deploy], {
      plan: (s) => { const p = buildPlan(s); return { ...p, steps: p.steps.filter((x) => x.id === 'agents' || x.id === 'deploy') }; },
      buildContext: () => ({ infra, resolveSecret: async (ref) => process.env[(ref as { env: string }).env]! }),
    });
    engines.push(engine);
    engine.start();
    const job = await engine.submit({ spec, requestedBy: alice, origin: { kind: 'cli' } });

    let v = await until(engine, job.id, (x) => x.state === 'waiting_approval');
    expect(v.approvals.map((a) => a.stepId)).toEqual(['agents']);
    const install = v.approvals[0];
    expect(await engine.decide(install.id, { by: bob, decision: 'approve', hash: install.hash })).toMatchObject({ ok: true });

    v = await until(engine, job.id, (x) => x.state === 'waiting_approval' && x.approvals.length === 2);
    const roll = v.approvals.find((a) => a.stepId === 'deploy')!;
    expect(roll.hash).not.toBe(install.hash);
    expect(roll.facts.image).toBe('registry.acme.io/re/client:v2');
    expect(roll.changedKeys).toEqual(['image']);
    expect(await engine.decide(roll.id, { by: bob, decision: 'approve', hash: roll.hash })).toMatchObject({ ok: true });

    v = await until(engine, job.id, (x) => x.state === 'succeeded' || x.state === 'failed');
    expect(v.state).toBe('succeeded');
    expect(v.approvals).toHaveLength(2);
    expect(v.approvals.every((a) => a.state === 'approved')).toBe(true);
    expect(infra.state.builds).toHaveLength(1);
    expect(infra.state.upgrades).toHaveLength(2);
    expect(v.steps.find((s) => s.stepId === 'deploy')!.summary).toMatch(/^pushed registry\.acme\.io\/re\/client:v2 \([0-9a-f]{12}\); astro-agent revision 2, agents on the new image$/);
  });
});
