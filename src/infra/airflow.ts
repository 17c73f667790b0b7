/**
 * Airflow REST API v2 (Airflow 3) client used by the verification step's smoke-test DAG run.
 * Shapes follow airflow-core/src/airflow/api_fastapi/core_api/datamodels (DAGRunResponse,
 * TaskInstanceCollectionResponse, TaskInstancesLogResponse); every response is validated with zod.
 */
import { z } from 'zod';
import { RedactedError, redact, registerSecret } from '../redact.ts';
import { DEFAULT_TIMEOUT_MS, checkBody, errorDetail, fetchWithDeadline, hostOf } from './probe.ts';
import type { AirflowClient, CallOptions, DagRun } from './types.ts';

export interface AirflowClientOptions {
  /** Airflow API base: `https://host/d1234567`, with or without a trailing `/api/v2`, scheme optional
   *  (Astro's `webServerAirflowApiUrl` comes as `<host>/d1234567/api/v2`, without a scheme). */
  baseUrl: string;
  token: string;
  timeoutMs?: number;
}

const SERVICE = 'Airflow API';

/** Root URL of the Airflow API server without `/api/v2` and without a trailing slash. */
export function normaliseAirflowBaseUrl(input: string): string {
  const trimmed = input.trim();
  if (!trimmed) throw new RedactedError('Airflow API URL is empty; expected e.g. https://<host>/<deployment>/api/v2', 'invalid_config');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new RedactedError(`Airflow API URL "${trimmed}" is not a valid URL; expected e.g. https://<host>/<deployment>/api/v2`, 'invalid_config');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RedactedError(`Airflow API URL "${trimmed}" must use http or https, not ${url.protocol}`, 'invalid_config');
  }
  if (url.username || url.password) {
    throw new RedactedError('Airflow API URL must not carry credentials; pass the API token separately', 'invalid_config');
  }
  url.search = '';
  url.hash = '';
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v2$/i, '');
  return `${url.origin}${path}`;
}

// ---------- response shapes (only what we read; extra fields are ignored) ----------
const DagRunBody = z.object({ dag_id: z.string(), dag_run_id: z.string(), state: z.string() });
const DagBody = z.object({ dag_id: z.string(), is_paused: z.boolean() });
const TaskInstancesBody = z.object({
  task_instances: z.array(z.object({ task_id: z.string(), state: z.string().nullable(), try_number: z.number().int().nonnegative() })),
  total_entries: z.number().int(),
});
const StructuredLogMessage = z.looseObject({ event: z.string(), timestamp: z.string().nullish(), level: z.string().nullish() });
const LogBody = z.object({
  content: z.union([z.array(z.union([StructuredLogMessage, z.string()])), z.string()]),
  continuation_token: z.string().nullish(),
});

const LOG_KNOWN_KEYS = new Set(['event', 'timestamp', 'level', 'logger', 'chan', 'sources', 'error_detail']);

/** One text block from a log `content`: structured records become `timestamp [level] logger - event`. */
export function flattenLogContent(content: z.infer<typeof LogBody>['content']): string {
  if (typeof content === 'string') return content;
  const lines: string[] = [];
  for (const item of content) {
    if (typeof item === 'string') {
      lines.push(item);
      continue;
    }
    // Airflow's header record lists where the log came from; it has no useful text of its own
    if (item.event === '::group::Log message source details' || item.event === '::endgroup::') continue;
    const parts: string[] = [];
    if (item.timestamp) parts.push(item.timestamp);
    if (item.level) parts.push(`[${item.level}]`);
    if (typeof item.logger === 'string') parts.push(`${item.logger} -`);
    parts.push(item.event);
    const extras = Object.entries(item).filter(([k]) => !LOG_KNOWN_KEYS.has(k));
    if (extras.length) parts.push(extras.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' '));
    lines.push(parts.join(' '));
    if (Array.isArray(item.error_detail)) {
      for (const ex of item.error_detail as Array<{ exc_type?: string; exc_value?: string }>) {
        if (ex && typeof ex === 'object') lines.push(`  ${ex.exc_type ?? 'Error'}: ${ex.exc_value ?? ''}`);
      }
    }
  }
  return lines.join('\n');
}

interface Call {
  method: 'GET' | 'POST' | 'PATCH';
  path: string[];
  query?: Record<string, string>;
  body?: unknown;
  /** what we were doing, for messages: `triggering DAG "x"` */
  action: string;
  /** the sentence for a 404, and what to check */
  notFound: string;
  notFoundHint?: string;
}

