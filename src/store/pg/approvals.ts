/**
 * Approval requests and decisions on PostgreSQL, mirroring the store side of src/jobs/approvals.ts
 * (`requireApproval`'s transaction, `decide`, `expireApprovals`); events and the engine's kick stay with the caller.
 *
 * Several replicas receive clicks: `decideApprovalPg` reads the approval `FOR UPDATE`, so two replicas handling
 * the same (or two different users') clicks on one request decide one after the other, and the second sees the
 * first's vote and state. Expiry is checked inside that lock against the caller's clock, as on SQLite.
 */
import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { redact, redactDeep } from '../../redact.ts';
import type { ApprovalRequest } from '../../checklist/types.ts';
import type { ApprovalPolicy, DecisionResult } from '../../jobs/types.ts';
import type { DecideInput } from '../../jobs/approvals.ts';
import { appendAuditPg } from './audit.ts';
import type { PgDb } from './open.ts';
import { approvals, approvalVotes, jobs } from './schema.ts';
import { failJobPg, requeueJobPg, suspendJobPg, updateStepPg, type PgAuditFn, type PgExec, type PgJobRow } from './jobs.ts';

export type PgApprovalRow = typeof approvals.$inferSelect;

export interface PgApprovalClock {
  now(): number;
  iso(): string;
}

export type ApprovalAsk = { granted: { approvalId: string; hash: string; approvedBy: string[] } } | { pending: { approvalId: string; created: boolean } };

/**
 * A step's `ctx.requireApproval` on the store: the grant when this hash is already approved; otherwise supersedes
 * the step's requests for other hashes, records the request (once per hash), parks the step and the job in
 * waiting_approval, all in one transaction. The caller emits `approval.requested` and throws SuspendForApproval.
 */
export async function requestApprovalPg(db: PgDb, job: PgJobRow, stepId: string, req: ApprovalRequest, o: PgApprovalClock & { policy: ApprovalPolicy; audit: PgAuditFn }): Promise<ApprovalAsk> {
  return db.transaction(async (tx) => {
    const existing = await tx.select().from(approvals)
      .where(and(eq(approvals.jobId, job.id), eq(approvals.stepId, stepId), inArray(approvals.state, ['pending', 'approved'])))
      .orderBy(asc(approvals.requestedAt)).for('update');
    const same = existing.find((a) => a.hash === req.hash);
    if (same?.state === 'approved') {
      const votes = await tx.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, same.id), eq(approvalVotes.decision, 'approve'))).orderBy(asc(approvalVotes.at));
      return { granted: { approvalId: same.id, hash: same.hash, approvedBy: votes.map((v) => v.user) } };
    }
    for (const a of existing) {
      if (a.hash === req.hash) continue;
      await tx.update(approvals).set({ state: 'superseded', decidedAt: o.iso() }).where(eq(approvals.id, a.id));
      await o.audit(tx, job, 'system', 'approval.superseded', { details: { approvalId: a.id, oldHash: a.hash, newHash: req.hash } });
    }
    let approvalId = same?.id;
    if (!approvalId) {
      approvalId = `apr_${randomUUID()}`;
      await tx.insert(approvals).values({
        id: approvalId, jobId: job.id, stepId, hash: req.hash, title: redact(req.title), facts: redactDeep(req.facts),
        changedKeys: req.changedKeys, diffText: redact(req.diffText), review: req.review ? redactDeep(req.review) : null, state: 'pending', required: Math.max(1, o.policy.required),
        policy: o.policy, requestedAt: o.iso(), expiresAt: new Date(o.now() + o.policy.expiresInMs).toISOString(),
      });
      await o.audit(tx, job, 'system', 'approval.requested', { details: { approvalId, stepId, hash: req.hash, title: redact(req.title) } });
    }
    await updateStepPg(tx, job.id, stepId, { state: 'waiting_approval' });
    await suspendJobPg(tx, job.id, o.iso());
    return { pending: { approvalId, created: !same } };
  });
}

