/** `/re rotate-token <deployment>`: acked at once, answered through response_url; refuses what it cannot rotate. */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine, sampleSpec } from '../support/fake-engine.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { startHarness, REQUESTER, type Harness } from './harness.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const specs: Record<string, SetupSpec> = {
  pasted: sampleSpec('pasted'),
  created: { ...sampleSpec('created'), agent: { ...sampleSpec('created').agent, token: { create: { expiresInDays: 30 } } } },
  wizard: { ...sampleSpec('wizard'), agent: { ...sampleSpec('wizard').agent, token: { create: {} } }, deployment: { ...sampleSpec('wizard').deployment, apiToken: { stored: 'sec_gone' } } },
};

async function rotate(user: string, name: string) {
  const r = await h!.command(user, `rotate-token ${name}`);
  expect(r.status).toBe(200);
  expect(r.body ?? '').toBe(''); // an empty ack: the answer follows through response_url
  return JSON.stringify(await h!.emu.waitResponse(`cmd-${r.trigger}`));
}

describe('/re rotate-token', () => {
  it('submits a rotate-token job for the last spec of a deployment whose token re-bot creates, and refuses the rest', async () => {
    const engine = new FakeEngine(policy);
    const kinds: string[] = [];
    const submit = engine.submit.bind(engine);
    engine.submit = async (i) => { kinds.push(i.kind ?? 'setup'); return submit(i); };
    h = await startHarness({ engine, lastSpec: (n) => specs[n], deployments: () => Object.keys(specs) });

    expect(await rotate(REQUESTER, 'created')).toMatch(/Rotating the agent token of `created`: job `job-1`/);
    expect(kinds).toEqual(['rotate-token']);
    expect(engine.submitted[0].deployment.name).toBe('created');

    expect(await rotate(REQUESTER, 'pasted')).toMatch(/uses a pasted agent token: re-bot rotates only tokens it creates/);
    expect(await rotate(REQUESTER, 'wizard')).toMatch(/secrets typed into the wizard \(`deployment.apiToken`\); they were erased/);
    expect(await rotate(REQUESTER, 'createdd')).toMatch(/Unknown deployment `createdd`.*`created`/);
    expect(await rotate(REQUESTER, 'created')).toMatch(/locked by job `job-1`.*nothing was started/);
    // the refusals never reached the engine; the locked one was refused by it
    expect(kinds).toEqual(['rotate-token', 'rotate-token']);
    expect(engine.submitted).toHaveLength(1);
  });

  it('a non-operator is refused and audited', async () => {
    const engine = new FakeEngine(policy);
    const audits: string[] = [];
    h = await startHarness({ engine, env: { RE_BOT_OPERATORS: 'S0APPROVERS' }, lastSpec: (n) => specs[n], deployments: () => Object.keys(specs), audit: (e) => audits.push(`${e.actor} ${e.action} ${e.result}`) });
    expect(await rotate('U0OUTSIDER', 'created')).toMatch(/Only operators may rotate agent tokens/);
    expect(audits).toEqual(['U0OUTSIDER rotate-token.refused not_operator']);
    expect(engine.submitted).toEqual([]);
  });
});
