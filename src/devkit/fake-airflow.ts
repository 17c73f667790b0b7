/**
 * A local stand-in for an Astro Deployment's Airflow 3 REST API (v2), for `npm run demo` and e2e tests.
 * Real HTTP on 127.0.0.1 (ephemeral port). Implements only what the bot calls: get/patch a DAG, trigger
 * and read a DAG run, list its task instances, read a task log. Bodies follow Airflow 3's datamodels.
 *
 * Time drives state: a triggered run is `queued` (and stays queued while its DAG is paused, like Airflow),
 * then its tasks run one after another over `durationMs`, then the run ends `success` or `failed`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeDag {
  tasks: string[];
  outcome: 'success' | 'failed';
  /** wall time from start to end of a run, split evenly across tasks */
  durationMs: number;
  /** Airflow creates DAGs paused; default true */
  paused?: boolean;
  /** with outcome 'failed': the task that fails (default: the last one); later tasks end upstream_failed */
  failTask?: string;
}

export interface FakeAirflowOptions {
  token: string;
  dags: Record<string, FakeDag>;
  /** time a run spends queued before its first task starts; default min(200, durationMs / 5) */
  queuedMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
  /** the HTTP status answered (set when the answer is sent) */
  status?: number;
}

export interface FakeAirflow {
  /** root URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** the same with `/api/v2`, as Astro's `webServerAirflowApiUrl` would give it */
  apiUrl: string;
  port: number;
  /** every request received, in order (authorization header included: tests assert on it) */
  requests: RecordedRequest[];
  isPaused(dagId: string): boolean;
  stop(): Promise<void>;
}

interface Run {
  dagId: string;
  runId: string;
  conf: Record<string, unknown>;
  createdAt: number;
  /** when the scheduler picked it up (unpause time if it was created paused) */
  startAt: number | null;
}

type TaskState = null | 'scheduled' | 'queued' | 'running' | 'success' | 'failed' | 'upstream_failed';