/** What a decision changed, for the caller's events: `jobFailed` carries the job's error when the job was failed. */
export type PgDecision =
  | { ok: true; approvalId: string; jobId: string; outcome: 'pending' | 'approved' | 'rejected'; jobRequeued: boolean; jobFailed?: string }
  | { ok: false; reason: Extract<DecisionResult, { ok: false }>['reason']; message: string; jobId?: string; jobFailed?: string };

/** Marks a pending approval expired and fails its waiting job (step and job), in `tx`; returns the job's error or undefined. */
async function expireInTx(tx: PgExec, a: PgApprovalRow, j: PgJobRow, o: PgApprovalClock & { audit: PgAuditFn }): Promise<string | undefined> {
  await tx.update(approvals).set({ state: 'expired', decidedAt: o.iso() }).where(eq(approvals.id, a.id));
  await o.audit(tx, j, 'system', 'approval.expired', { result: 'expired', details: { approvalId: a.id, hash: a.hash } });
  if (j.state !== 'waiting_approval') return undefined;
  const msg = `approval "${a.title}" expired at ${a.expiresAt} without ${a.required} approval(s)`;
  await updateStepPg(tx, j.id, a.stepId, { state: 'failed', error: msg, finishedAt: o.iso() });
  await failJobPg(tx, j.id, msg, o.iso());
  await o.audit(tx, j, 'system', 'job.finished', { result: 'failed', details: { error: msg } });
  return msg;
}

/**
 * As `decide` of src/jobs/approvals.ts, with the same refusals, messages, votes, state changes and audit rows
 * (including the `job.finished` row the engine's failJob writes on a rejection or expiry), under a row lock on
 * the approval. Refusals are audited outside the decision's transaction, as on SQLite.
 */