export function createAirflowClient(options: AirflowClientOptions): AirflowClient {
  const root = normaliseAirflowBaseUrl(options.baseUrl);
  if (!options.token) throw new RedactedError('Airflow API token is empty; expected an Astro Deployment or Workspace API token', 'invalid_config');
  registerSecret(options.token);
  const host = hostOf(root);
  const defaultTimeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function call<T>(c: Call, schema: z.ZodType<T>, opts: CallOptions = {}): Promise<T> {
    const url = new URL(`${root}/api/v2/${c.path.map(encodeURIComponent).join('/')}`);
    for (const [k, v] of Object.entries(c.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    const timeoutMs = opts.timeoutMs ?? defaultTimeout;
    const res = await fetchWithDeadline(
      url,
      { method: c.method, headers, body: c.body === undefined ? undefined : JSON.stringify(c.body) },
      { timeoutMs, signal: opts.signal, service: `${SERVICE} (${c.action})` },
    );
    if (res.status >= 200 && res.status < 300) {
      let json: unknown;
      try {
        json = JSON.parse(res.text);
      } catch {
        const ct = res.headers.get('content-type') ?? 'no content-type';
        throw new RedactedError(
          `${SERVICE} at ${host} answered ${c.action} with HTTP ${res.status} but the body is not JSON (${ct}): ${redact(res.text.slice(0, 120))}`,
          'bad_response',
        );
      }
      return checkBody(json, schema, { service: SERVICE, host, action: c.action });
    }
    throw statusError(res.status, errorDetail(res.text), c);
  }

  function statusError(status: number, detail: string, c: Call): RedactedError {
    const said = detail ? `: ${detail}` : '';
    switch (status) {
      case 401:
        return new RedactedError(
          `${SERVICE} at ${host} rejected the token while ${c.action} (HTTP 401${said}): token rejected, check that it is a current Astro API token for this Deployment`,
          'unauthorized',
        );
      case 403:
        return new RedactedError(
          `${SERVICE} at ${host} refused ${c.action} (HTTP 403${said}): token rejected for this operation, it lacks the permission (use a Deployment API token or a Workspace token with Operator rights)`,
          'forbidden',
        );
      case 404:
        return new RedactedError(`${c.notFound} on Airflow at ${host} (HTTP 404${said})${c.notFoundHint ? `; ${c.notFoundHint}` : ''}`, 'not_found');
      case 409:
        return new RedactedError(`${SERVICE} at ${host} reported a conflict while ${c.action} (HTTP 409${said})`, 'conflict');
      case 400:
      case 422:
        return new RedactedError(`${SERVICE} at ${host} rejected the request while ${c.action} (HTTP ${status}${said})`, 'invalid_request');
      default:
        if (status >= 500) {
          return new RedactedError(`${SERVICE} at ${host} failed while ${c.action} (HTTP ${status}${said}); a server-side problem, retry later`, 'server_error');
        }
        return new RedactedError(`${SERVICE} at ${host} answered ${c.action} with unexpected HTTP ${status}${said}`, 'http_error');
    }
  }

  const toRun = (b: z.infer<typeof DagRunBody>): DagRun => ({ dagId: b.dag_id, dagRunId: b.dag_run_id, state: b.state });
  const dagMissing = (dagId: string) => `DAG "${dagId}" was not found`;
  const dagHint = 'check the DAG id and that the DAG file has been deployed and parsed without import errors';

  return {
    async unpauseDag(dagId, opts) {
      await call(
        { method: 'PATCH', path: ['dags', dagId], body: { is_paused: false }, action: `unpausing DAG "${dagId}"`, notFound: dagMissing(dagId), notFoundHint: dagHint },
        DagBody,
        opts,
      );
    },

    async triggerDagRun(dagId, conf = {}, opts) {
      const body = await call(
        {
          method: 'POST',
          path: ['dags', dagId, 'dagRuns'],
          // Airflow 3 requires logical_date to be present; null means "now, no data interval"
          body: { logical_date: null, conf, ...(opts?.dagRunId ? { dag_run_id: opts.dagRunId } : {}) },
          action: `triggering DAG "${dagId}"`,
          notFound: dagMissing(dagId),
          notFoundHint: dagHint,
        },
        DagRunBody,
        opts,
      );
      return toRun(body);
    },

    async getDagRun(dagId, dagRunId, opts) {
      const body = await call(
        {
          method: 'GET',
          path: ['dags', dagId, 'dagRuns', dagRunId],
          action: `reading run "${dagRunId}" of DAG "${dagId}"`,
          notFound: `DAG run "${dagRunId}" of DAG "${dagId}" was not found`,
        },
        DagRunBody,
        opts,
      );
      return toRun(body);
    },

    async listTaskInstances(dagId, dagRunId, opts) {
      const body = await call(
        {
          method: 'GET',
          path: ['dags', dagId, 'dagRuns', dagRunId, 'taskInstances'],
          query: { limit: '100' },
          action: `listing task instances of run "${dagRunId}" of DAG "${dagId}"`,
          notFound: `DAG run "${dagRunId}" of DAG "${dagId}" was not found`,
        },
        TaskInstancesBody,
        opts,
      );
      return body.task_instances.map((t) => ({ taskId: t.task_id, state: t.state, tryNumber: t.try_number }));
    },

    async taskLog(dagId, dagRunId, taskId, tryNumber, opts) {
      if (!Number.isInteger(tryNumber) || tryNumber < 1) {
        throw new RedactedError(`tryNumber for task "${taskId}" must be an integer >= 1 (the task has not run yet when it is 0), got ${tryNumber}`, 'invalid_request');
      }
      const body = await call(
        {
          method: 'GET',
          path: ['dags', dagId, 'dagRuns', dagRunId, 'taskInstances', taskId, 'logs', String(tryNumber)],
          query: { full_content: 'true' },
          action: `reading the log of task "${taskId}" (try ${tryNumber}) in run "${dagRunId}"`,
          notFound: `no log for task "${taskId}" try ${tryNumber} in run "${dagRunId}" of DAG "${dagId}" (task instance not found)`,
        },
        LogBody,
        opts,
      );
      return redact(flattenLogContent(body.content));
    },
  };
}
