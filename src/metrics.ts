import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobEngine, JobEvent, JobState } from './jobs/types.ts';

type Awaitable<T> = T | Promise<T>;

/** Live values the runtime provides; read at scrape time so gauges never drift from the store (async on PostgreSQL). */
export interface MetricsSources {
  jobCounts?: () => Awaitable<Partial<Record<JobState, number>>>;
  approvalsPending?: () => Awaitable<number>;
  outbox?: () => Awaitable<{ depth: number; oldestAgeSeconds: number }>;
}

export interface Metrics {
  registry: Registry;
  jobs: Gauge<'state'>;
  stepDuration: Histogram<'step' | 'outcome'>;
  approvalsPending: Gauge;
  outboxDepth: Gauge;
  outboxOldestAgeSeconds: Gauge;
  slackApiCalls: Counter<'method' | 'outcome'>;
  slackRateLimited: Counter<'method'>;
  ackLatency: Histogram<'kind'>;
  /** entries dropped from a bounded in-memory queue (relayed progress lines, the ephemeral backlog) */
  dropped: Counter<'queue'>;
  /** replace or add live sources after creation (the runtime builds them after the metrics) */
  setSources(sources: MetricsSources): void;
}

export type AckKind = 'command' | 'action' | 'view';

const JOB_STATES: JobState[] = ['queued', 'running', 'waiting_approval', 'succeeded', 'failed', 'cancelled'];

export function createMetrics(sources: MetricsSources = {}, opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  let src: MetricsSources = { ...sources };

  const jobs = new Gauge({
    name: 're_bot_jobs',
    help: 'Setup jobs by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = await src.jobCounts?.();
      if (!counts) return;
      for (const s of JOB_STATES) this.set({ state: s }, counts[s] ?? 0);
    },
  });
  const stepDuration = new Histogram({
    name: 're_bot_step_duration_seconds',
    help: 'Checklist step duration by step id and outcome',
    labelNames: ['step', 'outcome'] as const,
    // steps range from a Secret write (ms) to helm --wait and image builds (minutes)
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200],
    registers: [registry],
  });
  const approvalsPending = new Gauge({
    name: 're_bot_approvals_pending',
    help: 'Approvals waiting for a decision',
    registers: [registry],
    async collect() {
      if (src.approvalsPending) this.set(await src.approvalsPending());
    },
  });
  const outboxDepth = new Gauge({
    name: 're_bot_slack_outbox_depth',
    help: 'Slack messages queued in the paced outbox',
    registers: [registry],
    async collect() {
      if (src.outbox) this.set((await src.outbox()).depth);
    },
  });
  const outboxOldestAgeSeconds = new Gauge({
    name: 're_bot_slack_outbox_oldest_age_seconds',
    help: 'Age of the oldest queued Slack message',
    registers: [registry],
    async collect() {
      if (src.outbox) this.set((await src.outbox()).oldestAgeSeconds);
    },
  });
  const slackApiCalls = new Counter({
    name: 're_bot_slack_api_calls_total',
    help: 'Slack Web API calls by method and outcome (ok, error, rate_limited)',
    labelNames: ['method', 'outcome'] as const,
    registers: [registry],
  });
  const slackRateLimited = new Counter({
    name: 're_bot_slack_rate_limited_total',
    help: 'Slack HTTP 429 responses by method',
    labelNames: ['method'] as const,
    registers: [registry],
  });
  const ackLatency = new Histogram({
    name: 're_bot_slack_ack_latency_seconds',
    help: 'Time from receiving a Slack request to ack() (Slack deadline: 3 s)',
    labelNames: ['kind'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 5],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 're_bot_queue_dropped_total',
    help: 'Entries dropped, oldest first, from a full in-memory queue (relay: job progress lines; ephemeral: pending ephemeral answers)',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 're_bot_' });

  return {
    registry,
    jobs,
    stepDuration,
    approvalsPending,
    outboxDepth,
    outboxOldestAgeSeconds,
    slackApiCalls,
    slackRateLimited,
    ackLatency,
    dropped,
    setSources(next) {
      src = { ...src, ...next };
    },
  };
}

