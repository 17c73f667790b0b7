import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAirflowClient, flattenLogContent, normaliseAirflowBaseUrl } from '../../src/infra/airflow.ts';
import { MASK } from '../../src/redact.ts';
import { expectRedactedFailure } from '../support/redacted.ts';

const TOKEN = 'astro-api-token-Zq8v1Lr4Pw9Kd2Nm';
const HOST = 'https://cluster-x.astronomer.run';
const BASE = '/d1234567/api/v2';

function client(timeoutMs = 2_000) {
  // as Astro gives it: no scheme, already ending in /api/v2
  return createAirflowClient({ baseUrl: 'cluster-x.astronomer.run/d1234567/api/v2', token: TOKEN, timeoutMs });
}

function api() {
  return nock(HOST, { reqheaders: { authorization: `Bearer ${TOKEN}` } });
}

const runBody = (state: string) => ({
  dag_run_id: 'manual__2026-11-24T09:30:00+00:00',
  dag_id: 're_smoke_test',
  logical_date: null,
  state,
  run_type: 'manual',
  conf: { from: 're-bot' },
});

const failure = (p: Promise<unknown>, serverEchoedToken = false) => expectRedactedFailure(p, [TOKEN, 'Zq8v1Lr4Pw9Kd2Nm'], serverEchoedToken);

beforeAll(() => nock.disableNetConnect());
afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending, 'every expected request was made').toEqual([]);
});
afterAll(() => nock.enableNetConnect());

describe('normaliseAirflowBaseUrl', () => {
  it('accepts the URL with or without /api/v2, a trailing slash, or a scheme', () => {
    for (const input of [
      'https://cluster-x.astronomer.run/d1234567/api/v2',
      'https://cluster-x.astronomer.run/d1234567/api/v2/',
      'https://cluster-x.astronomer.run/d1234567',
      'https://cluster-x.astronomer.run/d1234567/',
      'cluster-x.astronomer.run/d1234567/api/v2',
    ]) {
      expect(normaliseAirflowBaseUrl(input)).toBe('https://cluster-x.astronomer.run/d1234567');
    }
    expect(normaliseAirflowBaseUrl('http://127.0.0.1:8080/api/v2')).toBe('http://127.0.0.1:8080');
  });

  it('rejects URLs that cannot be an Airflow API, saying what was expected', () => {
    expect(() => normaliseAirflowBaseUrl('')).toThrow(/empty.*expected/);
    expect(() => normaliseAirflowBaseUrl('ftp://x/api/v2')).toThrow(/http or https/);
    expect(() => normaliseAirflowBaseUrl('https://user:pw@x/api/v2')).toThrow(/credentials/);
  });
});

