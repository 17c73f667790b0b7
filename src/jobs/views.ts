import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import type { Store } from '../store/db.ts';
import { approvals, approvalVotes, jobs, jobSteps } from '../store/schema.ts';
import type { ApprovalReview } from '../checklist/types.ts';
import type { ApprovalView, JobOrigin, JobState, JobStepView, JobView, StepState } from './types.ts';

type ApprovalRow = typeof approvals.$inferSelect;
const opt = <T>(v: T | null | undefined): T | undefined => (v == null ? undefined : v);

export function approvalView(store: Store, a: ApprovalRow): ApprovalView {
  const votes = store.db.select().from(approvalVotes).where(eq(approvalVotes.approvalId, a.id)).orderBy(asc(approvalVotes.at)).all();
  return {
    id: a.id, jobId: a.jobId, stepId: a.stepId, hash: a.hash, title: a.title, state: a.state as ApprovalView['state'],
    required: a.required, approvals: votes.filter((v) => v.decision === 'approve').map((v) => ({ user: v.user, at: v.at })),
    rejectedBy: opt(a.rejectedBy), rejectReason: opt(a.rejectReason), approvers: ((a.policy as { approvers?: string[] } | null)?.approvers ?? []),
    expiresAt: a.expiresAt, facts: a.facts as Record<string, string>,
    changedKeys: a.changedKeys as string[], diffText: a.diffText, ...(a.review ? { review: a.review as ApprovalReview } : {}),
  };
}

export function jobView(store: Store, jobId: string): JobView | undefined {
  // not spec/plan: large JSON that no view shows (status replies run inside Slack's 3 s ack window)
  const j = store.db.select({
    id: jobs.id, deployment: jobs.deployment, state: jobs.state, attempt: jobs.attempt, requestedBy: jobs.requestedBy, origin: jobs.origin,
    createdAt: jobs.createdAt, startedAt: jobs.startedAt, finishedAt: jobs.finishedAt, valuesHash: jobs.valuesHash, chart: jobs.chart, error: jobs.error,
  }).from(jobs).where(eq(jobs.id, jobId)).get();
  if (!j) return undefined;
  const steps: JobStepView[] = store.db.select().from(jobSteps).where(eq(jobSteps.jobId, jobId)).orderBy(asc(jobSteps.number)).all().map((s) => ({
    stepId: s.stepId, number: s.number, title: s.title, state: s.state as StepState, summary: opt(s.summary),
    warnings: opt(s.warnings as string[] | null), error: opt(s.error), startedAt: opt(s.startedAt), finishedAt: opt(s.finishedAt),
    durationMs: opt(s.durationMs), attempt: s.attempt, output: opt(s.output as Record<string, unknown> | null),
  }));
  const appr = store.db.select().from(approvals).where(eq(approvals.jobId, jobId)).orderBy(asc(approvals.requestedAt)).all().map((a) => approvalView(store, a));
  return {
    id: j.id, deployment: j.deployment, state: j.state as JobState, attempt: j.attempt, requestedBy: j.requestedBy,
    origin: j.origin as JobOrigin, createdAt: j.createdAt, startedAt: opt(j.startedAt), finishedAt: opt(j.finishedAt),
    valuesHash: j.valuesHash, chart: j.chart, error: opt(j.error), steps, approvals: appr,
  };
}

export const ACTIVE_STATES: JobState[] = ['queued', 'running', 'waiting_approval'];
export const TERMINAL_STATES: JobState[] = ['succeeded', 'failed', 'cancelled'];

export function latestJobId(store: Store, deployment: string): string | undefined {
  return store.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.deployment, deployment)).orderBy(desc(jobs.createdAt), desc(jobs.id)).limit(1).get()?.id;
}

export function activeJobFor(store: Store, deployment: string) {
  return store.db.select().from(jobs).where(and(eq(jobs.deployment, deployment), inArray(jobs.state, ACTIVE_STATES))).limit(1).get();
}
