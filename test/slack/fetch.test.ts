import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { keepAliveFetch } from '../../src/slack/fetch.ts';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server?.closeAllConnections();
  server = undefined;
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; sockets: () => number }> {
  let sockets = 0;
  server = createServer(handler);
  server.on('connection', () => sockets++);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets: () => sockets };
}

describe('keepAliveFetch (Web API client and respond())', () => {
  it('posts what fetch would, answers with status, headers and body, and reuses its connection', async () => {
    const seen: Array<{ method?: string; type?: string; body: string }> = [];
    const { url, sockets } = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method, type: req.headers['content-type'], body });
        if (req.url === '/limited') {
          res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' }).end('{"ok":false}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] }).end(JSON.stringify({ ok: true, echo: body }));
      });
    });
    const f = keepAliveFetch();
    try {
      for (let i = 0; i < 10; i++) {
        const r = await f(`${url}/api/chat.postMessage`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `text=hi${i}` });
        expect(r.ok).toBe(true);
        expect(await r.json()).toEqual({ ok: true, echo: `text=hi${i}` });
      }
      // what the Web API client and the metrics read: a clone's body, the original's body after it, headers
      const r = await f(`${url}/api/chat.postEphemeral`, { method: 'POST', body: 'text=x' });
      expect(await r.clone().json()).toEqual({ ok: true, echo: 'text=x' });
      expect(Buffer.from(await r.arrayBuffer()).toString()).toBe('{"ok":true,"echo":"text=x"}');
      expect(r.headers.get('Content-Type')).toBe('application/json');
      expect(Object.fromEntries(r.headers.entries())['set-cookie']).toBe('a=1, b=2');
      const limited = await f(`${url}/limited`, { method: 'POST', headers: new Headers({ 'Content-Type': 'application/json' }), body: '{}' });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('3');
      expect(seen.map((s) => s.method)).toEqual(Array(12).fill('POST'));
      expect(seen[11].type).toBe('application/json');
      // 12 requests one after another: the connection is kept (undici may open a second while one settles)
      expect(sockets()).toBeLessThanOrEqual(2);
    } finally {
      await f.close();
    }
  });

  it('gives up after its timeout when the server never answers', async () => {
    const { url } = await serve(() => undefined);
    const f = keepAliveFetch({ timeoutMs: 200 });
    try {
      await expect(f(`${url}/hang`, { method: 'POST', body: 'x' })).rejects.toThrow(/timeout/i);
    } finally {
      await f.close();
    }
  });
});
