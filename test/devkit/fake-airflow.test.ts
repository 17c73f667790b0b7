import { afterEach, describe, expect, it } from 'vitest';
import { startFakeAirflow, type FakeAirflow } from '../../src/devkit/fake-airflow.ts';
import { startFakeAstro, type FakeAstro } from '../../src/devkit/fake-astro.ts';
import { createAirflowClient } from '../../src/infra/airflow.ts';
import { createAstroClient } from '../../src/infra/astro.ts';
import type { AirflowClient } from '../../src/infra/types.ts';

const TOKEN = 'fake-airflow-token-0123456789';
const running: Array<FakeAirflow | FakeAstro> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

async function airflow(dags: Parameters<typeof startFakeAirflow>[0]['dags']) {
  const fake = await startFakeAirflow({ token: TOKEN, dags, queuedMs: 50 });
  running.push(fake);
  return { fake, client: createAirflowClient({ baseUrl: fake.apiUrl, token: TOKEN, timeoutMs: 2_000 }) };
}

async function waitForEnd(client: AirflowClient, dagId: string, runId: string, seen: string[], limitMs = 5_000) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const { state } = await client.getDagRun(dagId, runId);
    if (seen.at(-1) !== state) seen.push(state);
    if (state === 'success' || state === 'failed') return state;
    if (Date.now() > deadline) throw new Error(`run still ${state} after ${limitMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fake Airflow through the real Airflow client', () => {
  it('a successful smoke run: queued while paused, then running, then success, with task logs', async () => {
    const { fake, client } = await airflow({ re_smoke_test: { tasks: ['read_variable', 'push_xcom', 'pull_xcom'], outcome: 'success', durationMs: 600 } });
    expect(fake.isPaused('re_smoke_test')).toBe(true);

    const run = await client.triggerDagRun('re_smoke_test', { source: 're-bot' });
    expect(run.dagRunId).toMatch(/^manual__\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
    expect(run.state).toBe('queued');

    // like Airflow: a run of a paused DAG does not start
    await new Promise((r) => setTimeout(r, 450));
    expect((await client.getDagRun('re_smoke_test', run.dagRunId)).state).toBe('queued');
    expect((await client.listTaskInstances('re_smoke_test', run.dagRunId)).every((t) => t.state === null && t.tryNumber === 0)).toBe(true);

    await client.unpauseDag('re_smoke_test');
    expect(fake.isPaused('re_smoke_test')).toBe(false);
    const seen: string[] = [];
    expect(await waitForEnd(client, 're_smoke_test', run.dagRunId, seen)).toBe('success');
    expect(seen).toContain('running');

    const tis = await client.listTaskInstances('re_smoke_test', run.dagRunId);
    expect(tis).toEqual([
      { taskId: 'read_variable', state: 'success', tryNumber: 1 },
      { taskId: 'push_xcom', state: 'success', tryNumber: 1 },
      { taskId: 'pull_xcom', state: 'success', tryNumber: 1 },
    ]);
    const log = await client.taskLog('re_smoke_test', run.dagRunId, 'push_xcom', 1);
    expect(log).toMatch(/\[info\] airflow\.task - Running task push_xcom on a remote execution agent/);
    expect(log).toMatch(/Task instance finished with state success/);

    const trigger = fake.requests.find((r) => r.method === 'POST');
    expect(trigger?.body).toEqual({ logical_date: null, conf: { source: 're-bot' } });
    expect(trigger?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('a trigger with a run id is idempotent: the same id again is a conflict, and the first run goes on', async () => {
    const { client } = await airflow({ smoke: { tasks: ['a'], outcome: 'success', durationMs: 100, paused: false } });
    const run = await client.triggerDagRun('smoke', {}, { dagRunId: 're-bot__job_1__1' });
    expect(run.dagRunId).toBe('re-bot__job_1__1');
    await expect(client.triggerDagRun('smoke', {}, { dagRunId: 're-bot__job_1__1' })).rejects.toMatchObject({ code: 'conflict' });
    expect(await waitForEnd(client, 'smoke', 're-bot__job_1__1', [])).toBe('success');
  });

  it('a failing run ends failed; the failing task log carries the exception and later tasks are upstream_failed', async () => {
    const { client } = await airflow({ smoke: { tasks: ['a', 'b', 'c'], outcome: 'failed', failTask: 'b', durationMs: 240, paused: false } });
    const run = await client.triggerDagRun('smoke');
    expect(await waitForEnd(client, 'smoke', run.dagRunId, [])).toBe('failed');
    expect(await client.listTaskInstances('smoke', run.dagRunId)).toEqual([
      { taskId: 'a', state: 'success', tryNumber: 1 },
      { taskId: 'b', state: 'failed', tryNumber: 1 },
      { taskId: 'c', state: 'upstream_failed', tryNumber: 0 },
    ]);
    expect(await client.taskLog('smoke', run.dagRunId, 'b', 1)).toMatch(/\[error\] task - Task failed with exception\n {2}RuntimeError: smoke test task b failed on purpose/);
    await expect(client.taskLog('smoke', run.dagRunId, 'c', 1)).rejects.toThrow(/no log for task "c" try 1 .*HTTP 404: TaskInstance not found/);
  });

  it('rejects a wrong bearer token with 401, which the client reports as token rejected', async () => {
    const { fake } = await airflow({ d: { tasks: ['t'], outcome: 'success', durationMs: 10 } });
    const wrong = createAirflowClient({ baseUrl: fake.url, token: 'not-the-right-token-123' });
    await expect(wrong.triggerDagRun('d')).rejects.toThrow(/rejected the token while triggering DAG "d" \(HTTP 401: Invalid JWT token\)/);
  });

  it('once stopped, the client reports the connection as refused (not a crash, not a hang)', async () => {
    const { fake, client } = await airflow({ d: { tasks: ['t'], outcome: 'success', durationMs: 10 } });
    await fake.stop();
    await expect(client.getDagRun('d', 'r')).rejects.toMatchObject({
      code: 'unreachable',
      message: expect.stringMatching(/^Airflow API \(reading run "r" of DAG "d"\): connection refused by 127\.0\.0\.1:\d+/),
    });
  });

  it('an unknown DAG is a 404 naming the DAG', async () => {
    const { client } = await airflow({ d: { tasks: ['t'], outcome: 'success', durationMs: 10 } });
    await expect(client.triggerDagRun('nope')).rejects.toThrow(/^DAG "nope" was not found on Airflow at 127\.0\.0\.1:\d+ \(HTTP 404: The Dag with ID: `nope` was not found\); check the DAG id/);
    await expect(client.getDagRun('d', 'manual__missing')).rejects.toThrow(/DAG run "manual__missing" of DAG "d" was not found/);
  });

  it('enforces Airflow 3 trigger validation: logical_date must be present; extra fields are refused', async () => {
    const { fake } = await airflow({ d: { tasks: ['t'], outcome: 'success', durationMs: 10 } });
    const post = (body: unknown) =>
      fetch(`${fake.apiUrl}/dags/d/dagRuns`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const missing = await post({ conf: {} });
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ detail: [{ type: 'missing', loc: ['body', 'logical_date'], msg: 'Field required' }] });
    const legacy = await post({ logical_date: null, execution_date: '2026-01-01T00:00:00Z' });
    expect(legacy.status).toBe(422);
    const ok = await post({ logical_date: null, dag_run_id: 'fixed' });
    expect(ok.status).toBe(200);
    const dup = await post({ logical_date: null, dag_run_id: 'fixed' });
    expect(dup.status).toBe(409);
  });
});

describe('fake Astro through the real Astro client', () => {
  it('serves a deployment whose Airflow API URL points at the fake Airflow, end to end', async () => {
    const { fake: af } = await airflow({ re_smoke_test: { tasks: ['t'], outcome: 'success', durationMs: 60, paused: false } });
    const astro = await startFakeAstro({
      token: 'astro-token-abcdef123456',
      deployments: [
        {
          organizationId: 'org1',
          id: 'cldep0000000d1234567',
          webServerAirflowApiUrl: af.apiUrl,
          remoteExecution: { enabled: true, remoteApiUrl: 'https://cluster.external.astronomer.run/d1234567', allowedIpAddressRanges: [] },
        },
      ],
    });
    running.push(astro);
    const client = createAstroClient({ baseUrl: astro.url, token: 'astro-token-abcdef123456' });
    const dep = await client.getDeployment('org1', 'cldep0000000d1234567');
    expect(dep).toMatchObject({
      id: 'cldep0000000d1234567',
      name: 'deployment-1234567',
      runtimeVersion: '3.1-2',
      remoteExecution: { enabled: true, remoteApiUrl: 'https://cluster.external.astronomer.run/d1234567', allowedIpAddressRanges: [] },
    });
    const airflowClient = createAirflowClient({ baseUrl: dep.webServerAirflowApiUrl!, token: TOKEN });
    const run = await airflowClient.triggerDagRun('re_smoke_test');
    expect(await waitForEnd(airflowClient, 're_smoke_test', run.dagRunId, [])).toBe('success');
  });

  it('401 for a wrong token, 404 for an unknown deployment, 403 for another organization', async () => {
    const astro = await startFakeAstro({ token: 'astro-token-abcdef123456', deployments: [{ organizationId: 'org1', id: 'dep1' }] });
    running.push(astro);
    const good = createAstroClient({ baseUrl: astro.url, token: 'astro-token-abcdef123456' });
    await expect(createAstroClient({ baseUrl: astro.url, token: 'wrong-token-xyz789' }).getDeployment('org1', 'dep1')).rejects.toThrow(
      /Deployment API token invalid or lacks access \(HTTP 401/,
    );
    await expect(good.getDeployment('org1', 'dep2')).rejects.toThrow(/Deployment "dep2" not found in organization "org1"/);
    await expect(good.getDeployment('org2', 'dep1')).rejects.toThrow(/lacks access to Deployment "dep1" in organization "org2" \(HTTP 403/);
  });
});
