/**
 * The durable job state in src/jobs/queue.ts, called directly with a fixed clock (no worker loop, no sleeps):
 * what each transition writes, what it leaves alone, and the per-deployment lock on submit and retry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/db.ts';
import {
  cancelJob, claimNext, completeJob, failJob, getJob, leasedJobs, releaseLeases, renewLease, requeueExpired, requeueJob,
  retryJob, submitJob, suspendJob, type AuditFn,
} from '../../src/jobs/queue.ts';
import { DeploymentLockedError } from '../../src/jobs/types.ts';
import { fakePlan, fakeSpec, tmpDb } from './helpers.ts';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const alice = { id: 'UALICE' };
const bob = { id: 'UBOB' };

type AuditRow = { jobId: string; actor: string; action: string; extra?: unknown };
const auditInto = (into: AuditRow[]): AuditFn => (j, actor, action, extra) => { into.push({ jobId: j.id, actor, action, ...(extra ? { extra } : {}) }); };

const stores: Store[] = [];
afterEach(() => { for (const s of stores.splice(0)) s.close(); });

function setup() {
  const store = openStore({ path: tmpDb() });
  stores.push(store);
  const audits: AuditRow[] = [];
  const audit = auditInto(audits);
  const submit = (id: string, o: { deployment?: string; skip?: string[]; by?: { id: string }; at?: number; astroId?: string } = {}) => {
    const spec = fakeSpec(o.deployment ?? 'sales', o.skip ?? []);
    if (o.astroId) (spec.deployment as { id: string }).id = o.astroId;
    submitJob(store, { spec, requestedBy: o.by ?? alice, origin: { kind: 'cli' }, id, plan: fakePlan(spec), at: iso(o.at ?? T0) }, audit);
  };
  const steps = (jobId: string) => store.sqlite.prepare('SELECT step_id AS id, state, summary, error FROM job_steps WHERE job_id = ? ORDER BY exec_order').all(jobId) as Array<{ id: string; state: string; summary: string | null; error: string | null }>;
  const setStep = (jobId: string, stepId: string, state: string, error: string | null = null) =>
    store.sqlite.prepare('UPDATE job_steps SET state = ?, error = ? WHERE job_id = ? AND step_id = ?').run(state, error, jobId, stepId);
  const job = (id: string) => getJob(store, id)!;
  const claim = (owner: string, now: number, leaseMs = 1000, exclude?: string[]) => claimNext(store, { owner, now, leaseMs, at: iso(now), ...(exclude ? { exclude } : {}) });
  return { store, audits, audit, submit, steps, setStep, job, claim };
}

describe('submitJob', () => {
  it('stores a queued first attempt with its steps (skipped ones with their reason), the deployment\'s last spec and one audit row', () => {
    const { store, audits, submit, steps, job } = setup();
    submit('j1', { skip: ['c'] });
    expect(job('j1')).toMatchObject({ deployment: 'sales', state: 'queued', attempt: 1, requestedBy: 'UALICE', valuesHash: 'vh1', chart: 'astro-agent 2.3.3',
      createdAt: iso(T0), updatedAt: iso(T0), startedAt: null, finishedAt: null, leaseOwner: null, leaseExpiresAt: null, cancelRequested: false, error: null, origin: { kind: 'cli' } });
    expect(steps('j1')).toEqual([
      { id: 'a', state: 'pending', summary: null, error: null },
      { id: 'b', state: 'pending', summary: null, error: null },
      { id: 'c', state: 'skipped', summary: 'c not configured', error: null },
      { id: 'd', state: 'pending', summary: null, error: null },
    ]);
    expect(store.sqlite.prepare('SELECT name, astro_id AS astroId, updated_at AS at FROM deployments').all()).toEqual([{ name: 'sales', astroId: 'cm0abc123', at: iso(T0) }]);
    expect(audits).toEqual([{ jobId: 'j1', actor: 'UALICE', action: 'job.submitted', extra: { details: { origin: 'cli', chart: 'astro-agent 2.3.3' } } }]);
  });

  it('a step that does not apply and gives no reason is stored as "not applicable"', () => {
    const { store, steps } = setup();
    const spec = fakeSpec('sales');
    const plan = fakePlan(spec);
    plan.steps[1] = { ...plan.steps[1], applies: false, skipReason: undefined };
    submitJob(store, { spec, requestedBy: alice, origin: { kind: 'cli' }, id: 'j1', plan, at: iso(T0) }, () => {});
    expect(steps('j1')[1]).toMatchObject({ id: 'b', state: 'skipped', summary: 'not applicable' });
  });

  it('a later job of the same deployment updates its Astro id and last spec once the first job finished', () => {
    const { store, submit } = setup();
    submit('j1');
    completeJob(store, 'j1', iso(T0 + 1));
    submit('j2', { astroId: 'cm0new', at: T0 + 5000 });
    expect(store.sqlite.prepare('SELECT name, astro_id AS astroId, updated_at AS at, last_spec AS spec FROM deployments').all())
      .toEqual([{ name: 'sales', astroId: 'cm0new', at: iso(T0 + 5000), spec: expect.stringContaining('"cm0new"') }]);
  });

  it('refuses a second active job of the deployment with DeploymentLockedError naming the holder, and writes nothing', () => {
    const { store, audits, submit, claim } = setup();
    submit('j1', { at: T0 });
    audits.length = 0;
    const err = (() => { try { submit('j2', { by: bob, at: T0 + 10, astroId: 'cm0other' }); } catch (e) { return e; } })() as DeploymentLockedError;
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect(err.deployment).toBe('sales');
    expect(err.holder).toEqual({ jobId: 'j1', requestedBy: 'UALICE', since: iso(T0), state: 'queued' });
    expect(err.message).toContain('deployment sales is locked by job j1 (requested by UALICE, queued since 2026-03-01T10:00:00.000Z)');
    expect(store.sqlite.prepare('SELECT id FROM jobs').all()).toEqual([{ id: 'j1' }]);
    expect(store.sqlite.prepare("SELECT COUNT(*) AS n FROM job_steps WHERE job_id = 'j2'").get()).toEqual({ n: 0 });
    // the deployment's Astro id and last spec are not replaced by the refused submit
    expect(store.sqlite.prepare('SELECT astro_id AS a, updated_at AS at FROM deployments').get()).toEqual({ a: 'cm0abc123', at: iso(T0) });
    expect(audits).toEqual([]);
    // a running holder is reported as running since it started
    expect(claim('w1', T0 + 3000)).toBe('j1');
    const err2 = (() => { try { submit('j3', { by: bob }); } catch (e) { return e; } })() as DeploymentLockedError;
    expect(err2.holder).toEqual({ jobId: 'j1', requestedBy: 'UALICE', since: iso(T0 + 3000), state: 'running' });
  });

  it('another deployment is not locked; a job id used twice is an error, not a deployment lock', () => {
    const { submit, job } = setup();
    submit('j1', { deployment: 'sales' });
    submit('j2', { deployment: 'billing' });
    expect(job('j2').state).toBe('queued');
    let err: unknown;
    try { submit('j1', { deployment: 'marketing' }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(DeploymentLockedError);
    expect((err as Error).message).toMatch(/UNIQUE constraint failed: jobs\.id/);
  });

  it('when the lock holder is gone by the time it is looked up, the refusal still names the deployment', () => {
    const { store, submit } = setup();
    submit('j1');
    failJob(store, 'j1', 'boom', iso(T0 + 1));
    // a stricter index than the real one: the insert is refused on jobs.deployment, but no job is active any more
    store.sqlite.exec('CREATE UNIQUE INDEX test_one_job_per_deployment ON jobs(deployment)');
    const err = (() => { try { submit('j2', { by: bob, at: T0 + 50 }); } catch (e) { return e; } })() as DeploymentLockedError;
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect(err.holder).toMatchObject({ jobId: 'unknown', requestedBy: 'unknown', state: 'queued' });
    expect(Date.parse(err.holder.since)).not.toBeNaN();
    expect(err.message).toContain('deployment sales is locked by job unknown');
  });
});

describe('claims and leases', () => {
  it('hands each queued job to exactly one owner, oldest first, and never a job that is not queued', () => {
    const { store, submit, claim, job } = setup();
    submit('j2', { deployment: 'd2', at: T0 + 2 });
    submit('j1', { deployment: 'd1', at: T0 + 1 });
    submit('j3', { deployment: 'd3', at: T0 + 3 });
    suspendJob(store, 'j3', iso(T0 + 4));
    expect(claim('w1', T0 + 10)).toBe('j1'); // no `exclude` given
    expect(claim('w2', T0 + 10)).toBe('j2');
    expect(claim('w3', T0 + 10)).toBeUndefined(); // j3 waits for approval; j1 and j2 are running
    expect(job('j1')).toMatchObject({ state: 'running', leaseOwner: 'w1', leaseExpiresAt: T0 + 1010, startedAt: iso(T0 + 10), updatedAt: iso(T0 + 10) });
    expect(job('j2')).toMatchObject({ state: 'running', leaseOwner: 'w2' });
    // long after the leases expired, a running job is still not claimed again: reclaiming is requeueExpired's job
    expect(claim('w3', T0 + 1_000_000)).toBeUndefined();
  });

  it('a queued job whose lease owner is set but with no expiry is free to claim; exclude skips jobs this process still winds down', () => {
    const { store, submit, claim } = setup();
    submit('j1', { deployment: 'd1', at: T0 + 1 });
    submit('j2', { deployment: 'd2', at: T0 + 2 });
    store.sqlite.prepare("UPDATE jobs SET lease_owner = 'ghost', lease_expires_at = NULL WHERE id = 'j1'").run();
    store.sqlite.prepare("UPDATE jobs SET lease_owner = 'other', lease_expires_at = ? WHERE id = 'j2'").run(T0 + 100);
    expect(claim('me', T0 + 10, 1000, ['j1'])).toBeUndefined(); // j1 excluded, j2 leased by another until T0 + 100
    expect(claim('me', T0 + 99)).toBe('j1');
    expect(claim('me', T0 + 99)).toBeUndefined();
    expect(claim('me', T0 + 100)).toBe('j2'); // its lease ends at T0 + 100
  });

  it('a re-claimed job keeps the start time of its first attempt', () => {
    const { store, submit, claim, job } = setup();
    submit('j1');
    expect(claim('w1', T0 + 10)).toBe('j1');
    expect(requeueExpired(store, 'j1', 'w1', iso(T0 + 2000))).toBe(true);
    expect(claim('w2', T0 + 3000)).toBe('j1');
    expect(job('j1')).toMatchObject({ leaseOwner: 'w2', startedAt: iso(T0 + 10), updatedAt: iso(T0 + 3000), leaseExpiresAt: T0 + 4000 });
  });

  it('renewLease extends only the owner\'s lease of a running job that was not cancelled', () => {
    const { store, submit, claim, job } = setup();
    submit('j1');
    claim('w1', T0);
    expect(renewLease(store, 'j1', 'w1', T0 + 5000)).toBe(true);
    expect(job('j1').leaseExpiresAt).toBe(T0 + 5000);
    expect(renewLease(store, 'j1', 'w2', T0 + 9000)).toBe(false); // another owner
    expect(renewLease(store, 'nope', 'w1', T0 + 9000)).toBe(false);
    expect(job('j1').leaseExpiresAt).toBe(T0 + 5000);
    store.sqlite.prepare("UPDATE jobs SET cancel_requested = 1 WHERE id = 'j1'").run();
    expect(renewLease(store, 'j1', 'w1', T0 + 9000)).toBe(false); // cancelled in another process
    expect(job('j1').leaseExpiresAt).toBe(T0 + 5000);
    store.sqlite.prepare("UPDATE jobs SET cancel_requested = 0, state = 'queued' WHERE id = 'j1'").run();
    expect(renewLease(store, 'j1', 'w1', T0 + 9000)).toBe(false); // no longer running (requeued by someone)
    expect(job('j1').leaseExpiresAt).toBe(T0 + 5000);
  });

  it('leasedJobs lists the leased queued and running jobs, the candidates for reclaiming; requeueExpired only takes them from the owner named', () => {
    const { store, submit, claim, job } = setup();
    submit('run', { deployment: 'd1' });
    submit('q', { deployment: 'd2' });
    submit('free', { deployment: 'd3' });
    submit('wait', { deployment: 'd4' });
    submit('done', { deployment: 'd5' });
    claim('w1', T0, 1000, ['q', 'free', 'wait', 'done']);
    store.sqlite.prepare("UPDATE jobs SET lease_owner = 'w2', lease_expires_at = ? WHERE id IN ('q', 'wait', 'done')").run(T0 + 50);
    store.sqlite.prepare("UPDATE jobs SET state = 'waiting_approval' WHERE id = 'wait'").run();
    store.sqlite.prepare("UPDATE jobs SET state = 'succeeded' WHERE id = 'done'").run();
    expect(leasedJobs(store).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'q', leaseOwner: 'w2', leaseExpiresAt: T0 + 50 },
      { id: 'run', leaseOwner: 'w1', leaseExpiresAt: T0 + 1000 },
    ]);
    // someone else took `run` meanwhile: requeueing it on behalf of a stale owner does nothing
    expect(requeueExpired(store, 'run', 'w2', iso(T0 + 2000))).toBe(false);
    expect(job('run')).toMatchObject({ state: 'running', leaseOwner: 'w1', leaseExpiresAt: T0 + 1000 });
    expect(requeueExpired(store, 'run', 'w1', iso(T0 + 2000))).toBe(true);
    expect(job('run')).toMatchObject({ state: 'queued', leaseOwner: null, leaseExpiresAt: null, updatedAt: iso(T0 + 2000) });
    expect(leasedJobs(store).map((j) => j.id)).toEqual(['q']);
  });

  it('releaseLeases on a clean stop makes only this owner\'s running jobs claimable at once', () => {
    const { store, submit, claim, job } = setup();
    submit('mine', { deployment: 'd1', at: T0 + 1 });
    submit('theirs', { deployment: 'd2', at: T0 + 2 });
    submit('queued', { deployment: 'd3', at: T0 + 3 });
    claim('me', T0, 60_000);
    claim('them', T0, 60_000);
    store.sqlite.prepare("UPDATE jobs SET lease_owner = 'me', lease_expires_at = ? WHERE id = 'queued'").run(T0 + 60_000);
    releaseLeases(store, 'me');
    expect(job('mine').leaseExpiresAt).toBe(0);
    expect(job('theirs').leaseExpiresAt).toBe(T0 + 60_000);
    expect(job('queued').leaseExpiresAt).toBe(T0 + 60_000);
  });
});

describe('job transitions', () => {
  it('complete, fail and suspend write their state and drop the lease; a requeued job can be claimed again', () => {
    const { store, submit, claim, job } = setup();
    for (const [i, id] of ['ok', 'bad', 'wait'].entries()) submit(id, { deployment: `d${i}` });
    claim('w', T0); claim('w', T0); claim('w', T0);
    completeJob(store, 'ok', iso(T0 + 1));
    failJob(store, 'bad', 'step b: boom', iso(T0 + 2));
    suspendJob(store, 'wait', iso(T0 + 3));
    expect(job('ok')).toMatchObject({ state: 'succeeded', finishedAt: iso(T0 + 1), updatedAt: iso(T0 + 1), leaseOwner: null, leaseExpiresAt: null, error: null });
    expect(job('bad')).toMatchObject({ state: 'failed', error: 'step b: boom', finishedAt: iso(T0 + 2), updatedAt: iso(T0 + 2), leaseOwner: null, leaseExpiresAt: null });
    expect(job('wait')).toMatchObject({ state: 'waiting_approval', finishedAt: null, updatedAt: iso(T0 + 3), leaseOwner: null, leaseExpiresAt: null });
    requeueJob(store, 'wait', iso(T0 + 4));
    expect(job('wait')).toMatchObject({ state: 'queued', updatedAt: iso(T0 + 4) });
    expect(claim('w2', T0 + 5)).toBe('wait');
  });

  it('cancel: the job, its running or waiting steps and its pending approvals end; finished steps and decided approvals stay; the deployment is free', () => {
    const { store, audits, audit, submit, steps, setStep, job, claim } = setup();
    submit('j1', { skip: ['d'] });
    claim('w', T0);
    setStep('j1', 'a', 'succeeded');
    setStep('j1', 'b', 'running');
    store.sqlite.exec(`INSERT INTO approvals (id, job_id, step_id, hash, title, facts, changed_keys, diff_text, state, required, policy, requested_at, expires_at) VALUES
      ('apr_p', 'j1', 'b', 'H2', 't', '{}', '[]', '', 'pending', 1, '{}', '${iso(T0)}', '${iso(T0 + 9e6)}'),
      ('apr_a', 'j1', 'a', 'H1', 't', '{}', '[]', '', 'approved', 1, '{}', '${iso(T0)}', '${iso(T0 + 9e6)}')`);
    audits.length = 0;
    cancelJob(store, job('j1'), bob, iso(T0 + 100), audit);
    expect(job('j1')).toMatchObject({ state: 'cancelled', cancelRequested: true, error: 'cancelled by UBOB', finishedAt: iso(T0 + 100), updatedAt: iso(T0 + 100), leaseOwner: null, leaseExpiresAt: null });
    expect(steps('j1').map((s) => [s.id, s.state])).toEqual([['a', 'succeeded'], ['b', 'cancelled'], ['c', 'pending'], ['d', 'skipped']]);
    expect(store.sqlite.prepare("SELECT finished_at AS f FROM job_steps WHERE job_id = 'j1' AND step_id = 'b'").get()).toEqual({ f: iso(T0 + 100) });
    expect(store.sqlite.prepare('SELECT id, state, decided_at AS d FROM approvals ORDER BY id').all()).toEqual([
      { id: 'apr_a', state: 'approved', d: null },
      { id: 'apr_p', state: 'superseded', d: iso(T0 + 100) },
    ]);
    expect(audits).toEqual([{ jobId: 'j1', actor: 'UBOB', action: 'job.cancelled', extra: { result: 'cancelled' } }]);
    // a step waiting for approval is cancelled too
    submit('j2');
    setStep('j2', 'c', 'waiting_approval');
    suspendJob(store, 'j2', iso(T0 + 200));
    cancelJob(store, job('j2'), alice, iso(T0 + 300), () => {});
    expect(steps('j2').map((s) => s.state)).toEqual(['pending', 'pending', 'cancelled', 'pending']);
    expect(() => submit('j3')).not.toThrow();
  });
});

describe('retryJob', () => {
  it('queues a new attempt from the unfinished steps: error, cancel flag, finish time and lease cleared, finished steps kept', () => {
    const { store, audits, audit, submit, steps, setStep, job, claim } = setup();
    submit('j1', { skip: ['d'] });
    claim('w', T0);
    setStep('j1', 'a', 'succeeded');
    setStep('j1', 'b', 'failed', 'boom');
    failJob(store, 'j1', 'boom', iso(T0 + 10));
    retryJob(store, job('j1'), bob, iso(T0 + 20), audit);
    expect(job('j1')).toMatchObject({ state: 'queued', attempt: 2, error: null, cancelRequested: false, finishedAt: null, leaseOwner: null, leaseExpiresAt: null, updatedAt: iso(T0 + 20), startedAt: iso(T0) });
    expect(steps('j1')).toEqual([
      { id: 'a', state: 'succeeded', summary: null, error: null },
      { id: 'b', state: 'pending', summary: null, error: null },
      { id: 'c', state: 'pending', summary: null, error: null },
      { id: 'd', state: 'skipped', summary: 'd not configured', error: null },
    ]);
    expect(audits.at(-1)).toEqual({ jobId: 'j1', actor: 'UBOB', action: 'job.retried', extra: { details: { attempt: 2 } } });
    // the third attempt counts on from the second
    failJob(store, 'j1', 'again', iso(T0 + 30));
    retryJob(store, job('j1'), bob, iso(T0 + 40), () => {});
    expect(job('j1').attempt).toBe(3);
  });

  it('a cancelled job retried runs again: its cancelled and interrupted steps are pending and its lease can be renewed', () => {
    const { store, submit, steps, setStep, job, claim } = setup();
    submit('j1');
    claim('w', T0);
    setStep('j1', 'a', 'succeeded');
    setStep('j1', 'b', 'running');
    cancelJob(store, job('j1'), alice, iso(T0 + 1), () => {});
    // step rows a crash left waiting or running
    setStep('j1', 'c', 'waiting_approval');
    setStep('j1', 'd', 'running');
    retryJob(store, job('j1'), alice, iso(T0 + 2), () => {});
    expect(steps('j1').map((s) => s.state)).toEqual(['succeeded', 'pending', 'pending', 'pending']);
    expect(job('j1')).toMatchObject({ state: 'queued', cancelRequested: false, error: null });
    expect(claim('w2', T0 + 3)).toBe('j1');
    expect(renewLease(store, 'j1', 'w2', T0 + 5000)).toBe(true);
  });

  it('is refused with DeploymentLockedError while another job holds the deployment, and changes nothing', () => {
    const { store, audits, audit, submit, steps, setStep, job } = setup();
    submit('j1');
    setStep('j1', 'a', 'failed', 'boom');
    failJob(store, 'j1', 'boom', iso(T0 + 1));
    submit('j2', { by: bob, at: T0 + 2 });
    suspendJob(store, 'j2', iso(T0 + 3));
    audits.length = 0;
    let err: unknown;
    try { retryJob(store, job('j1'), alice, iso(T0 + 4), audit); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DeploymentLockedError);
    expect((err as DeploymentLockedError).holder).toEqual({ jobId: 'j2', requestedBy: 'UBOB', since: iso(T0 + 2), state: 'waiting_approval' });
    expect(job('j1')).toMatchObject({ state: 'failed', attempt: 1, error: 'boom', finishedAt: iso(T0 + 1) });
    expect(steps('j1')[0]).toMatchObject({ state: 'failed', error: 'boom' });
    expect(audits).toEqual([]);
    // the holder cancelled: the retry goes through
    cancelJob(store, job('j2'), bob, iso(T0 + 5), () => {});
    retryJob(store, job('j1'), alice, iso(T0 + 6), () => {});
    expect(job('j1')).toMatchObject({ state: 'queued', attempt: 2 });
  });
});

