/**
 * The `/re status` answer of src/store/pg/status.ts against src/jobs/status-queries.ts on the same rows: the same
 * JobView (steps, approvals, votes), lock holder, last good setup and existence, from one statement.
 */
import { expect, it } from 'vitest';
import * as queue from '../../src/jobs/queue.ts';
import { statusQueries } from '../../src/jobs/status-queries.ts';
import { jobViewPg, statusAnswerPg } from '../../src/store/pg/status.ts';
import { submitJobPg } from '../../src/store/pg/jobs.ts';
import { fakePlan, fakeSpec } from '../jobs/helpers.ts';
import { describeTwins, type Twins } from '../support/pg-twins.ts';

/** the same statement on both sides (`?` placeholders; `$n` on PostgreSQL) */
async function exec(t: Twins, text: string, values: unknown[]) {
  t.lite.sqlite.prepare(text).run(...values.map((v) => (typeof v === 'boolean' ? Number(v) : v)));
  let n = 0;
  await t.pg.pool.query(text.replace(/\?/g, () => `$${++n}`), values);
}

async function submit(t: Twins, id: string, deployment: string, kind?: string) {
  const spec = fakeSpec(deployment);
  const plan = { ...fakePlan(spec), ...(kind ? { kind } : {}) };
  const input = { spec, requestedBy: { id: 'UALICE' }, origin: { kind: 'slack' as const, channel: 'C1', user: 'UALICE' } as never, id, plan, at: t.iso() };
  queue.submitJob(t.lite, input, t.liteAudit);
  await submitJobPg(t.pg.db, input, t.pgAudit);
  t.tick();
}

/** sales: an old succeeded setup, a succeeded rotate-token job (not a setup), and a running job waiting on votes */
async function seed(t: Twins) {
  await submit(t, 'job-1', 'sales');
  await exec(t, `UPDATE jobs SET state = 'succeeded', started_at = ?, finished_at = ? WHERE id = 'job-1'`, [t.iso(), t.iso()]);
  await exec(t, `UPDATE job_steps SET state = 'succeeded', summary = 'ok', warnings = ?, output = ?, duration_ms = 1234, attempt = 1, started_at = ?, finished_at = ? WHERE job_id = 'job-1' AND step_id = 'a'`,
    [JSON.stringify(['chart is old']), JSON.stringify({ zeta: 1, alpha: { b: 2, a: 1 } }), t.iso(), t.iso()]);
  t.tick();
  await submit(t, 'job-2', 'sales', 'rotate-token');
  await exec(t, `UPDATE jobs SET state = 'succeeded', finished_at = ? WHERE id = 'job-2'`, [t.iso()]);
  t.tick();
  await submit(t, 'job-3', 'sales');
  await exec(t, `UPDATE jobs SET state = 'waiting_approval', started_at = ? WHERE id = 'job-3'`, [t.iso()]);
  for (const [id, state, at] of [['apr_old', 'superseded', 1], ['apr_new', 'pending', 2]] as const) {
    await exec(t, `INSERT INTO approvals (id, job_id, step_id, hash, title, facts, changed_keys, diff_text, state, required, policy, requested_at, expires_at, review)
      VALUES (?, 'job-3', 'b', ?, 'helm upgrade', ?, ?, '+ x', ?, 2, ?, ?, ?, ?)`,
    [id, `h-${id}`, JSON.stringify({ chart: '2.3.3', ns: 'astro' }), JSON.stringify(['x']), state, JSON.stringify({ approvers: ['UBOB', 'UCAROL'], required: 2 }),
      new Date(Date.UTC(2026, 0, 2, 0, 0, at)).toISOString(), new Date(Date.UTC(2026, 0, 3)).toISOString(), id === 'apr_new' ? JSON.stringify({ changes: [] }) : null]);
  }
  await exec(t, `INSERT INTO approval_votes (approval_id, "user", decision, at) VALUES ('apr_new', 'UCAROL', 'approve', ?), ('apr_new', 'UBOB', 'reject', ?)`,
    ['2026-01-02T00:00:05.000Z', '2026-01-02T00:00:04.000Z']);
  await submit(t, 'other-1', 'billing');
}

describeTwins('PostgreSQL status answer, beside SQLite\'s', (twins) => {
  it('the same latest view, lock holder, last good setup and existence, in one statement', async () => {
    const t = twins();
    await seed(t);
    const q = statusQueries(t.lite);
    let statements = 0;
    const counted = { query: ((...args: Parameters<typeof t.pg.pool.query>) => { statements++; return t.pg.pool.query(...args); }) as typeof t.pg.pool.query };
    for (const deployment of ['sales', 'billing', 'unknown']) {
      statements = 0;
      const a = await statusAnswerPg(counted, deployment);
      expect(statements, deployment).toBe(1);
      const latest = q.latestJobId(deployment);
      const good = q.lastSucceededJobId(deployment);
      expect(a.deploymentExists, deployment).toBe(q.deploymentExists(deployment));
      expect(a.latestJobId, deployment).toBe(latest);
      expect(a.view, deployment).toEqual(latest ? q.jobView(latest) : undefined);
      expect(a.lock, deployment).toEqual(q.lockHolder(deployment));
      expect(a.lastSucceededJobId, deployment).toBe(good);
      expect(a.lastGood, deployment).toEqual(good ? q.jobView(good) : undefined);
    }
    const sales = await statusAnswerPg(t.pg.pool, 'sales');
    expect(sales).toMatchObject({ latestJobId: 'job-3', lastSucceededJobId: 'job-1', lock: { id: 'job-3', state: 'waiting_approval' } });
    // what the answer shows: votes of the pending request in time order, approvals only; key order of JSON kept
    expect(sales.view!.approvals.map((a) => [a.id, a.state, a.approvals.map((v) => v.user), a.approvers])).toEqual([
      ['apr_old', 'superseded', [], ['UBOB', 'UCAROL']], ['apr_new', 'pending', ['UCAROL'], ['UBOB', 'UCAROL']]]);
    expect(Object.keys(sales.lastGood!.steps[0]!.output!)).toEqual(['zeta', 'alpha']);
    expect(sales.lastGood!.steps[0]).toMatchObject({ durationMs: 1234, warnings: ['chart is old'] });
  });

  it('jobViewPg: the same view as StatusQueries.jobView for every job, undefined for an unknown id', async () => {
    const t = twins();
    await seed(t);
    const q = statusQueries(t.lite);
    for (const id of ['job-1', 'job-2', 'job-3', 'other-1', 'nope']) expect(await jobViewPg(t.pg.pool, id), id).toEqual(q.jobView(id));
  });
}, 'pg_status');
