import { describe, expect, it } from 'vitest';
import { ChildSlots, maxChildProcessesFromEnv, reportingSlotWaits, DEFAULT_MAX_CHILD_PROCESSES } from '../../src/infra/child-limit.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('child-process slots', () => {
  it('runs at most `max` at once; the others start in arrival order as slots free up', async () => {
    const slots = new ChildSlots(2);
    const started: string[] = [];
    const releases = new Map<string, () => void>();
    const run = (name: string) => slots.acquire(`helm ${name}`).then((release) => (started.push(name), releases.set(name, release)));
    for (const n of ['a', 'b', 'c', 'd']) void run(n);
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect(slots.queued).toBe(2);
    releases.get('b')!();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    releases.get('b')!(); // a second release of the same slot changes nothing
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    releases.get('a')!();
    releases.get('c')!();
    await tick();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    releases.get('d')!();
    expect(slots.active).toBe(0);
  });

  it('a cancelled wait fails with "cancelled" and gives its place up', async () => {
    const slots = new ChildSlots(1);
    const first = await slots.acquire('helm history');
    const ac = new AbortController();
    const waiting = slots.acquire('helm upgrade --install', { signal: ac.signal });
    const next = slots.acquire('helm get manifest');
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'cancelled', message: expect.stringContaining('helm upgrade --install cancelled') });
    first();
    const release = await next; // the cancelled run did not take the slot
    expect(slots.active).toBe(1);
    release();
    await expect(slots.acquire('helm x', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'cancelled' });
  });

  it('a wait longer than the call timeout fails with "timeout", naming the setting', async () => {
    const slots = new ChildSlots(1);
    const held = await slots.acquire('buildah push');
    await expect(slots.acquire('buildah push', { timeoutMs: 30 })).rejects.toMatchObject({
      code: 'timeout',
      message: expect.stringContaining('RE_BOT_MAX_CHILD_PROCESSES'),
    });
    held();
    expect(slots.queued).toBe(0);
    expect(slots.active).toBe(0);
  });

  it('a step whose run waits is told so, and told again when it runs', async () => {
    const slots = new ChildSlots(1);
    const said: string[] = [];
    const adapter = reportingSlotWaits(
      { async upgrade(name: string) { const release = await slots.acquire(`helm upgrade ${name}`); return release; } },
      { progress: (m) => said.push(m) },
    );
    const first = await adapter.upgrade('r1');
    expect(said).toEqual([]); // a free slot: nothing to say
    const second = adapter.upgrade('r2');
    await tick();
    expect(said).toEqual([expect.stringMatching(/^waiting for a free slot to run helm upgrade r2: 1 helm\/image-tool processes running/)]);
    first();
    (await second)();
    expect(said[1]).toMatch(/^running helm upgrade r2 \(waited \d+\.\d s for a free slot\)$/);
  });

  it('RE_BOT_MAX_CHILD_PROCESSES: a positive integer, or the default', () => {
    expect(maxChildProcessesFromEnv({})).toBe(DEFAULT_MAX_CHILD_PROCESSES);
    expect(maxChildProcessesFromEnv({ RE_BOT_MAX_CHILD_PROCESSES: '8' })).toBe(8);
    for (const bad of ['0', '-1', '2.5', 'four']) {
      expect(() => maxChildProcessesFromEnv({ RE_BOT_MAX_CHILD_PROCESSES: bad })).toThrow(`RE_BOT_MAX_CHILD_PROCESSES: expected a positive integer (helm/image-tool processes at once), got "${bad}"`);
    }
  });
});
