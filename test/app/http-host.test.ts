import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebClient } from '@slack/web-api';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { startBot } from '../../src/app/bot.ts';
import { httpHostFromEnv, startHealthServer, type HealthServer } from '../../src/app/http.ts';
import { startupFailure } from '../../src/cli/start.ts';
import { createMetrics } from '../../src/metrics.ts';
import { ConfigError } from '../../src/slack/config.ts';

const tmp = mkdtempSync(join(tmpdir(), 'http-host-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let srv: HealthServer | undefined;
afterEach(async () => {
  vi.unstubAllEnvs();
  await srv?.close();
  srv = undefined;
});

const metrics = () => createMetrics({ jobCounts: () => ({}), approvalsPending: () => 0, outbox: () => ({ depth: 0, oldestAgeSeconds: 0 }) });

describe('RE_BOT_HTTP_HOST', () => {
  it('defaults to 127.0.0.1: `npx re-bot start` is not reachable from the network', async () => {
    expect(httpHostFromEnv({})).toBe('127.0.0.1');
    vi.stubEnv('RE_BOT_HTTP_HOST', '');
    srv = await startHealthServer({ port: 0, metrics: metrics(), ready: async () => ({ ok: true, checks: {} }) });
    expect((srv.server.address() as AddressInfo).address).toBe('127.0.0.1');
    const res = await fetch(`${srv.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
  });

  it('0.0.0.0 (the image and manifests) binds every interface and is still probed on loopback', async () => {
    vi.stubEnv('RE_BOT_HTTP_HOST', '0.0.0.0');
    srv = await startHealthServer({ port: 0, metrics: metrics(), ready: async () => ({ ok: true, checks: {} }) });
    expect((srv.server.address() as AddressInfo).address).toBe('0.0.0.0');
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${srv.url}/healthz`, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
  });

  it('accepts IPv4, IPv6 and hostnames; rejects anything else naming the variable', () => {
    for (const ok of ['0.0.0.0', '10.1.2.3', '::', '::1', 'localhost', 're-bot.internal.example.com']) expect(httpHostFromEnv({ RE_BOT_HTTP_HOST: ok })).toBe(ok);
    expect(httpHostFromEnv({ RE_BOT_HTTP_HOST: '[::1]' })).toBe('::1');
    for (const bad of ['0.0.0.0:8080', 'http://localhost', 'my host', '-bad-.example', '*']) {
      expect(() => httpHostFromEnv({ RE_BOT_HTTP_HOST: bad })).toThrow(`RE_BOT_HTTP_HOST: expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::) or a hostname, got "${bad}"`);
    }
  });

  it('a bad value stops `start` before anything opens, as a configuration error (exit 2) naming the variable', async () => {
    const err = await startBot({ env: { SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_APP_TOKEN: 'xapp-1-abc', RE_BOT_HTTP_HOST: 'not a host', RE_BOT_APPROVERS: 'U0A', RE_BOT_OPERATORS: '*', RE_BOT_DB: join(tmp, 'bot.db') } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([{ variable: 'RE_BOT_HTTP_HOST', message: expect.stringContaining('"not a host"') }]);
  });
});

describe('start without a network', () => {
  it('names the Slack API URL it could not reach, in one line, without the token', async () => {
    const srvPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const url = `http://127.0.0.1:${srvPort}/api/`;
    const client = new WebClient('xoxb-1-2-secrettoken', { slackApiUrl: url, retryConfig: { retries: 0 }, timeout: 5_000 });
    const err = await client.auth.test().then(() => undefined, (e: unknown) => e);
    const msg = startupFailure(err, { SLACK_API_URL: url });
    expect(msg).toMatch(new RegExp(`^cannot reach Slack at ${url.replace(/[./]/g, '\\$&')} \\(auth\\.test\\): fetch failed: .*ECONNREFUSED.* — check network/proxy or SLACK_API_URL$`));
    expect(msg).not.toContain('secrettoken');
    expect(msg).not.toContain('\n');
    expect(startupFailure(err, {})).toContain('cannot reach Slack at https://slack.com/api/ (auth.test)');
  });
});
