import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import selfsigned from 'selfsigned';
import { afterEach, describe, expect, it } from 'vitest';
import { probeUrl } from '../../src/infra/probe.ts';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

describe('probeUrl (real sockets on 127.0.0.1)', () => {
  it('any HTTP answer means reachable, including 401, 403, 404 and 503', async () => {
    let status = 0;
    const port = await listen(createHttpServer((_req, res) => res.writeHead(status).end()));
    for (status of [200, 401, 403, 404, 503]) {
      expect(await probeUrl(`http://127.0.0.1:${port}/d1234567`, { timeoutMs: 2_000 })).toEqual({ ok: true, status });
    }
  });

  it('a redirect is an answer and is not followed', async () => {
    const port = await listen(createHttpServer((_req, res) => res.writeHead(302, { location: 'http://unreachable.invalid/' }).end()));
    expect(await probeUrl(`http://127.0.0.1:${port}/`, { timeoutMs: 2_000 })).toEqual({ ok: true, status: 302 });
  });

  it('a closed port is not reachable: connection refused', async () => {
    const port = await listen(createHttpServer());
    await new Promise((r) => servers.pop()!.close(r));
    const r = await probeUrl(`http://127.0.0.1:${port}/`, { timeoutMs: 2_000 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/connection refused by 127\.0\.0\.1:\d+/);
  });

  it('a server that never answers times out with the host and the limit', async () => {
    const port = await listen(createHttpServer(() => undefined));
    const started = Date.now();
    const r = await probeUrl(`http://127.0.0.1:${port}/`, { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r).toEqual({ ok: false, error: `no answer from 127.0.0.1:${port} within 0.3s` });
  });

  it('a TLS certificate that does not verify is not reachable, and says TLS', async () => {
    const pems = selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { days: 1, keySize: 2048 });
    const server = createHttpsServer({ key: pems.private, cert: pems.cert }, (_req, res) => res.writeHead(200).end());
    const port = await listen(server as unknown as Server);
    const r = await probeUrl(`https://127.0.0.1:${port}/`, { timeoutMs: 3_000 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
  });

  it('a host that does not resolve is not reachable', async () => {
    const r = await probeUrl('https://re-bot-probe-test.invalid/', { timeoutMs: 3_000 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/cannot resolve host re-bot-probe-test\.invalid|no answer from re-bot-probe-test\.invalid/);
  });

  it('bad input is reported, not thrown', async () => {
    expect(await probeUrl('not a url')).toEqual({ ok: false, error: 'not a valid URL: not a url' });
    expect((await probeUrl('ftp://127.0.0.1/')).error).toMatch(/not an http\(s\) URL/);
  });

  it("the caller's signal cancels the probe", async () => {
    const port = await listen(createHttpServer(() => undefined));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await probeUrl(`http://127.0.0.1:${port}/`, { timeoutMs: 5_000, signal: ac.signal });
    expect(r).toEqual({ ok: false, error: `request to 127.0.0.1:${port} was cancelled` });
  });
});
