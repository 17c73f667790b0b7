/** What `/re status` and `re-bot status` show about a deployment's latest job. Pure: no store access. */
import type { JobState, JobView, StepState } from './types.ts';

const ACTIVE: JobState[] = ['queued', 'running', 'waiting_approval'];

export interface StatusReport {
  deployment: string;
  job?: { id: string; state: JobState; attempt: number; requestedBy: string; createdAt: string; finishedAt?: string; error?: string };
  steps: Array<{ stepId: string; number: number; title: string; state: StepState; summary?: string; durationMs?: number }>;
  approvals: Array<{ title: string; state: string; hash: string; approvedBy: string[]; rejectedBy?: string }>;
  chart?: string;
  valuesHash?: string;
  clientImage?: string;
  helmRevision?: number;
  lock?: { jobId: string; requestedBy: string; since: string; state: JobState };
  /** the agent token re-bot created that the agents use (never its value); `warning` within 14 days of its expiry */
  agentToken?: { id: string; name: string; endAt?: string; expiry: string; warning?: string };
  /** what runs in the cluster: the last job of the deployment that succeeded (may be older than `job`) */
  live?: { jobId: string; helmRevision?: number; chart: string; finishedAt?: string; approvedBy: string[] };
}

/** the live-release summary of a succeeded job */
export function liveFromJob(v: JobView): StatusReport['live'] {
  const out = (stepId: string) => v.steps.find((s) => s.stepId === stepId)?.output;
  return {
    jobId: v.id,
    helmRevision: (out('deploy')?.helmRevision ?? out('agents')?.helmRevision) as number | undefined,
    chart: v.chart,
    finishedAt: v.finishedAt,
    approvedBy: [...new Set(v.approvals.filter((a) => a.state === 'approved').flatMap((a) => a.approvals.map((x) => x.user)))],
  };
}

/** The report for one job; the lock is the job's own while it is active. */
export function reportFromJob(v: JobView): StatusReport {
  const out = (stepId: string) => v.steps.find((s) => s.stepId === stepId)?.output;
  return {
    deployment: v.deployment,
    job: { id: v.id, state: v.state, attempt: v.attempt, requestedBy: v.requestedBy, createdAt: v.createdAt, finishedAt: v.finishedAt, error: v.error },
    steps: v.steps.map((s) => ({ stepId: s.stepId, number: s.number, title: s.title, state: s.state, summary: s.summary, durationMs: s.durationMs })),
    approvals: v.approvals.map((a) => ({ title: a.title, state: a.state, hash: a.hash, approvedBy: a.approvals.map((x) => x.user), rejectedBy: a.rejectedBy })),
    chart: v.chart,
    valuesHash: v.valuesHash,
    clientImage: out('deploy')?.image as string | undefined,
    // step 7's roll comes after step 2's install: the latest revision is the deploy step's when it ran
    helmRevision: (out('deploy')?.helmRevision ?? out('agents')?.helmRevision) as number | undefined,
    lock: ACTIVE.includes(v.state) ? { jobId: v.id, requestedBy: v.requestedBy, since: v.startedAt ?? v.createdAt, state: v.state } : undefined,
    ...(v.state === 'succeeded' ? { live: liveFromJob(v) } : {}),
  };
}