describe('Airflow client: success paths send exactly what Airflow 3 expects', () => {
  it('unpauses with PATCH /dags/{id} {"is_paused": false}', async () => {
    let seen: unknown;
    api()
      .patch(`${BASE}/dags/re_smoke_test`, (b) => ((seen = b), true))
      .reply(200, { dag_id: 're_smoke_test', is_paused: false, dag_display_name: 're_smoke_test' });
    await client().unpauseDag('re_smoke_test');
    expect(seen).toEqual({ is_paused: false });
  });

  it('triggers with logical_date: null (present, not omitted) and the conf, and returns the run id', async () => {
    let raw = '';
    api()
      .matchHeader('content-type', 'application/json')
      .post(`${BASE}/dags/re_smoke_test/dagRuns`, (b) => ((raw = JSON.stringify(b)), true))
      .reply(200, runBody('queued'));
    const run = await client().triggerDagRun('re_smoke_test', { from: 're-bot' });
    expect(JSON.parse(raw)).toEqual({ logical_date: null, conf: { from: 're-bot' } });
    expect(raw).toContain('"logical_date":null');
    expect(run).toEqual({ dagId: 're_smoke_test', dagRunId: 'manual__2026-11-24T09:30:00+00:00', state: 'queued' });
  });

  it('sends an empty conf object when none is given', async () => {
    let seen: unknown;
    api().post(`${BASE}/dags/d/dagRuns`, (b) => ((seen = b), true)).reply(200, { ...runBody('queued'), dag_id: 'd' });
    await client().triggerDagRun('d');
    expect(seen).toEqual({ logical_date: null, conf: {} });
  });

  it('URL-encodes DAG ids, run ids and task ids in the path', async () => {
    const runId = 'manual__2026-11-24T09:30:00+00:00';
    api()
      .get(`${BASE}/dags/team%2Fetl%20dag/dagRuns/${encodeURIComponent(runId)}`)
      .reply(200, { ...runBody('running'), dag_id: 'team/etl dag' });
    const run = await client().getDagRun('team/etl dag', runId);
    expect(run.state).toBe('running');
  });

  it('lists task instances with their state and try number', async () => {
    const runId = 'manual__2026-11-24T09:30:00+00:00';
    api()
      .get(`${BASE}/dags/re_smoke_test/dagRuns/${encodeURIComponent(runId)}/taskInstances`)
      .query({ limit: '100' })
      .reply(200, {
        task_instances: [
          { task_id: 'read_variable', state: 'success', try_number: 1, map_index: -1, dag_id: 're_smoke_test' },
          { task_id: 'push_xcom', state: null, try_number: 0, map_index: -1, dag_id: 're_smoke_test' },
        ],
        total_entries: 2,
      });
    expect(await client().listTaskInstances('re_smoke_test', runId)).toEqual([
      { taskId: 'read_variable', state: 'success', tryNumber: 1 },
      { taskId: 'push_xcom', state: null, tryNumber: 0 },
    ]);
  });

  it('reads a task log with full_content=true and flattens structured records into text', async () => {
    const runId = 'manual__2026-11-24T09:30:00+00:00';
    api()
      .get(`${BASE}/dags/re_smoke_test/dagRuns/${encodeURIComponent(runId)}/taskInstances/read_variable/logs/2`)
      .query({ full_content: 'true' })
      .reply(200, {
        content: [
          { event: '::group::Log message source details', sources: ['/logs/attempt=2.log'] },
          { event: '::endgroup::' },
          { timestamp: '2026-11-24T09:30:01.000000Z', level: 'info', event: 'Variable read through the secrets backend', logger: 'airflow.task' },
          {
            timestamp: '2026-11-24T09:30:02.000000Z',
            level: 'error',
            event: 'Task failed with exception',
            error_detail: [{ exc_type: 'KeyError', exc_value: "'smoke_var'" }],
          },
        ],
        continuation_token: null,
      });
    const text = await client().taskLog('re_smoke_test', runId, 'read_variable', 2);
    expect(text).toBe(
      [
        '2026-11-24T09:30:01.000000Z [info] airflow.task - Variable read through the secrets backend',
        '2026-11-24T09:30:02.000000Z [error] Task failed with exception',
        "  KeyError: 'smoke_var'",
      ].join('\n'),
    );
  });

  it('reads a log whose content is plain lines (Airflow falls back to strings when parsing fails)', async () => {
    api()
      .get(`${BASE}/dags/d/dagRuns/r/taskInstances/t/logs/1`)
      .query(true)
      .reply(200, { content: ['line one', 'line two'], continuation_token: null });
    expect(await client().taskLog('d', 'r', 't', 1)).toBe('line one\nline two');
  });

  it('redacts secrets that a task printed into its log', async () => {
    api()
      .get(`${BASE}/dags/d/dagRuns/r/taskInstances/t/logs/1`)
      .query(true)
      .reply(200, { content: [{ event: `connecting with password=hunter2hunter2 and ${TOKEN}` }], continuation_token: null });
    const text = await client().taskLog('d', 'r', 't', 1);
    expect(text).not.toContain('hunter2hunter2');
    expect(text).not.toContain(TOKEN);
  });

  it('refuses try number 0 before calling Airflow (the task has not run yet)', async () => {
    const e = await failure(client().taskLog('d', 'r', 't', 0));
    expect(e.message).toMatch(/tryNumber.*>= 1/);
  });
});