export async function decideApprovalPg(db: PgDb, approvalId: string, input: DecideInput, o: PgApprovalClock & { audit: PgAuditFn }): Promise<PgDecision> {
  const reason = input.reason?.trim() ? redact(input.reason.trim()).slice(0, 500) : undefined;
  const result = await db.transaction(async (tx): Promise<PgDecision & { refusedJob?: PgJobRow }> => {
    const [a] = await tx.select().from(approvals).where(eq(approvals.id, approvalId)).for('update');
    if (!a) return { ok: false, reason: 'not_found', message: `approval ${approvalId} not found` };
    const [job] = await tx.select().from(jobs).where(eq(jobs.id, a.jobId));
    const refuse = (r: Extract<DecisionResult, { ok: false }>['reason'], message: string, jobFailed?: string) => ({ ok: false as const, reason: r, message, jobId: job!.id, refusedJob: job, ...(jobFailed ? { jobFailed } : {}) });
    const p = a.policy as ApprovalPolicy;
    if (a.state === 'pending' && Date.parse(a.expiresAt) <= o.now()) {
      const failed = await expireInTx(tx, a, job!, o);
      return refuse('expired', `this approval expired at ${a.expiresAt}; the job failed — retry it to ask again`, failed);
    }
    if (a.state === 'expired') return refuse('expired', `this approval expired at ${a.expiresAt}`);
    if (a.state !== 'pending') return refuse(a.state === 'superseded' ? 'stale_hash' : 'already_decided', a.state === 'superseded'
      ? 'these values changed after this request; approve the newer request instead' : `this approval is already ${a.state}`);
    if (input.hash !== a.hash) return refuse('stale_hash', `you approved values hash ${input.hash.slice(0, 12)}, but the pending request is for ${a.hash.slice(0, 12)}`);
    if (input.by.id === job!.requestedBy && !p.allowSelfApproval) return refuse('self_approval', 'the requester cannot approve their own job');
    if (p.approvers.length > 0) {
      const ids = [input.by.id, ...(input.userGroups ?? [])];
      if (!ids.some((id) => p.approvers.includes(id))) return refuse('not_approver', 'you are not on the approver list for this deployment');
    }
    const [prior] = await tx.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, a.id), eq(approvalVotes.user, input.by.id)));
    if (prior) return refuse('duplicate', 'you already voted on this request; another approver is needed');

    let outcome: 'pending' | 'approved' | 'rejected' = 'pending';
    let jobRequeued = false;
    let jobFailed: string | undefined;
    await tx.insert(approvalVotes).values({ approvalId: a.id, user: input.by.id, decision: input.decision, at: o.iso() });
    if (input.decision === 'reject') {
      outcome = 'rejected';
      await tx.update(approvals).set({ state: 'rejected', rejectedBy: input.by.id, rejectReason: reason ?? null, decidedAt: o.iso() }).where(eq(approvals.id, a.id));
    } else {
      const votes = await tx.select().from(approvalVotes).where(and(eq(approvalVotes.approvalId, a.id), eq(approvalVotes.decision, 'approve')));
      if (votes.length >= a.required) {
        outcome = 'approved';
        await tx.update(approvals).set({ state: 'approved', decidedAt: o.iso() }).where(eq(approvals.id, a.id));
        if (job!.state === 'waiting_approval') {
          await updateStepPg(tx, job!.id, a.stepId, { state: 'pending' });
          await requeueJobPg(tx, job!.id, o.iso());
          jobRequeued = true;
        }
      }
    }
    await o.audit(tx, job!, input.by.id, 'approval.decided', { decision: input.decision, result: outcome, details: { approvalId: a.id, hash: a.hash, ...(input.by.display ? { as: input.by.display } : {}), ...(reason ? { reason } : {}) } });
    if (outcome === 'rejected' && job!.state === 'waiting_approval') {
      jobFailed = `rejected by ${input.by.id}: ${a.title}${reason ? ` — reason: ${reason}` : ''}`;
      await updateStepPg(tx, job!.id, a.stepId, { state: 'failed', error: jobFailed, finishedAt: o.iso() });
      await failJobPg(tx, job!.id, jobFailed, o.iso());
      await o.audit(tx, job!, 'system', 'job.finished', { result: 'failed', details: { error: jobFailed } });
    }
    return { ok: true, approvalId: a.id, jobId: job!.id, outcome, jobRequeued, ...(jobFailed ? { jobFailed } : {}) };
  });
  if (!result.ok) {
    const j = result.refusedJob;
    await appendAuditPg(db, { actor: input.by.id, action: 'approval.refused', jobId: j?.id, deployment: j?.deployment,
      valuesHash: j?.valuesHash, decision: input.decision, result: result.reason, details: { approvalId, hash: input.hash, message: result.message } }, new Date(o.now()));
  }
  const { refusedJob: _, ...out } = result as typeof result & { refusedJob?: PgJobRow };
  return out as PgDecision;
}

/** As `expireApprovals`: every pending request past its expiry, each under its row lock; returns the expired ids. */
export async function expireApprovalsPg(db: PgDb, o: PgApprovalClock & { audit: PgAuditFn }): Promise<string[]> {
  const due = await db.select({ id: approvals.id, expiresAt: approvals.expiresAt }).from(approvals).where(eq(approvals.state, 'pending'));
  const out: string[] = [];
  for (const c of due) {
    if (Date.parse(c.expiresAt) > o.now()) continue;
    const done = await db.transaction(async (tx) => {
      // another replica may have expired or decided it since the scan: re-read under the lock
      const [a] = await tx.select().from(approvals).where(and(eq(approvals.id, c.id), eq(approvals.state, 'pending'))).for('update');
      if (!a) return false;
      const [j] = await tx.select().from(jobs).where(eq(jobs.id, a.jobId));
      await expireInTx(tx, a, j!, o);
      return true;
    });
    if (done) out.push(c.id);
  }
  return out;
}
