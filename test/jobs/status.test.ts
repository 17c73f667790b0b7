import { describe, it, expect } from 'vitest';
import { statusReport, statusReportOf, closestDeployments, jobHistory, resolveJobRef } from '../../src/jobs/status.ts';
import { sqliteRepository } from '../../src/store/repo.ts';
import { fakeSpec, makeEngine, ok } from './helpers.ts';

describe('statusReport', () => {
  it('shows latest job, steps, lock, outputs; suggests close names; fast on many rows', async () => {
    const { engine, store } = makeEngine([ok('a'), ok('b'), ok('c'), ok('d')]);
    engine.start();
    const j = await engine.submit({ spec: fakeSpec('sales'), requestedBy: { id: 'UALICE' }, origin: { kind: 'cli' } });
    expect(statusReport(store, 'sales')!.lock).toMatchObject({ jobId: j.id, requestedBy: 'UALICE' });
    await engine.settled(j.id);
    await engine.stop();
    const r = statusReport(store, 'sales')!;
    expect(r.job).toMatchObject({ id: j.id, state: 'succeeded', requestedBy: 'UALICE' });
    expect(r.lock).toBeUndefined();
    expect(r.steps).toHaveLength(4);
    expect(r.chart).toBe('astro-agent 2.3.3');
    expect(statusReport(store, 'nope')).toBeUndefined();
    // the repository's answer (what the CLI reads) is the same report
    const repo = sqliteRepository(store);
    expect(await statusReportOf(repo, 'sales')).toEqual(r);
    expect(await statusReportOf(repo, 'nope')).toBeUndefined();
    expect((await jobHistory(repo, 'sales')).jobs.map((v) => v.id)).toEqual([j.id]);
    expect(await resolveJobRef(repo, j.id.slice(0, 10), 'db')).toMatchObject({ ok: true, via: 'prefix', job: { id: j.id } });
    const ins = store.sqlite.prepare('insert into deployments(name, updated_at) values (?, ?)');
    store.sqlite.transaction(() => { for (let i = 0; i < 10_000; i++) ins.run(`dep-${i}`, 'x'); })();
    const t0 = performance.now();
    expect(await closestDeployments(repo, 'sale')).toContain('sales');
    expect(statusReport(store, 'sales')!.job!.id).toBe(j.id);
    expect(performance.now() - t0).toBeLessThan(500);
  });
});
