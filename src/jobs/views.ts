import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Store } from '../store/db.ts';
import { approvalVotes, jobs, type approvals } from '../store/schema.ts';
import { statusQueries } from './status-queries.ts';
import type { ApprovalReview } from '../checklist/types.ts';
import type { ApprovalView, JobState, JobView } from './types.ts';

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

/** A job with its steps and approvals (prepared statements: src/jobs/status-queries.ts). */
export function jobView(store: Store, jobId: string): JobView | undefined {
  return statusQueries(store).jobView(jobId);
}

export const ACTIVE_STATES: JobState[] = ['queued', 'running', 'waiting_approval'];
export const TERMINAL_STATES: JobState[] = ['succeeded', 'failed', 'cancelled'];

export function latestJobId(store: Store, deployment: string): string | undefined {
  return statusQueries(store).latestJobId(deployment);
}

export function activeJobFor(store: Store, deployment: string) {
  return store.db.select().from(jobs).where(and(eq(jobs.deployment, deployment), inArray(jobs.state, ACTIVE_STATES))).limit(1).get();
}
