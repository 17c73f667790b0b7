import { randomUUID } from 'node:crypto';
import type { Actor, ApprovalPolicy, ApprovalView, DecisionResult, JobEngine, JobEvent, JobView, SubmitInput } from '../../src/jobs/types.ts';
import { DeploymentLockedError } from '../../src/jobs/types.ts';

const STEPS = [
  ['prerequisites', 'Check prerequisites'],
  ['namespace', 'Namespace and secrets'],
  ['images', 'Build and push images'],
  ['values', 'Render values'],
  ['release', 'Helm release'],
  ['agents', 'Agents ready'],
  ['configured', 'Deployment configured'],
  ['verify', 'Verify with a test DAG'],
] as const;

/**
 * In-memory JobEngine for Slack tests: runs the eight steps with a short delay, stops at `release` for an
 * approval (policy enforced like the real engine), can fail a step once.
 */
export class FakeEngine implements JobEngine {
  jobs = new Map<string, JobView>();
  audit: Array<{ user: string; approvalId: string; result: string }> = [];
  private listeners = new Set<(e: JobEvent) => void>();
  private waiters = new Map<string, Array<(j: JobView) => void>>();
  failOnce = new Set<string>();
  stepDelayMs = 1;
  seq = 0;

  constructor(private policy: ApprovalPolicy) {}

  on(l: (e: JobEvent) => void) {
    this.listeners.add(l);
    return () => void this.listeners.delete(l);
  }
  private emit(e: JobEvent) {
    const snap = structuredClone(e);
    for (const l of this.listeners) l(snap);
  }
  start() {}
  async stop() {}
  job(id: string) {
    const j = this.jobs.get(id);
    return j && structuredClone(j);
  }
  latestJobFor(deployment: string) {
    return [...this.jobs.values()].filter((j) => j.deployment === deployment).at(-1);
  }

  async submit(input: SubmitInput): Promise<JobView> {
    const holder = [...this.jobs.values()].find((j) => j.deployment === input.spec.deployment.name && !['succeeded', 'failed', 'cancelled'].includes(j.state));
    if (holder) throw new DeploymentLockedError(holder.deployment, { jobId: holder.id, requestedBy: holder.requestedBy, since: holder.createdAt, state: holder.state });
    const job: JobView = {
      id: `job-${++this.seq}`,
      deployment: input.spec.deployment.name,
      state: 'queued',
      attempt: 1,
      requestedBy: input.requestedBy.id,
      origin: input.origin,
      createdAt: new Date().toISOString(),
      valuesHash: 'sha256:' + randomUUID().replace(/-/g, ''),
      chart: 'astro-remote-execution-agent 2.3.3',
      steps: STEPS.map(([stepId, title], i) => ({ stepId, number: i + 1, title, state: 'pending', attempt: 0 })),
      approvals: [],
    };
    this.jobs.set(job.id, job);
    this.emit({ type: 'job.queued', job: structuredClone(job) });
    void this.run(job.id);
    return structuredClone(job);
  }

  private async run(id: string): Promise<void> {
    const job = this.jobs.get(id)!;
    job.state = 'running';
    job.startedAt ??= new Date().toISOString();
    this.emit({ type: 'job.started', job });
    for (const step of job.steps) {
      if (step.state === 'succeeded') continue;
      if ((job.state as string) === 'cancelled') return;
      if (step.stepId === 'release') {
        const a = job.approvals.find((x) => x.state === 'approved' && x.hash === job.valuesHash);
        if (!a) {
          step.state = 'waiting_approval';
          job.state = 'waiting_approval';
          const approval: ApprovalView = {
            id: `appr-${job.id}-${job.attempt}`,
            jobId: job.id,
            stepId: 'release',
            hash: job.valuesHash,
            title: 'Helm upgrade --install',
            state: 'pending',
            required: this.policy.required,
            approvals: [],
            expiresAt: new Date(Date.now() + this.policy.expiresInMs).toISOString(),
            facts: { chart: job.chart, namespace: 'astro-agent' },
            changedKeys: ['agents.image', 'secretBackend'],
            diffText: '+ agents.image: images.astronomer.cloud/re-agent:1.2.3',
          };
          job.approvals.push(approval);
          this.emit({ type: 'approval.requested', job, approval });
          this.settle(job);
          return;
        }
      }
      step.state = 'running';
      step.attempt += 1;
      step.startedAt = new Date().toISOString();
      this.emit({ type: 'step.started', job, stepId: step.stepId });
      await new Promise((r) => setTimeout(r, this.stepDelayMs));
      if (this.failOnce.delete(step.stepId)) {
        step.state = 'failed';
        step.error = 'helm: timed out waiting for the condition';
        job.state = 'failed';
        job.error = step.error;
        this.emit({ type: 'step.failed', job, stepId: step.stepId, error: step.error, logTail: 'Error: UPGRADE FAILED\ncontext deadline exceeded' });
        this.emit({ type: 'job.failed', job });
        this.settle(job);
        return;
      }
      step.state = 'succeeded';
      step.durationMs = 12;
      step.finishedAt = new Date().toISOString();
      this.emit({ type: 'step.finished', job, stepId: step.stepId });
    }
    job.state = 'succeeded';
    job.finishedAt = new Date().toISOString();
    this.emit({ type: 'job.succeeded', job });
    this.settle(job);
  }

