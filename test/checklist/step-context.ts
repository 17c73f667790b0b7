/**
 * A hand-built StepContext for step unit tests. The checkpoint object can be passed to a second context to
 * re-run a step as the engine does after a crash or an approval; requireApproval records every request and
 * suspends (throws) unless the hash was granted.
 */
import type { ApprovalRequest, StepContext, StepOutcome } from '../../src/checklist/types.ts';
import type { Logger } from '../../src/log.ts';
import { SuspendForApproval } from '../../src/jobs/engine.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import type { SecretRef, SetupSpec } from '../../src/spec/schema.ts';
import { spec as fixtureSpec } from '../spec/fixtures.ts';
import type { FakeInfra } from './fake-infra.ts';

/** Recognisable fake secrets behind the env refs the test specs use. */
export const FAKE = {
  T_API: 'fake-deployment-api-token-7Qx9',
  T_AGENT: 'fake-agent-token-3Kd8',
  T_GIT_USER: 'fake-git-user-5Lm2',
  T_GIT_TOKEN: 'ghp_fakeGitToken0123456789abcdef',
  T_OL: 'fake-openlineage-key-8Rt4',
} as const;
for (const [k, v] of Object.entries(FAKE)) process.env[k] = v;

export function testSpec(over: Record<string, unknown> = {}): SetupSpec {
  return fixtureSpec(over);
}

const silent = { warn() {}, info() {}, error() {}, debug() {}, child() { return silent; } } as unknown as Logger;

export interface Harness {
  ctx: StepContext;
  checkpoint: Record<string, unknown>;
  approvals: ApprovalRequest[];
  progress: string[];
  resolved: SecretRef[];
  audits: Array<{ action: string; details: Record<string, unknown> }>;
  /** step outputs `ctx.outputOf` returns (as the engine does for finished or prepared steps) */
  outputs: Record<string, Record<string, unknown>>;
}

export function makeCtx(spec: SetupSpec, infra: FakeInfra, o: { checkpoint?: Record<string, unknown>; granted?: Set<string> | 'all'; approvals?: ApprovalRequest[]; outputs?: Record<string, Record<string, unknown>> } = {}): Harness {
  const audits: Harness['audits'] = [];
  const outputs = o.outputs ?? {};
  const checkpoint = o.checkpoint ?? {};
  const approvals = o.approvals ?? [];
  const progress: string[] = [];
  const resolved: SecretRef[] = [];
  const ctx: StepContext = {
    jobId: 'job_test',
    attempt: 1,
    spec,
    plan: buildPlan(spec),
    infra,
    async resolveSecret(ref) {
      resolved.push(ref);
      if (!('env' in ref) || process.env[ref.env] === undefined) throw new Error(`test secret ${JSON.stringify(ref)} not set`);
      return process.env[ref.env]!;
    },
    checkpoint: {
      get: <T>(key: string) => structuredClone(checkpoint[key]) as T | undefined,
      set: (key, value) => {
        checkpoint[key] = structuredClone(value);
      },
      async once<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
        if (checkpoint[key] !== undefined) return structuredClone(checkpoint[key]) as T;
        const v = await fn();
        checkpoint[key] = structuredClone(v);
        return v;
      },
    },
    audit: (action, details) => audits.push({ action, details }),
    outputOf: (id) => outputs[id],
    progress: (m) => progress.push(m),
    async requireApproval(req) {
      approvals.push(req);
      if (o.granted === 'all' || o.granted?.has(req.hash)) return { approvalId: `apr_${req.hash.slice(0, 6)}`, hash: req.hash, approvedBy: ['UBOB'] };
      throw new SuspendForApproval(`apr_${approvals.length}`);
    },
    signal: new AbortController().signal,
    log: silent,
  };
  return { ctx, checkpoint, approvals, progress, resolved, audits, outputs };
}

/** Everything a step shows or stores: outcome, progress lines, approval requests, checkpoint. */
export function visibleText(h: Harness, outcome?: StepOutcome | Error): string {
  const o = outcome instanceof Error ? { message: outcome.message, details: (outcome as { details?: unknown }).details } : outcome;
  return JSON.stringify({ o, progress: h.progress, approvals: h.approvals, checkpoint: h.checkpoint });
}

export function leakedSecrets(text: string): string[] {
  return Object.values(FAKE).filter((v) => text.includes(v) || text.includes(Buffer.from(v).toString('base64')));
}
