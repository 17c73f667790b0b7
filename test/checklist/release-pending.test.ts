/**
 * A worker killed during `helm upgrade --install` leaves the release pending. Whether re-bot may recover it
 * depends on proof that re-bot's own helm made that revision, which helm's default description
 * ("Initial install underway") does not give: the checkpoint written when helm was spawned does.
 */
import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { applyRelease, type RolloutInput } from '../../src/checklist/release.ts';
import { createFakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';

const KEY = 'agents';
const DEAD_PID = 2 ** 22 + 12345; // above Linux's pid_max default: never a live process

function setup(history: Array<{ revision: number; status: string; description: string }>, checkpoint: Record<string, unknown>) {
  const spec = testSpec();
  const infra = createFakeInfra({ namespaces: [spec.cluster.namespace] });
  infra.state.history.set(`${spec.cluster.namespace}/${spec.cluster.release}`, history.map((h) => ({ ...h, chart: 'astro-remote-execution-agent-2.3.3', updated: new Date().toISOString() })));
  const h = makeCtx(spec, infra, { checkpoint });
  const input: RolloutInput = { key: KEY, values: { resourceNamePrefix: 'astro-agent', image: 'agent:1' }, valuesHash: 'a'.repeat(64) };
  return { spec, infra, h, input };
}

describe('applyRelease after a kill during helm', () => {
  it('removes a pending first install that its own killed helm left with helm\'s default description, then installs once', async () => {
    const { spec, infra, h, input } = setup(
      [{ revision: 1, status: 'pending-install', description: 'Initial install underway' }],
      { [`${KEY}.helm`]: { pid: DEAD_PID, host: hostname(), after: 0 } },
    );
    const result = await applyRelease(h.ctx, input, { hash: 'H', approvedBy: ['UBOB'] });
    const ns = spec.cluster.namespace;
    const rel = spec.cluster.release;
    expect(infra.state.writes).toEqual([`helm uninstall ${ns}/${rel}`, `helm upgrade ${ns}/${rel}`]);
    expect(result.revision).toBe(1);
    expect(h.audits.map((a) => a.action)).toEqual(['release.recovered']);
    expect(h.checkpoint[`${KEY}.helm`]).toMatchObject({ after: 0 });
  });

  it('rolls a pending upgrade made by its own helm back to the last good revision before upgrading', async () => {
    const { spec, infra, h, input } = setup(
      [
        { revision: 1, status: 'deployed', description: 're-bot job job_old values 0123456789abcdef deployment ' + testSpec().deployment.name },
        { revision: 2, status: 'pending-upgrade', description: 'Preparing upgrade' },
      ],
      { [`${KEY}.helm`]: { pid: DEAD_PID, host: hostname(), after: 1 } },
    );
    await applyRelease(h.ctx, input, { hash: 'H', approvedBy: ['UBOB'] });
    expect(infra.state.writes[0]).toBe(`helm rollback ${spec.cluster.namespace}/${spec.cluster.release} 1`);
  });

  it('refuses a pending release with helm\'s default description when no helm of this step was spawned', async () => {
    const { infra, h, input } = setup([{ revision: 1, status: 'pending-install', description: 'Initial install underway' }], {});
    await expect(applyRelease(h.ctx, input, { hash: 'H', approvedBy: ['UBOB'] })).rejects.toThrow(/became pending-install after the approval and was not created by re-bot; not touching it/);
    expect(infra.state.writes).toEqual([]);
  });

  it('refuses when the pending revision is not the one right after what this step\'s helm started from', async () => {
    const { infra, h, input } = setup(
      [
        { revision: 1, status: 'deployed', description: 'Install complete' },
        { revision: 2, status: 'deployed', description: 'Upgrade complete' },
        { revision: 3, status: 'pending-upgrade', description: 'Preparing upgrade' },
      ],
      { [`${KEY}.helm`]: { pid: DEAD_PID, host: hostname(), after: 1 } },
    );
    await expect(applyRelease(h.ctx, input, { hash: 'H', approvedBy: ['UBOB'] })).rejects.toThrow(/not created by re-bot/);
    expect(infra.state.writes).toEqual([]);
  });
});
