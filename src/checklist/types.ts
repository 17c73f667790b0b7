import type { Logger } from '../log.ts';
import type { Infra } from '../infra/types.ts';
import type { SetupSpec, SecretRef } from '../spec/schema.ts';
import type { Plan } from '../spec/plan.ts';

/** Final state of a step run. 'warned' = succeeded with warnings the user must see. */
export type StepOutcomeStatus = 'succeeded' | 'warned' | 'skipped';

export interface StepOutcome {
  status: StepOutcomeStatus;
  /** one line, shown next to the step in Slack / terminal */
  summary: string;
  warnings?: string[];
  /** checkpointed facts other steps and `/re status` read (Secret names, Helm revision, image digest…) */
  output?: Record<string, unknown>;
  /**
   * Id of the step that applies this step's work to the cluster. Until that step completes, the engine
   * records this step as `prepared` (never ✅ for something that has not reached the cluster), then
   * promotes it to `status`.
   */
  appliedWith?: string;
}

export interface ApprovalRequest {
  /** what is being approved, e.g. "helm upgrade --install astro-agent (chart 2.3.3)" */
  title: string;
  /** sha256 over values + chart ref/version + diff; an approval for another hash never counts */
  hash: string;
  /** redacted, human-readable */
  diffText: string;
  changedKeys: string[];
  /** short facts shown next to the buttons: chart version, images, namespace… */
  facts: Record<string, string>;
  /** the same change, structured for the reviewer (Slack renders it; no secret values, only names and hashes) */
  review?: ApprovalReview;
}

/** `new`: created by this change; `existing`: already there (changed or not) */
export type Presence = 'new' | 'existing';

export interface ApprovalReview {
  chart: { name: string; version: string; state: Presence; from?: string };
  release: { name: string; namespace: string; state: Presence; revision?: number; adopts?: boolean };
  namespace: { name: string; state: Presence };
  /** values by key path, old → new; `secret`: a secret-bearing key, whose values are never shown */
  values: Array<{ path: string; old?: string; new?: string; secret?: boolean }>;
  secrets: Array<{ name: string; keys: string[]; action: 'create' | 'update' | 'unchanged'; hash?: string }>;
  /** step 7: the image built and where it is pushed */
  image?: { build: string; push: string; previous?: string };
  /** step 7: the server image deployed through the Astro Deploys API (a deploy created, pushed to, finalized) */
  server?: { deploymentId: string; build: string; push: string };
  /** URLs that receive tokens, with what they receive */
  tokenUrls: string[];
}

export interface ApprovalGrant {
  approvalId: string;
  hash: string;
  approvedBy: string[];
}

export interface StepContext {
  jobId: string;
  attempt: number;
  spec: SetupSpec;
  plan: Plan;
  infra: Infra;
  /** resolves a secret reference and registers the value with the redactor */
  resolveSecret(ref: SecretRef): Promise<string>;
  /**
   * Seals a value a step must keep across a crash (a token an API returns once) and returns its id; open it
   * again with `resolveSecret({ stored: id })`, erase it once written. Absent: nothing can be sealed (the value
   * lives in memory only).
   */
  sealSecret?(value: string, purpose: string): Promise<string>;
  eraseSecret?(id: string): Promise<void>;
  /** this step's checkpoint; `set` persists immediately (survives kill -9) */
  checkpoint: {
    get<T = unknown>(key: string): T | undefined;
    set(key: string, value: unknown): void;
    /** the stored value of `key`; otherwise runs `fn`, stores its result and returns it (a throw stores nothing) */
    once<T>(key: string, fn: () => T | Promise<T>): Promise<T>;
  };
  /** appends a row to the audit log for this job and step (recovery actions on the cluster) */
  audit?(action: string, details: Record<string, unknown>): void;
  /** outputs of earlier finished steps, by step id */
  outputOf(stepId: string): Record<string, unknown> | undefined;
  /** a progress line for the live display / thread (rate-limited by the consumer) */
  progress(message: string): void;
  /**
   * Resolves when an approval for exactly `req.hash` has been granted (possibly in an earlier run of
   * this step). Otherwise records the request, suspends the job in `waiting_approval` and throws
   * `SuspendForApproval`, which the engine catches; the step is run again after the decision.
   */
  requireApproval(req: ApprovalRequest): Promise<ApprovalGrant>;
  signal: AbortSignal;
  log: Logger;
}

export interface StepHandler {
  /** must match a step id of the plan (src/spec/plan.ts) */
  id: string;
  run(ctx: StepContext): Promise<StepOutcome>;
}

/** Thrown by a step for a user-facing failure; `field` names the spec path when config is at fault. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly details: { field?: string; logTail?: string; hint?: string } = {},
  ) {
    super(message);
    this.name = 'StepFailure';
  }
}
