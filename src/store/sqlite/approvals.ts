/**
 * Approvals on SQLite (the SQL behind `sqliteRepository(store).approvals`; the engine's side, with its events,
 * is src/jobs/approvals.ts): a step's request (one per values hash; a new hash supersedes the old request), votes,
 * `decide()` with the policy frozen at request time, and expiry. A pending request parks its job in
 * waiting_approval without a lease; approval re-queues it, rejection or expiry fails it.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { redact, redactDeep } from '../../redact.ts';
import type { ApprovalGrant, ApprovalRequest } from '../../checklist/types.ts';
import type { Store } from '../db.ts';
import { approvals, approvalVotes } from '../schema.ts';
import { appendAudit } from '../audit.ts';
import { getJob, requeueJob, suspendJob, type AuditFn, type JobRow } from '../../jobs/queue.ts';
import { SuspendForApproval, updateStep } from '../../jobs/runner.ts';
import type { Actor, ApprovalPolicy, DecisionResult, JobEvent, JobView } from '../../jobs/types.ts';
import { approvalView } from '../../jobs/views.ts';

export interface ApprovalDeps {
  store: Store;
  policy: ApprovalPolicy;
  now(): number;
  iso(): string;
  emit(e: JobEvent): void;
  view(jobId: string): JobView;
  audit: AuditFn;
  failJob(jobId: string, error: string): void;
  /** an approved job is queued again: run it soon */
  kick(): void;
}

/** `reason`: a rejection's reason, shown in the thread and written to the audit log */
export type DecideInput = { by: Actor; decision: 'approve' | 'reject'; hash: string; userGroups?: string[]; reason?: string };

/** What `decide` reads of a request before it knows the click changes anything. */
interface DecideApproval {
  id: string;
  jobId: string;
  stepId: string;
  hash: string;
  title: string;
  state: string;
  required: number;
  /** JSON text of the frozen ApprovalPolicy */
  policy: string;
  expiresAt: string;
}
type DecideJob = Pick<JobRow, 'id' | 'deployment' | 'valuesHash' | 'requestedBy' | 'state'>;

/**
 * `decide`'s reads, prepared once per DB handle: most clicks are refused (already decided, a repeat vote, not
 * an approver), and drizzle rebuilt and re-prepared each query on every click, and read the whole job row
 * (spec and plan JSON) for the five columns a decision needs.
 */
const decideQueries = new WeakMap<Store['sqlite'], { approval: (id: string) => DecideApproval | undefined; job: (id: string) => DecideJob | undefined; voted: (approvalId: string, user: string) => boolean }>();
export function decideReads(store: Store) {
  let q = decideQueries.get(store.sqlite);
  if (!q) {
    const approval = store.sqlite.prepare(`SELECT id, job_id AS jobId, step_id AS stepId, hash, title, state, required, policy, expires_at AS expiresAt FROM approvals WHERE id = ?`);
    const job = store.sqlite.prepare(`SELECT id, deployment, values_hash AS valuesHash, requested_by AS requestedBy, state FROM jobs WHERE id = ?`);
    const voted = store.sqlite.prepare(`SELECT 1 FROM approval_votes WHERE approval_id = ? AND user = ?`).pluck();
    q = {
      approval: (id) => approval.get(id) as DecideApproval | undefined,
      job: (id) => job.get(id) as DecideJob | undefined,
      voted: (approvalId, user) => voted.get(approvalId, user) !== undefined,
    };
    decideQueries.set(store.sqlite, q);
  }
  return q;
}