  private settle(job: JobView) {
    for (const w of this.waiters.get(job.id) ?? []) w(structuredClone(job));
    this.waiters.delete(job.id);
  }
  settled(jobId: string): Promise<JobView> {
    const j = this.jobs.get(jobId)!;
    if (['succeeded', 'failed', 'cancelled', 'waiting_approval'].includes(j.state)) return Promise.resolve(structuredClone(j));
    return new Promise((r) => this.waiters.set(jobId, [...(this.waiters.get(jobId) ?? []), r]));
  }

  async decide(approvalId: string, input: { by: Actor; decision: 'approve' | 'reject'; hash: string; userGroups?: string[] }): Promise<DecisionResult> {
    const res = this.decideInner(approvalId, input);
    this.audit.push({ user: input.by.id, approvalId, result: res.ok ? input.decision : res.reason });
    return res;
  }
  private decideInner(approvalId: string, input: { by: Actor; decision: 'approve' | 'reject'; hash: string; userGroups?: string[] }): DecisionResult {
    const job = [...this.jobs.values()].find((j) => j.approvals.some((a) => a.id === approvalId));
    const a = job?.approvals.find((x) => x.id === approvalId);
    if (!job || !a) return { ok: false, reason: 'not_found', message: 'approval not found' };
    if (a.state !== 'pending') return { ok: false, reason: 'already_decided', message: `already ${a.state}` };
    if (a.hash !== input.hash) return { ok: false, reason: 'stale_hash', message: 'the values changed since this approval was requested' };
    const p = this.policy;
    const allowed = p.approvers.length === 0 || p.approvers.includes(input.by.id) || (input.userGroups ?? []).some((g) => p.approvers.includes(g));
    if (!allowed) return { ok: false, reason: 'not_approver', message: 'you are not an approver for this deployment' };
    if (!p.allowSelfApproval && input.by.id === job.requestedBy) return { ok: false, reason: 'self_approval', message: 'you cannot approve your own request' };
    if (a.approvals.some((x) => x.user === input.by.id)) return { ok: false, reason: 'duplicate', message: 'you already approved' };
    if (input.decision === 'reject') {
      a.state = 'rejected';
      a.rejectedBy = input.by.id;
      job.state = 'cancelled';
      this.emit({ type: 'approval.updated', job, approval: a });
      this.emit({ type: 'job.cancelled', job });
      this.settle(job);
      return { ok: true, approval: structuredClone(a) };
    }
    a.approvals.push({ user: input.by.id, at: new Date().toISOString() });
    if (a.approvals.length >= a.required) a.state = 'approved';
    this.emit({ type: 'approval.updated', job, approval: a });
    if (a.state === 'approved') {
      job.state = 'running';
      job.steps.find((s) => s.stepId === 'release')!.state = 'pending';
      void this.run(job.id);
    }
    return { ok: true, approval: structuredClone(a) };
  }

  async retry(jobId: string): Promise<JobView> {
    const job = this.jobs.get(jobId)!;
    if (job.state !== 'failed') throw new Error(`job ${jobId} is ${job.state}, only failed jobs can be retried`);
    job.attempt += 1;
    job.error = undefined;
    for (const s of job.steps) if (s.state === 'failed') s.state = 'pending';
    this.emit({ type: 'job.queued', job });
    void this.run(jobId);
    return structuredClone(job);
  }
  async cancel(jobId: string): Promise<JobView> {
    const job = this.jobs.get(jobId)!;
    job.state = 'cancelled';
    this.emit({ type: 'job.cancelled', job });
    this.settle(job);
    return structuredClone(job);
  }
}
