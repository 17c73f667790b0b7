/**
 * Agent-token routes of the Astro API stand-in (src/devkit/fake-astro.ts):
 * `GET|POST /v1/organizations/{org}/deployments/{dep}/agent-tokens`, `GET|DELETE …/agent-tokens/{id}`.
 * Bodies follow the v1 `ApiToken` / `ApiTokensPaginated` / `CreateAgentTokenRequest` shapes; the value is in
 * the create answer only; at most 50 tokens per Deployment; `tokenExpiryPeriodInDays` (1..3650) sets `endAt`.
 * `accepts(value)` is what an agent presenting that token would get: false once the token is deleted or expired.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MAX_AGENT_TOKENS } from '../infra/astro-tokens.ts';

export interface FakeAgentToken {
  id: string;
  deploymentId: string;
  name: string;
  description: string;
  shortToken: string;
  startAt: string;
  endAt?: string;
  expiryPeriodInDays?: number;
  createdAt: string;
  deletedAt?: string;
  /** the secret; never in a GET/list answer */
  value: string;
}

export interface FakeAgentTokens {
  /** live (not deleted) tokens of a Deployment */
  live(deploymentId: string): FakeAgentToken[];
  /** every token ever created, deleted ones included */
  all(): FakeAgentToken[];
  /** would the API accept an agent presenting this value? */
  accepts(value: string): boolean;
  /** one line per create/delete, in order */
  log: string[];
  /** test hook: the next create answers with this status and message */
  failNextCreate(status: number, message: string): void;
}

type Send = (status: number, payload: unknown) => void;
type Fail = (status: number, message: string) => void;

const PATH = /^\/v1\/organizations\/([^/]+)\/deployments\/([^/]+)\/agent-tokens(?:\/([^/]+))?$/;

function publicBody(t: FakeAgentToken): Record<string, unknown> {
  return {
    id: t.id, name: t.name, description: t.description, shortToken: t.shortToken, startAt: t.startAt,
    ...(t.endAt ? { endAt: t.endAt, expiryPeriodInDays: t.expiryPeriodInDays } : {}),
    kind: 'STANDARD', scope: 'DEPLOYMENT',
    roles: [{ entityId: t.deploymentId, entityType: 'DEPLOYMENT', role: 'DEPLOYMENT_AGENT' }],
    createdAt: t.createdAt, updatedAt: t.createdAt,
    createdBy: { id: 'clfakeapitoken0000000001', apiTokenName: 're-bot' }, updatedBy: { id: 'clfakeapitoken0000000001', apiTokenName: 're-bot' },
  };
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      } catch {
        resolve(undefined);
      }
    });
  });
}

export function createFakeAgentTokens(now: () => number = Date.now): FakeAgentTokens & {
  /** handles the request when its path is an agent-token path (after auth and the deployment check); false otherwise */
  route(req: IncomingMessage, pathname: string, search: URLSearchParams, send: Send, fail: Fail, deploymentOf: (org: string, id: string) => 'ok' | 'not_found' | 'forbidden'): boolean;
} {
  const tokens: FakeAgentToken[] = [];
  const log: string[] = [];
  let nextFailure: { status: number; message: string } | undefined;
  const expired = (t: FakeAgentToken) => t.endAt !== undefined && Date.parse(t.endAt) <= now();
  const live = (dep: string) => tokens.filter((t) => t.deploymentId === dep && !t.deletedAt);

  return {
    live,
    all: () => [...tokens],
    accepts: (value) => tokens.some((t) => t.value === value && !t.deletedAt && !expired(t)),
    log,
    failNextCreate(status, message) {
      nextFailure = { status, message };
    },
    route(req, pathname, search, send, fail, deploymentOf) {
      const m = PATH.exec(pathname);
      if (!m) return false;
      const [org, dep, id] = [decodeURIComponent(m[1]), decodeURIComponent(m[2]), m[3] && decodeURIComponent(m[3])];
      const found = deploymentOf(org, dep);
      if (found === 'not_found') { fail(404, `Deployment ${dep} not found`); return true; }
      if (found === 'forbidden') { fail(403, 'You do not have permission to access this resource'); return true; }
      const method = req.method ?? 'GET';
      if (!id && method === 'GET') {
        const offset = Number(search.get('offset') ?? 0);
        const limit = Math.min(Number(search.get('limit') ?? 20), 1000);
        const mine = live(dep);
        send(200, { tokens: mine.slice(offset, offset + limit).map(publicBody), totalCount: mine.length, offset, limit });
        return true;
      }
      if (!id && method === 'POST') {
        void readJson(req).then((body) => {
          const b = (body ?? {}) as { name?: unknown; description?: unknown; tokenExpiryPeriodInDays?: unknown };
          if (nextFailure) { const f = nextFailure; nextFailure = undefined; return fail(f.status, f.message); }
          if (typeof b.name !== 'string' || !b.name) return fail(400, 'name: required');
          const days = b.tokenExpiryPeriodInDays;
          if (days !== undefined && !(typeof days === 'number' && Number.isInteger(days) && days >= 1 && days <= 3650)) {
            return fail(400, 'tokenExpiryPeriodInDays: must be between 1 and 3650');
          }
          if (live(dep).length >= MAX_AGENT_TOKENS) return fail(400, `Deployment ${dep} already has the maximum of ${MAX_AGENT_TOKENS} agent tokens; delete one first`);
          const at = new Date(now());
          const value = `fake-agent-${randomBytes(24).toString('base64url')}`;
          const t: FakeAgentToken = {
            id: `cltok${randomUUID().replace(/-/g, '').slice(0, 19)}`, deploymentId: dep, name: b.name,
            description: typeof b.description === 'string' ? b.description : '', shortToken: value.slice(0, 8),
            startAt: at.toISOString(), createdAt: at.toISOString(), value,
            ...(typeof days === 'number' ? { endAt: new Date(at.getTime() + days * 86_400_000).toISOString(), expiryPeriodInDays: days } : {}),
          };
          tokens.push(t);
          log.push(`create ${t.id} ${t.name}`);
          send(200, { ...publicBody(t), token: value });
        });
        return true;
      }
      if (id) {
        const t = tokens.find((x) => x.id === id && x.deploymentId === dep && !x.deletedAt);
        if (method === 'GET') { if (!t) fail(404, `agent token ${id} not found`); else send(200, publicBody(t)); return true; }
        if (method === 'DELETE') {
          if (!t) { fail(404, `agent token ${id} not found`); return true; }
          t.deletedAt = new Date(now()).toISOString();
          log.push(`delete ${t.id} ${t.name}`);
          send(204, undefined);
          return true;
        }
      }
      fail(405, 'Method Not Allowed');
      return true;
    },
  };
}
