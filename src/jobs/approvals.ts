/**
 * The engine's side of approvals: a step's request, a click's decision and expiry go through the repository
 * (`repo.approvals`: each one transaction on SQLite or PostgreSQL, with its audit rows, and on the decide path
 * the failed job's `job.finished` row), then this module emits the events and kicks the worker loop.
 * The SQLite SQL is src/store/sqlite/approvals.ts; PostgreSQL's src/store/pg/approvals.ts.
 */
import type { ApprovalGrant, ApprovalRequest } from '../checklist/types.ts';
import type { Repository } from '../store/repo.ts';
import type { DecideInput } from '../store/sqlite/approvals.ts';
import type { JobRow } from './queue.ts';
import { SuspendForApproval } from './runner.ts';
import type { ApprovalPolicy, DecisionResult, JobEvent, JobView } from './types.ts';

export { createApprovals, type DecideInput } from '../store/sqlite/approvals.ts';

export interface ApprovalFlowDeps {
  repo: Repository;
  policy: ApprovalPolicy;
  emit(e: JobEvent): void;
  view(jobId: string): Promise<JobView>;
  /** a decision or an expiry failed the job (its row and audit rows are written): the job's events */
  jobFailed(jobId: string): Promise<void>;
  /** an approved job is queued again: run it soon */
  kick(): void;
}

export function createApprovalFlow(d: ApprovalFlowDeps) {
  const { repo } = d;

  /** A step's `ctx.requireApproval`: the grant when this hash is approved; otherwise records the request and suspends the job. */
  async function requireApproval(job: JobRow, stepId: string, req: ApprovalRequest): Promise<ApprovalGrant> {
    const r = await repo.approvals.request(job, stepId, req, d.policy);
    if ('granted' in r) return r.granted;
    const approval = await repo.approvals.view(r.pending.approvalId);
    if (approval) d.emit({ type: 'approval.requested', job: await d.view(job.id), approval });
    throw new SuspendForApproval(r.pending.approvalId);
  }

  /** Pending requests past their expiry: expired (and their waiting jobs failed) by the repository; then the events. */
  async function expireApprovals(): Promise<void> {
    for (const id of await repo.approvals.expireDue()) {
      const approval = await repo.approvals.view(id);
      if (!approval) continue;
      const job = await d.view(approval.jobId);
      d.emit({ type: 'approval.updated', job, approval });
      if (job.state === 'failed') await d.jobFailed(job.id);
    }
  }

  async function decide(approvalId: string, input: DecideInput): Promise<DecisionResult> {
    const r = await repo.approvals.decide(approvalId, input);
    if (!r.ok) {
      // found expired at the click: the request expired and its job failed in the same transaction
      if (r.jobFailed && r.jobId) {
        const approval = await repo.approvals.view(approvalId);
        if (approval) d.emit({ type: 'approval.updated', job: await d.view(r.jobId), approval });
        await d.jobFailed(r.jobId);
      }
      return { ok: false, reason: r.reason, message: r.message };
    }
    const approval = (await repo.approvals.view(approvalId))!;
    d.emit({ type: 'approval.updated', job: await d.view(r.jobId), approval });
    if (r.jobFailed) await d.jobFailed(r.jobId);
    if (r.outcome === 'approved') d.kick();
    return { ok: true, approval };
  }

  return { requireApproval, expireApprovals, decide };
}
