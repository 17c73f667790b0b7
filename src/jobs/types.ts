import type { SetupSpec } from '../spec/schema.ts';
import type { ApprovalReview } from '../checklist/types.ts';

export type JobState = 'queued' | 'running' | 'waiting_approval' | 'succeeded' | 'failed' | 'cancelled';
/** `prepared`: computed, waiting for another step (StepOutcome.appliedWith) to apply it to the cluster */
export type StepState = 'pending' | 'running' | 'waiting_approval' | 'prepared' | 'succeeded' | 'warned' | 'skipped' | 'failed' | 'cancelled';

export interface Actor {
  /** Slack user id (U…) or `cli:<os user>` */
  id: string;
  display?: string;
}

export interface SlackOrigin {
  kind: 'slack';
  channel: string;
  teamId?: string;
}
export interface CliOrigin {
  kind: 'cli';
}
export type JobOrigin = SlackOrigin | CliOrigin;

export interface ApprovalPolicy {
  /** user ids (U…) and user-group ids (S…); empty = anyone but (by default) the requester */
  approvers: string[];
  required: number;
  allowSelfApproval: boolean;
  expiresInMs: number;
}

export interface JobStepView {
  stepId: string;
  number: number;
  title: string;
  state: StepState;
  summary?: string;
  warnings?: string[];
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  attempt: number;
  output?: Record<string, unknown>;
}

export interface ApprovalView {
  id: string;
  jobId: string;
  stepId: string;
  hash: string;
  title: string;
  state: 'pending' | 'approved' | 'rejected' | 'expired' | 'superseded';
  required: number;
  approvals: Array<{ user: string; at: string }>;
  rejectedBy?: string;
  /** the reason the rejecter gave */
  rejectReason?: string;
  /** who may approve (user ids U…, user-group ids S…), from the policy the request was made under */
  approvers?: string[];
  expiresAt: string;
  facts: Record<string, string>;
  review?: ApprovalReview;
  changedKeys: string[];
  diffText: string;
}

export interface JobView {
  id: string;
  deployment: string;
  state: JobState;
  attempt: number;
  requestedBy: string;
  origin: JobOrigin;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  valuesHash: string;
  chart: string;
  error?: string;
  steps: JobStepView[];
  approvals: ApprovalView[];
}

export type JobEvent =
  | { type: 'job.queued'; job: JobView }
  | { type: 'job.started'; job: JobView }
  | { type: 'job.succeeded' | 'job.failed' | 'job.cancelled'; job: JobView }
  | { type: 'step.started'; job: JobView; stepId: string }
  | { type: 'step.progress'; job: JobView; stepId: string; message: string }
  | { type: 'step.finished'; job: JobView; stepId: string }
  | { type: 'step.skipped'; job: JobView; stepId: string }
  | { type: 'step.failed'; job: JobView; stepId: string; error: string; logTail?: string; hint?: string }
  | { type: 'approval.requested'; job: JobView; approval: ApprovalView }
  | { type: 'approval.updated'; job: JobView; approval: ApprovalView };

export interface SubmitInput {
  spec: SetupSpec;
  /** default `setup`; another kind must be one of the engine's `jobKinds` */
  kind?: string;
  requestedBy: Actor;
  origin: JobOrigin;
}

export type DecisionResult =
  | { ok: true; approval: ApprovalView }
  | { ok: false; reason: 'not_found' | 'not_approver' | 'self_approval' | 'already_decided' | 'stale_hash' | 'expired' | 'duplicate'; message: string };

export class DeploymentLockedError extends Error {
  constructor(
    readonly deployment: string,
    readonly holder: { jobId: string; requestedBy: string; since: string; state: JobState },
  ) {
    super(`deployment ${deployment} is locked by job ${holder.jobId} (requested by ${holder.requestedBy}, ${holder.state} since ${holder.since}). `
      + `Wait for it, or release it with \`re-bot cancel ${deployment}\` (CLI) or \`/re cancel ${deployment}\` (Slack); `
      + 'a job waiting for approval also expires after RE_BOT_APPROVAL_TTL_HOURS (default 24).');
    this.name = 'DeploymentLockedError';
  }
}

export interface JobEngine {
  submit(input: SubmitInput): Promise<JobView>;
  cancel(jobId: string, by: Actor): Promise<JobView>;
  /** new attempt on the same job, from the failed step */
  retry(jobId: string, by: Actor): Promise<JobView>;
  /** `reason`: a rejection's reason, shown in the thread and written to the audit log */
  decide(approvalId: string, input: { by: Actor; decision: 'approve' | 'reject'; hash: string; userGroups?: string[]; reason?: string }): Promise<DecisionResult>;
  job(jobId: string): Promise<JobView | undefined>;
  latestJobFor(deployment: string): Promise<JobView | undefined>;
  on(listener: (e: JobEvent) => void): () => void;
  /** starts claiming queued jobs; reclaims expired leases */
  start(): void;
  /** stops claiming, aborts running steps (jobs stay resumable) */
  stop(): Promise<void>;
  /** resolves when the job reaches a terminal state or waiting_approval */
  settled(jobId: string): Promise<JobView>;
}