class HttpError extends Error {
  constructor(readonly status: number, readonly detail: unknown) {
    super(typeof detail === 'string' ? detail : 'error');
  }
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function startFakeAirflow(options: FakeAirflowOptions): Promise<FakeAirflow> {
  const dags = new Map(Object.entries(options.dags).map(([id, d]) => [id, { ...d, paused: d.paused ?? true }]));
  const runs = new Map<string, Run>();
  const requests: RecordedRequest[] = [];
  const key = (dagId: string, runId: string) => `${dagId}\u0000${runId}`;

  const dagOf = (dagId: string) => {
    const dag = dags.get(dagId);
    if (!dag) throw new HttpError(404, `The Dag with ID: \`${dagId}\` was not found`);
    return dag;
  };
  const runOf = (dagId: string, runId: string) => {
    dagOf(dagId);
    const run = runs.get(key(dagId, runId));
    if (!run) throw new HttpError(404, `The DagRun with dag_id: \`${dagId}\` and run_id: \`${runId}\` was not found`);
    return run;
  };
  const queuedMs = (dag: FakeDag) => options.queuedMs ?? Math.min(200, dag.durationMs / 5);

  function taskTimeline(run: Run, now: number) {
    const dag = dagOf(run.dagId);
    const slot = dag.durationMs / Math.max(1, dag.tasks.length);
    const failAt = dag.outcome === 'failed' ? Math.max(0, dag.tasks.indexOf(dag.failTask ?? dag.tasks.at(-1)!)) : -1;
    const begin = run.startAt === null ? null : run.startAt + queuedMs(dag);
    return dag.tasks.map((taskId, i) => {
      const start = begin === null ? null : begin + i * slot;
      const end = start === null ? null : start + slot;
      let state: TaskState = null;
      if (failAt >= 0 && i > failAt) {
        state = end !== null && now >= begin! + (failAt + 1) * slot ? 'upstream_failed' : null;
      } else if (start !== null && end !== null) {
        if (now >= end) state = i === failAt ? 'failed' : 'success';
        else if (now >= start) state = 'running';
        else if (now >= start - slot) state = 'scheduled';
      }
      const ran = state === 'running' || state === 'success' || state === 'failed';
      return { taskId, state, start: ran ? start : null, end: state === 'success' || state === 'failed' ? end : null, tryNumber: ran ? 1 : 0 };
    });
  }

  function runState(run: Run, now: number): string {
    const tasks = taskTimeline(run, now);
    if (run.startAt === null || tasks.every((t) => t.state === null || t.state === 'scheduled')) {
      if (run.startAt !== null && now >= run.startAt + queuedMs(dagOf(run.dagId))) return 'running';
      return 'queued';
    }
    const done = tasks.every((t) => t.state === 'success' || t.state === 'failed' || t.state === 'upstream_failed');
    if (!done) return 'running';
    return tasks.some((t) => t.state === 'failed') ? 'failed' : 'success';
  }

  function runBody(run: Run, now: number) {
    const state = runState(run, now);
    const tasks = taskTimeline(run, now);
    const ends = tasks.map((t) => t.end).filter((e): e is number => e !== null);
    const end = state === 'success' || state === 'failed' ? Math.max(...ends) : null;
    const start = run.startAt === null ? null : run.startAt + queuedMs(dagOf(run.dagId));
    return {
      dag_run_id: run.runId,
      dag_id: run.dagId,
      logical_date: null,
      queued_at: iso(run.createdAt),
      start_date: state === 'queued' ? null : iso(start),
      end_date: iso(end),
      duration: end !== null && start !== null ? (end - start) / 1000 : null,
      data_interval_start: null,
      data_interval_end: null,
      run_after: iso(run.createdAt),
      last_scheduling_decision: iso(now),
      run_type: 'manual',
      state,
      triggered_by: 'rest_api',
      triggering_user_name: 'api-token',
      conf: run.conf,
      note: null,
      dag_versions: [],
      bundle_version: null,
      dag_display_name: run.dagId,
    };
  }

  function dagBody(dagId: string) {
    const dag = dagOf(dagId);
    return {
      dag_id: dagId,
      dag_display_name: dagId,
      is_paused: dag.paused,
      is_stale: false,
      fileloc: `/usr/local/airflow/dags/${dagId}.py`,
      bundle_name: 'dags-folder',
      owners: ['re-bot'],
      tags: [],
      max_active_runs: 16,
      has_import_errors: false,
    };
  }

  function logRecords(run: Run, t: ReturnType<typeof taskTimeline>[number]) {
    const ts = (ms: number) => new Date(ms).toISOString();
    const start = t.start!;
    const records: Array<Record<string, unknown>> = [
      { event: '::group::Log message source details', sources: [`/usr/local/airflow/logs/dag_id=${run.dagId}/run_id=${run.runId}/task_id=${t.taskId}/attempt=1.log`] },
      { event: '::endgroup::' },
      { timestamp: ts(start), level: 'info', event: 'DAG bundles loaded: dags-folder', logger: 'airflow.dag_processing.bundles.manager.DagBundlesManager' },
      { timestamp: ts(start + 1), level: 'info', event: `Filling up the DagBag from /usr/local/airflow/dags/${run.dagId}.py`, logger: 'airflow.models.dagbag.DagBag' },
      { timestamp: ts(start + 2), level: 'info', event: `Running task ${t.taskId} on a remote execution agent`, logger: 'airflow.task' },
    ];
    if (t.state === 'failed') {
      records.push({
        timestamp: ts(t.end!),
        level: 'error',
        event: 'Task failed with exception',
        logger: 'task',
        error_detail: [{ exc_type: 'RuntimeError', exc_value: `smoke test task ${t.taskId} failed on purpose (fake Airflow outcome: failed)` }],
      });
    } else if (t.state === 'success') {
      records.push({ timestamp: ts(t.end!), level: 'info', event: 'Task instance finished with state success', logger: 'airflow.task', task_id: t.taskId });
    }
    return records;
  }

  function tiBody(run: Run, t: ReturnType<typeof taskTimeline>[number], i: number) {
    return {
      id: `0190${String(i).padStart(4, '0')}-fake-${Buffer.from(key(run.dagId, run.runId) + t.taskId).toString('hex').slice(0, 12)}`,
      task_id: t.taskId,
      dag_id: run.dagId,
      dag_run_id: run.runId,
      map_index: -1,
      logical_date: null,
      run_after: iso(run.createdAt),
      start_date: iso(t.start),
      end_date: iso(t.end),
      duration: t.start !== null && t.end !== null ? (t.end - t.start) / 1000 : null,
      state: t.state,
      try_number: t.tryNumber,
      max_tries: 0,
      task_display_name: t.taskId,
      dag_display_name: run.dagId,
      hostname: t.tryNumber ? 'astro-agent-worker-default-0' : null,
      unixname: 'astro',
      pool: 'default_pool',
      pool_slots: 1,
      queue: 'default',
      priority_weight: 1,
      operator: 'PythonOperator',
      operator_name: 'PythonOperator',
      queued_when: null,
      scheduled_when: null,
      pid: null,
      executor: 'AstroExecutor',
      executor_config: '{}',
      note: null,
      rendered_map_index: null,
      rendered_fields: {},
      trigger: null,
      triggerer_job: null,
      dag_version: null,
    };
  }

  function validateTrigger(body: unknown): { runId?: string; conf: Record<string, unknown> } {
    const issues: Array<{ type: string; loc: string[]; msg: string; input?: unknown }> = [];
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new HttpError(422, [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: body }]);
    }
    const b = body as Record<string, unknown>;
    const allowed = new Set(['dag_run_id', 'data_interval_start', 'data_interval_end', 'logical_date', 'run_after', 'conf', 'note']);
    for (const k of Object.keys(b)) if (!allowed.has(k)) issues.push({ type: 'extra_forbidden', loc: ['body', k], msg: 'Extra inputs are not permitted', input: b[k] });
    if (!('logical_date' in b)) issues.push({ type: 'missing', loc: ['body', 'logical_date'], msg: 'Field required', input: b });
    else if (b.logical_date !== null && (typeof b.logical_date !== 'string' || Number.isNaN(Date.parse(b.logical_date)))) {
      issues.push({ type: 'datetime_from_date_parsing', loc: ['body', 'logical_date'], msg: 'Input should be a valid datetime or date', input: b.logical_date });
    }
    if (b.conf !== undefined && b.conf !== null && (typeof b.conf !== 'object' || Array.isArray(b.conf))) {
      issues.push({ type: 'dict_type', loc: ['body', 'conf'], msg: 'Input should be a valid dictionary', input: b.conf });
    }
    if (b.dag_run_id !== undefined && b.dag_run_id !== null && typeof b.dag_run_id !== 'string') {
      issues.push({ type: 'string_type', loc: ['body', 'dag_run_id'], msg: 'Input should be a valid string', input: b.dag_run_id });
    }
    if (issues.length) throw new HttpError(422, issues);
    return { runId: (b.dag_run_id as string | undefined) ?? undefined, conf: (b.conf as Record<string, unknown> | null) ?? {} };
  }

  function route(method: string, parts: string[], query: URLSearchParams, body: unknown): [number, unknown] {
    const now = Date.now();
    const [api, version, dagsSeg, dagId, sub, runId, tiSeg, taskId, logsSeg, tryStr, ...rest] = parts;
    if (api !== 'api' || version !== 'v2' || dagsSeg !== 'dags' || dagId === undefined || rest.length) throw new HttpError(404, 'Not Found');

    if (sub === undefined) {
      if (method === 'GET') return [200, dagBody(dagId)];
      if (method === 'PATCH') {
        const dag = dagOf(dagId);
        const b = body as Record<string, unknown> | null;
        if (!b || typeof b !== 'object' || typeof b.is_paused !== 'boolean') {
          throw new HttpError(422, [{ type: 'bool_type', loc: ['body', 'is_paused'], msg: 'Input should be a valid boolean', input: b?.is_paused }]);
        }
        if (dag.paused && !b.is_paused) {
          for (const run of runs.values()) if (run.dagId === dagId && run.startAt === null) run.startAt = now;
        }
        dag.paused = b.is_paused;
        return [200, dagBody(dagId)];
      }
      throw new HttpError(405, 'Method Not Allowed');
    }
    if (sub !== 'dagRuns') throw new HttpError(404, 'Not Found');

    if (runId === undefined) {
      if (method !== 'POST') throw new HttpError(405, 'Method Not Allowed');
      const dag = dagOf(dagId);
      const input = validateTrigger(body);
      const id = input.runId ?? `manual__${new Date(now).toISOString().replace('Z', '+00:00')}`;
      if (runs.has(key(dagId, id))) throw new HttpError(409, `DAG Run with run_id: \`${id}\` already exists for DAG: \`${dagId}\``);
      const run: Run = { dagId, runId: id, conf: input.conf, createdAt: now, startAt: dag.paused ? null : now };
      runs.set(key(dagId, id), run);
      return [200, runBody(run, now)];
    }
    const run = runOf(dagId, runId);
    if (tiSeg === undefined) {
      if (method !== 'GET') throw new HttpError(405, 'Method Not Allowed');
      return [200, runBody(run, now)];
    }
    if (tiSeg !== 'taskInstances' || method !== 'GET') throw new HttpError(404, 'Not Found');
    const tasks = taskTimeline(run, now);
    if (taskId === undefined) {
      const limit = Number(query.get('limit') ?? 50);
      const list = tasks.slice(0, limit).map((t, i) => tiBody(run, t, i));
      return [200, { task_instances: list, total_entries: tasks.length }];
    }
    if (logsSeg !== 'logs' || tryStr === undefined) throw new HttpError(404, 'Not Found');
    const tryNumber = Number(tryStr);
    if (!Number.isInteger(tryNumber) || tryNumber < 1) {
      throw new HttpError(422, [{ type: 'greater_than', loc: ['path', 'try_number'], msg: 'Input should be greater than 0', input: tryStr }]);
    }
    const t = tasks.find((x) => x.taskId === taskId);
    if (!t || t.tryNumber !== tryNumber) throw new HttpError(404, 'TaskInstance not found');
    return [200, { content: logRecords(run, t), continuation_token: null }];
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    const record: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname + url.search, authorization: req.headers.authorization };
    requests.push(record);
    try {
      let body: unknown;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new HttpError(422, [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {} }]);
        }
        record.body = body;
      }
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        throw new HttpError(401, req.headers.authorization ? 'Invalid JWT token' : 'Not authenticated');
      }
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const [status, out] = route(req.method ?? 'GET', parts, url.searchParams, body);
      record.status = status;
      send(res, status, out);
    } catch (err) {
      record.status = err instanceof HttpError ? err.status : 500;
      if (err instanceof HttpError) send(res, err.status, { detail: err.detail });
      else send(res, 500, { detail: 'Internal Server Error' });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    apiUrl: `${url}/api/v2`,
    port,
    requests,
    isPaused: (dagId) => dagOf(dagId).paused,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
