import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HTTPReceiver, LogLevel } from '@slack/bolt';
import type { CustomRoute } from '@slack/bolt';
import { afterEach, describe, expect, it } from 'vitest';
import { healthRoutes, startHealthServer, type HealthServer, type ReadyResult } from '../../src/app/http.ts';
import { ackKindOf, countingFetch, createMetrics, observeJobEvents, timeAcks } from '../../src/metrics.ts';
import type { JobEvent, JobView } from '../../src/jobs/types.ts';


let srv: HealthServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

function fakeEngine() {
  const listeners = new Set<(e: JobEvent) => void>();
  return {
    on(l: (e: JobEvent) => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit(e: JobEvent) {
      for (const l of listeners) l(e);
    },
  };
}

function job(steps: JobView['steps']): JobView {
  return {
    id: 'job-1', deployment: 'prod', state: 'running', attempt: 1, requestedBy: 'U1', origin: { kind: 'cli' },
    createdAt: new Date().toISOString(), valuesHash: 'h', chart: 'c', steps, approvals: [],
  };
}

async function get(path: string) {
  const res = await fetch(`${srv!.url}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('health server', () => {
  it('serves healthz, readyz (ok and failing), metrics, 404, and closes', async () => {
    let ready: ReadyResult = { ok: true, checks: { db: true, migrations: true, slack: true } };
    const counts = { queued: 1, running: 2 };
    const metrics = createMetrics({ jobCounts: () => counts, approvalsPending: () => 3, outbox: () => ({ depth: 4, oldestAgeSeconds: 12.5 }) });
    srv = await startHealthServer({ port: 0, host: '127.0.0.1', metrics, ready: async () => ready });

    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });

    const ok = await get('/readyz');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true, checks: { db: true, migrations: true, slack: true } });

    ready = { ok: false, checks: { db: true, migrations: true, slack: 'socket disconnected' } };
    const bad = await get('/readyz');
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.body)).toMatchObject({ ok: false, failing: ['slack'], checks: { slack: 'socket disconnected' } });

    expect((await get('/nope')).status).toBe(404);
    expect((await get('/')).status).toBe(404);

    const m1 = await get('/metrics');
    expect(m1.status).toBe(200);
    expect(m1.type).toContain('text/plain; version=0.0.4');
    expect(m1.body).toContain('re_bot_jobs{state="running"} 2');
    expect(m1.body).toContain('re_bot_jobs{state="failed"} 0');
    expect(m1.body).toContain('re_bot_approvals_pending 3');
    expect(m1.body).toContain('re_bot_slack_outbox_depth 4');
    expect(m1.body).toContain('re_bot_slack_outbox_oldest_age_seconds 12.5');
    expect(m1.body).toContain('re_bot_process_cpu_user_seconds_total');
    expect(m1.body).not.toContain('re_bot_step_duration_seconds_count{');

    // a fake job runs: one step succeeds in 1.5 s, one fails after 40 s, one is skipped
    const engine = fakeEngine();
    const stop = observeJobEvents(metrics, engine);
    const steps: JobView['steps'] = [
      { stepId: 'namespace', number: 1, title: 'ns', state: 'succeeded', durationMs: 1500, attempt: 1 },
      { stepId: 'helm-install', number: 2, title: 'helm', state: 'failed', durationMs: 40_000, attempt: 1 },
      { stepId: 'images', number: 3, title: 'img', state: 'skipped', attempt: 1 },
    ];
    engine.emit({ type: 'step.started', job: job(steps), stepId: 'namespace' });
    engine.emit({ type: 'step.finished', job: job(steps), stepId: 'namespace' });
    engine.emit({ type: 'step.failed', job: job(steps), stepId: 'helm-install', error: 'timeout' });
    engine.emit({ type: 'step.skipped', job: job(steps), stepId: 'images' });
    metrics.slackApiCalls.inc({ method: 'chat.postMessage', outcome: 'ok' });
    metrics.slackApiCalls.inc({ method: 'chat.postMessage', outcome: 'rate_limited' });
    metrics.slackRateLimited.inc({ method: 'chat.postMessage' });
    metrics.ackLatency.observe({ kind: 'command' }, 0.2);
    counts.running = 0;

    const m2 = (await get('/metrics')).body;
    expect(m2).toContain('re_bot_step_duration_seconds_count{step="namespace",outcome="succeeded"} 1');
    expect(m2).toContain('re_bot_step_duration_seconds_sum{step="namespace",outcome="succeeded"} 1.5');
    expect(m2).toContain('re_bot_step_duration_seconds_bucket{le="2.5",step="namespace",outcome="succeeded"} 1');
    expect(m2).toContain('re_bot_step_duration_seconds_bucket{le="1",step="namespace",outcome="succeeded"} 0');
    expect(m2).toContain('re_bot_step_duration_seconds_sum{step="helm-install",outcome="failed"} 40');
    expect(m2).toContain('re_bot_step_duration_seconds_count{step="images",outcome="skipped"} 1');
    expect(m2).toContain('re_bot_slack_api_calls_total{method="chat.postMessage",outcome="rate_limited"} 1');
    expect(m2).toContain('re_bot_slack_rate_limited_total{method="chat.postMessage"} 1');
    expect(m2).toContain('re_bot_slack_ack_latency_seconds_bucket{le="0.25",kind="command"} 1');
    expect(m2).toContain('re_bot_jobs{state="running"} 0');

    stop();
    engine.emit({ type: 'step.finished', job: job(steps), stepId: 'namespace' });
    expect((await get('/metrics')).body).toContain('re_bot_step_duration_seconds_count{step="namespace",outcome="succeeded"} 1');

    const { port } = srv;
    await srv.close();
    srv = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  it('reports a throwing readiness check as 503 with the redacted reason', async () => {
    srv = await startHealthServer({ port: 0, host: '127.0.0.1', metrics: createMetrics({}, { defaultMetrics: false }), ready: async () => { throw new Error('db locked'); } });
    const r = await get('/readyz');
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body).checks.error).toBe('db locked');
  });

  it('serves the same endpoints through a Bolt HTTPReceiver via customRoutes (Slack HTTP mode)', async () => {
    const routes: CustomRoute[] = healthRoutes({ metrics: createMetrics({}, { defaultMetrics: false }), ready: async () => ({ ok: false, checks: { slack: false } }) });
    const receiver = new HTTPReceiver({ signingSecret: 'test-signing-secret', customRoutes: routes, logLevel: LogLevel.ERROR });
    const server = (await receiver.start({ port: 0, host: '127.0.0.1' })) as Server;
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const h = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
      expect([h.status, await h.text()]).toEqual([200, 'ok\n']);
      const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5000) });
      expect(r.status).toBe(503);
      const m = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
      expect(await m.text()).toContain('# TYPE re_bot_jobs gauge');
    } finally {
      await receiver.stop();
    }
  });
});

describe('Slack metrics hooks', () => {
  it('countingFetch counts by method and outcome, 429s separately, and keeps label values bounded', async () => {
    const metrics = createMetrics({}, { defaultMetrics: false });
    const replies: Record<string, Response> = {
      'chat.postMessage': new Response('{"ok":true}', { status: 200 }),
      'chat.update': new Response('{"ok":false,"error":"message_not_found"}', { status: 200 }),
      'views.open': new Response('', { status: 429, headers: { 'retry-after': '3' } }),
    };
    const base = (async (url: string | URL | Request) => replies[String(url).split('/').pop()!] ?? new Response('ok', { status: 200 })) as typeof fetch;
    const f = countingFetch(metrics, 'http://emu/api/', base);
    for (const m of Object.keys(replies)) await f(`http://emu/api/${m}`, { method: 'POST' });
    // counting reads a copy: the caller still gets the body
    expect(await (await f('http://emu/api/chat.postMessage')).text()).toBe('{"ok":true}');
    await f('https://hooks.slack.com/actions/T1/12345/abcdef');
    await f('http://emu/api/..%2Fetc');
    const text = await metrics.registry.metrics();
    expect(text).toContain('re_bot_slack_api_calls_total{method="chat.postMessage",outcome="ok"} 2');
    expect(text).toContain('re_bot_slack_api_calls_total{method="chat.update",outcome="error"} 1');
    expect(text).toContain('re_bot_slack_api_calls_total{method="views.open",outcome="rate_limited"} 1');
    expect(text).toContain('re_bot_slack_rate_limited_total{method="views.open"} 1');
    expect(text).toContain('re_bot_slack_api_calls_total{method="response_url",outcome="ok"} 1');
    expect(text).toContain('re_bot_slack_api_calls_total{method="other",outcome="error"} 1');
  });

  it('timeAcks observes the time to ack by kind, once, and leaves other requests alone', async () => {
    const metrics = createMetrics({}, { defaultMetrics: false });
    const seen: string[] = [];
    const app = {
      async processEvent(e: { body: Record<string, unknown>; ack: (r?: unknown) => Promise<void> }) {
        await e.ack();
        await e.ack();
        seen.push(String(e.body.type ?? e.body.command));
      },
    };
    timeAcks(metrics, app);
    const ack = async () => undefined;
    await app.processEvent({ body: { command: '/re' }, ack });
    await app.processEvent({ body: { type: 'block_actions' }, ack });
    await app.processEvent({ body: { type: 'event_callback' }, ack });
    expect(seen).toEqual(['/re', 'block_actions', 'event_callback']);
    const text = await metrics.registry.metrics();
    expect(text).toContain('re_bot_slack_ack_latency_seconds_count{kind="command"} 1');
    expect(text).toContain('re_bot_slack_ack_latency_seconds_count{kind="action"} 1');
    expect(text).not.toContain('kind="view"} 1');
    expect(ackKindOf({ type: 'view_submission' })).toBe('view');
  });
});