const STEP_OUTCOME: Partial<Record<JobEvent['type'], string>> = {
  'step.finished': 'succeeded',
  'step.failed': 'failed',
  'step.skipped': 'skipped',
};

/** Records step durations from engine events; returns the unsubscribe function. */
export function observeJobEvents(metrics: Metrics, engine: Pick<JobEngine, 'on'>): () => void {
  return engine.on((e) => {
    const outcome = STEP_OUTCOME[e.type];
    if (!outcome || !('stepId' in e)) return;
    const step = e.job.steps.find((s) => s.stepId === e.stepId);
    // a finished step may have ended with warnings; keep that visible without a label per warning
    const label = outcome === 'succeeded' && step?.state === 'warned' ? 'warned' : outcome;
    metrics.stepDuration.observe({ step: e.stepId, outcome: label }, (step?.durationMs ?? 0) / 1000);
  });
}

/** Times a Slack ack: call at receipt, call the returned function right after ack(). */
export function startAckTimer(metrics: Metrics, kind: AckKind): () => void {
  return metrics.ackLatency.startTimer({ kind }) as () => void;
}

/** The ack kind of a Slack request body; undefined for what Bolt acks itself (events) or we do not time. */
export function ackKindOf(body: Record<string, any>): AckKind | undefined {
  if (typeof body.command === 'string') return 'command';
  if (body.type === 'block_actions') return 'action';
  if (body.type === 'view_submission' || body.type === 'view_closed') return 'view';
  return undefined;
}

interface AckEvent {
  body: Record<string, any>;
  ack: (response?: any) => Promise<void>;
}

/**
 * Observes ack latency for every request an app processes. Wraps `processEvent` rather than using a global
 * middleware: Bolt hands middleware a copy of the listener args, so a wrapped `ack` there never reaches listeners.
 */
export function timeAcks<E extends AckEvent>(metrics: Metrics, app: { processEvent(event: E): Promise<void> }): void {
  const process = app.processEvent.bind(app);
  app.processEvent = (event: E) => {
    const kind = ackKindOf(event.body);
    if (!kind) return process(event);
    const stop = startAckTimer(metrics, kind);
    let acked = false;
    const ack = async (response?: unknown) => {
      try {
        return await event.ack(response);
      } finally {
        if (!acked) stop();
        acked = true;
      }
    };
    return process({ ...event, ack });
  };
}

const SLACK_METHOD = /^[a-z]+(\.[a-zA-Z]+)+$/;

/**
 * A fetch for WebClient (clientOptions.fetch) that counts Web API calls by method and outcome, and 429s.
 * Bolt uses the same fetch for response_url posts; those count as method "response_url" (their paths are unique).
 */
export function countingFetch(metrics: Metrics, apiUrl = 'https://slack.com/api/', base: typeof fetch = globalThis.fetch): typeof fetch {
  const prefix = apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
  return async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const name = url.startsWith(prefix) ? url.slice(prefix.length).split(/[?#/]/)[0] : 'response_url';
    const method = name === 'response_url' || SLACK_METHOD.test(name) ? name : 'other';
    let res: Response;
    try {
      res = await base(input, init);
    } catch (err) {
      metrics.slackApiCalls.inc({ method, outcome: 'error' });
      throw err;
    }
    if (res.status === 429) {
      metrics.slackRateLimited.inc({ method });
      metrics.slackApiCalls.inc({ method, outcome: 'rate_limited' });
      return res;
    }
    // read a copy of the body so the counter is final before the caller sees the result
    const ok = res.status === 200 && method !== 'response_url' ? await res.clone().json().then((b: any) => b?.ok === true, () => false) : res.ok;
    metrics.slackApiCalls.inc({ method, outcome: ok ? 'ok' : 'error' });
    return res;
  };
}