export function createApprovals(d: ApprovalDeps) {
  const { store } = d;
  const { db } = store;
  const getApproval = (id: string) => db.select().from(approvals).where(eq(approvals.id, id)).get();
  const reads = decideReads(store);

  /** A step's `ctx.requireApproval`: the grant when this hash is approved; otherwise records the request and suspends the job. */
  async function requireApproval(job: JobRow, stepId: string, req: ApprovalRequest): Promise<ApprovalGrant> {
    const existing = db.select().from(approvals)
      .where(and(eq(approvals.jobId, job.id), eq(approvals.stepId, stepId), inArray(approvals.state, ['pending', 'approved']))).all();
    const same = existing.find((a) => a.hash === req.hash);
    if (same?.state === 'approved') {
      const votes = db.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, same.id), eq(approvalVotes.decision, 'approve'))).all();
      return { approvalId: same.id, hash: same.hash, approvedBy: votes.map((v) => v.user) };
    }
    let approvalId = same?.id;
    store.sqlite.transaction(() => {
      for (const a of existing) {
        if (a.hash === req.hash) continue;
        db.update(approvals).set({ state: 'superseded', decidedAt: d.iso() }).where(eq(approvals.id, a.id)).run();
        d.audit(job, 'system', 'approval.superseded', { details: { approvalId: a.id, oldHash: a.hash, newHash: req.hash } });
      }
      if (!approvalId) {
        approvalId = `apr_${randomUUID()}`;
        db.insert(approvals).values({
          id: approvalId, jobId: job.id, stepId, hash: req.hash, title: redact(req.title), facts: redactDeep(req.facts),
          changedKeys: req.changedKeys, diffText: redact(req.diffText), review: req.review ? redactDeep(req.review) : null, state: 'pending', required: Math.max(1, d.policy.required),
          policy: d.policy, requestedAt: d.iso(), expiresAt: new Date(d.now() + d.policy.expiresInMs).toISOString(),
        }).run();
        d.audit(job, 'system', 'approval.requested', { details: { approvalId, stepId, hash: req.hash, title: redact(req.title) } });
      }
      updateStep(store, job.id, stepId, { state: 'waiting_approval' });
      suspendJob(store, job.id, d.iso());
    }).immediate();
    d.emit({ type: 'approval.requested', job: d.view(job.id), approval: approvalView(store, getApproval(approvalId!)!) });
    throw new SuspendForApproval(approvalId!);
  }

  /** Pending requests past their expiry: expired, and their waiting jobs failed. */
  function expireApprovals(): void {
    const t = d.now();
    for (const a of db.select().from(approvals).where(eq(approvals.state, 'pending')).all()) {
      if (Date.parse(a.expiresAt) > t) continue;
      expireApproval(a.id);
    }
  }

  function expireApproval(approvalId: string): void {
    const a = getApproval(approvalId)!;
    db.update(approvals).set({ state: 'expired', decidedAt: d.iso() }).where(eq(approvals.id, a.id)).run();
    const j = getJob(store, a.jobId)!;
    d.audit(j, 'system', 'approval.expired', { result: 'expired', details: { approvalId: a.id, hash: a.hash } });
    d.emit({ type: 'approval.updated', job: d.view(j.id), approval: approvalView(store, getApproval(a.id)!) });
    if (j.state === 'waiting_approval') {
      const msg = `approval "${a.title}" expired at ${a.expiresAt} without ${a.required} approval(s)`;
      updateStep(store, j.id, a.stepId, { state: 'failed', error: msg, finishedAt: d.iso() });
      d.failJob(j.id, msg);
    }
  }

  async function decide(approvalId: string, input: DecideInput): Promise<DecisionResult> {
    const reason = input.reason?.trim() ? redact(input.reason.trim()).slice(0, 500) : undefined;
    const a = reads.approval(approvalId);
    const job = a && reads.job(a.jobId);
    const refuse = (reason: Extract<DecisionResult, { ok: false }>['reason'], message: string): DecisionResult => {
      appendAudit(store, { actor: input.by.id, action: 'approval.refused', jobId: a?.jobId, deployment: job?.deployment,
        valuesHash: job?.valuesHash, decision: input.decision, result: reason, details: { approvalId, hash: input.hash, message } }, new Date(d.now()));
      return { ok: false, reason, message };
    };
    if (!a || !job) return refuse('not_found', `approval ${approvalId} not found`);
    if (a.state === 'pending' && Date.parse(a.expiresAt) <= d.now()) {
      expireApproval(a.id);
      return refuse('expired', `this approval expired at ${a.expiresAt}; the job failed — retry it to ask again`);
    }
    if (a.state === 'expired') return refuse('expired', `this approval expired at ${a.expiresAt}`);
    if (a.state !== 'pending') return refuse(a.state === 'superseded' ? 'stale_hash' : 'already_decided', a.state === 'superseded'
      ? 'these values changed after this request; approve the newer request instead' : `this approval is already ${a.state}`);
    if (input.hash !== a.hash) return refuse('stale_hash', `you approved values hash ${input.hash.slice(0, 12)}, but the pending request is for ${a.hash.slice(0, 12)}`);
    const p = JSON.parse(a.policy) as ApprovalPolicy;
    if (input.by.id === job.requestedBy && !p.allowSelfApproval) return refuse('self_approval', 'the requester cannot approve their own job');
    if (p.approvers.length > 0) {
      const ids = [input.by.id, ...(input.userGroups ?? [])];
      if (!ids.some((id) => p.approvers.includes(id))) return refuse('not_approver', 'you are not on the approver list for this deployment');
    }
    if (reads.voted(a.id, input.by.id)) return refuse('duplicate', 'you already voted on this request; another approver is needed');

    let outcome = 'pending' as 'pending' | 'approved' | 'rejected';
    store.sqlite.transaction(() => {
      db.insert(approvalVotes).values({ approvalId: a.id, user: input.by.id, decision: input.decision, at: d.iso() }).run();
      if (input.decision === 'reject') {
        outcome = 'rejected';
        db.update(approvals).set({ state: 'rejected', rejectedBy: input.by.id, rejectReason: reason ?? null, decidedAt: d.iso() }).where(eq(approvals.id, a.id)).run();
      } else {
        const n = db.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, a.id), eq(approvalVotes.decision, 'approve'))).all().length;
        if (n >= a.required) {
          outcome = 'approved';
          db.update(approvals).set({ state: 'approved', decidedAt: d.iso() }).where(eq(approvals.id, a.id)).run();
          if (job.state === 'waiting_approval') {
            updateStep(store, job.id, a.stepId, { state: 'pending' });
            requeueJob(store, job.id, d.iso());
          }
        }
      }
      d.audit(job, input.by.id, 'approval.decided', { decision: input.decision, result: outcome, details: { approvalId: a.id, hash: a.hash, ...(input.by.display ? { as: input.by.display } : {}), ...(reason ? { reason } : {}) } });
    }).immediate();
    const av = approvalView(store, getApproval(a.id)!);
    d.emit({ type: 'approval.updated', job: d.view(job.id), approval: av });
    if (outcome === 'rejected' && job.state === 'waiting_approval') {
      const msg = `rejected by ${input.by.id}: ${a.title}${reason ? ` — reason: ${reason}` : ''}`;
      updateStep(store, job.id, a.stepId, { state: 'failed', error: msg, finishedAt: d.iso() });
      d.failJob(job.id, msg);
    }
    if (outcome === 'approved') d.kick();
    return { ok: true, approval: av };
  }

  return { requireApproval, expireApprovals, decide };
}
