/**
 * Load generator, in its own process so its CPU use is outside the measured apps. Over IPC it gets bursts:
 * `{ id, url, secret, bodies }`; it signs every body (Slack v0 signature, current timestamp) before the clock
 * starts, sends them all at once over keep-alive connections, and answers `{ id, latencies, statuses, bodies? }`
 * with the latency of each request from the first byte written to the last byte of the response read.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { signRequest } from '../../src/devkit/slack-emulator/signer.ts';

interface Burst {
  id: number;
  url: string;
  secret: string;
  bodies: string[];
  /** return the response bodies (for checks) */
  keepBodies?: boolean;
  /** one request at a time instead of all at once (the unloaded cost of one request) */
  sequential?: boolean;
}

const agents = new Map<string, Agent>();
const agentFor = (origin: string) => {
  let a = agents.get(origin);
  if (!a) agents.set(origin, (a = new Agent({ keepAlive: true, maxSockets: 1000, keepAliveMsecs: 10_000 })));
  return a;
};

function one(url: URL, agent: Agent, body: string, headers: Record<string, string>): Promise<{ ms: number; status: number; body: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve({ ms: performance.now() - t0, status: -1, body: '' }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ ms: performance.now() - t0, status: -1, body: String(err) }));
    req.end(body);
  });
}

process.on('message', async (m: Burst) => {
  const url = new URL(m.url);
  const agent = agentFor(url.origin);
  const signed = m.bodies.map((b) => signRequest(m.secret, b));
  const results: Array<{ ms: number; status: number; body: string }> = [];
  if (m.sequential) for (const s of signed) results.push(await one(url, agent, s.body, s.headers));
  else results.push(...(await Promise.all(signed.map((s) => one(url, agent, s.body, s.headers)))));
  process.send!({ id: m.id, latencies: results.map((r) => r.ms), statuses: results.map((r) => r.status), bodies: m.keepBodies ? results.map((r) => r.body) : undefined });
});
process.send!({ ready: true });