describe('Airflow client: HTTP errors become clear messages', () => {
  it('401: token rejected', async () => {
    nock(HOST).post(`${BASE}/dags/d/dagRuns`).reply(401, { detail: 'Invalid JWT token' });
    const e = await failure(client().triggerDagRun('d'));
    expect(e.code).toBe('unauthorized');
    expect(e.message).toMatch(/cluster-x\.astronomer\.run rejected the token while triggering DAG "d" \(HTTP 401: Invalid JWT token\): token rejected/);
  });

  it('401 whose body echoes the token does not leak it', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).reply(401, { detail: `token ${TOKEN} is expired` });
    const e = await failure(client().getDagRun('d', 'r'), true);
    expect(e.message).toContain('HTTP 401');
    expect(e.message).toContain(MASK);
  });

  it('403: permission missing', async () => {
    nock(HOST).patch(`${BASE}/dags/d`).reply(403, { detail: 'Forbidden' });
    const e = await failure(client().unpauseDag('d'));
    expect(e.code).toBe('forbidden');
    expect(e.message).toMatch(/refused unpausing DAG "d" \(HTTP 403: Forbidden\): token rejected for this operation/);
  });

  it('404: names the DAG that is missing', async () => {
    nock(HOST).post(`${BASE}/dags/re_smoke_test/dagRuns`).reply(404, { detail: 'The Dag with ID: `re_smoke_test` was not found' });
    const e = await failure(client().triggerDagRun('re_smoke_test'));
    expect(e.code).toBe('not_found');
    expect(e.message).toBe(
      'DAG "re_smoke_test" was not found on Airflow at cluster-x.astronomer.run (HTTP 404: The Dag with ID: `re_smoke_test` was not found); ' +
        'check the DAG id and that the DAG file has been deployed and parsed without import errors',
    );
  });

  it('404 on a run names the run', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/manual__x`).reply(404, { detail: 'not found' });
    const e = await failure(client().getDagRun('d', 'manual__x'));
    expect(e.message).toMatch(/DAG run "manual__x" of DAG "d" was not found/);
  });

  it('409: conflict with the server detail', async () => {
    nock(HOST).post(`${BASE}/dags/d/dagRuns`).reply(409, { detail: 'DAG Run with run_id: `x` already exists' });
    const e = await failure(client().triggerDagRun('d'));
    expect(e.code).toBe('conflict');
    expect(e.message).toMatch(/conflict while triggering DAG "d" \(HTTP 409: DAG Run with run_id: `x` already exists\)/);
  });

  it('422: shows each validation issue with its field path', async () => {
    nock(HOST)
      .post(`${BASE}/dags/d/dagRuns`)
      .reply(422, {
        detail: [
          { type: 'missing', loc: ['body', 'logical_date'], msg: 'Field required', input: {} },
          { type: 'extra_forbidden', loc: ['body', 'execution_date'], msg: 'Extra inputs are not permitted' },
        ],
      });
    const e = await failure(client().triggerDagRun('d'));
    expect(e.code).toBe('invalid_request');
    expect(e.message).toContain('HTTP 422: body.logical_date: Field required; body.execution_date: Extra inputs are not permitted');
  });

  it('500 and 503: server-side problem, retry later', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).reply(500, 'Internal Server Error');
    let e = await failure(client().getDagRun('d', 'r'));
    expect(e.code).toBe('server_error');
    expect(e.message).toMatch(/failed while reading run "r" of DAG "d" \(HTTP 500: Internal Server Error\); a server-side problem/);
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).reply(503, '<html><head><style>p{}</style></head><body><h1>503</h1>\n<p>upstream unavailable</p></body></html>');
    e = await failure(client().getDagRun('d', 'r'));
    expect(e.message).toContain('(HTTP 503: 503 upstream unavailable); a server-side problem');
  });

  it('times out with "no answer from <host> within Ns" when the answer is slower than timeoutMs', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).delay(3_000).reply(200, runBody('running'));
    const started = Date.now();
    const e = await failure(client(300).getDagRun('d', 'r'));
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(e.code).toBe('timeout');
    expect(e.message).toMatch(/no answer from cluster-x\.astronomer\.run within 0\.3s/);
  });

  it('a per-call timeoutMs overrides the client default', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).delay(2_000).reply(200, runBody('running'));
    const e = await failure(client(10_000).getDagRun('d', 'r', { timeoutMs: 200 }));
    expect(e.message).toMatch(/within 0\.2s/);
  });

  it("the caller's AbortSignal cancels the call and says so", async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).delay(3_000).reply(200, runBody('running'));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const e = await failure(client(10_000).getDagRun('d', 'r', { signal: ac.signal }));
    expect(e.code).toBe('cancelled');
    expect(e.message).toMatch(/cancelled/);
  });

  it('a body that is not JSON is a clear error, not a crash', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r`).reply(200, '<html>login page</html>', { 'content-type': 'text/html' });
    const e = await failure(client().getDagRun('d', 'r'));
    expect(e.code).toBe('bad_response');
    expect(e.message).toMatch(/HTTP 200 but the body is not JSON \(text\/html\): <html>login page/);
  });

  it('JSON of the wrong shape names the field that is wrong', async () => {
    nock(HOST).post(`${BASE}/dags/d/dagRuns`).reply(200, { dag_id: 'd', state: 42 });
    const e = await failure(client().triggerDagRun('d'));
    expect(e.code).toBe('bad_response');
    expect(e.message).toMatch(/unexpected body: dag_run_id: .*; state: /);
  });

  it('a task instance list of the wrong shape is rejected with the path', async () => {
    nock(HOST).get(`${BASE}/dags/d/dagRuns/r/taskInstances`).query(true).reply(200, { task_instances: [{ task_id: 't' }], total_entries: 1 });
    const e = await failure(client().listTaskInstances('d', 'r'));
    expect(e.message).toMatch(/task_instances\.0\.state/);
  });
});

describe('flattenLogContent', () => {
  it('keeps extra structured fields as key=value', () => {
    expect(flattenLogContent([{ event: 'done', level: 'info', task_id: 't1', rows: 3 }])).toBe('[info] done task_id=t1 rows=3');
  });
});
