import type { Actor, ApprovalPolicy, ApprovalView, DecisionResult, JobEngine, JobEvent, JobView, SubmitInput } from '../../src/jobs/types.ts';
import { DeploymentLockedError } from '../../src/jobs/types.ts';
import { buildPlan, EXECUTION_ORDER } from '../../src/spec/plan.ts';
import { parseSpec, type SetupSpec } from '../../src/spec/schema.ts';

/** A complete, valid spec input (secrets as env refs); `sampleSpec('x')` parses it under another name. */
export const SAMPLE_SPEC_INPUT = {
  deployment: {
    name: 'sales-prod',
    id: 'clx0abc123',
    organizationId: 'org0abc123',
    workspaceId: 'wsp0abc123',
    namespace: 'cosmic-nebula-1234',
    apiUrl: 'https://clx0abc123.api.astronomer.run/remote',
    airflowApiUrl: 'https://clx0abc123.astronomer.run/api/v2',
    apiToken: { env: 'ASTRO_API_TOKEN' },
  },
  cluster: { namespace: 'astro-agent', chart: { version: '2.3.3' } },
  agent: { image: 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.2.3', token: { env: 'AGENT_TOKEN' } },
  xcomBackend: { type: 's3', bucket: 'sales-xcom' },
};

export function sampleSpec(name = 'sales-prod'): SetupSpec {
  const r = parseSpec({ ...SAMPLE_SPEC_INPUT, deployment: { ...SAMPLE_SPEC_INPUT.deployment, name } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

/**
 * In-memory JobEngine for Slack tests, shaped like the real one: the eight step ids and titles from
 * buildPlan, run in execution order, non-applicable steps skipped at submit, an approval inside
 * `agents` (the Helm upgrade), policy checks in the real engine's order, one progress line per step.
 */
export class FakeEngine implements JobEngine {
  jobs = new Map<string, JobView>();
  audit: Array<{ user: string; approvalId: string; result: string }> = [];
  private listeners = new Set<(e: JobEvent) => void>();
  private waiters = new Map<string, Array<(j: JobView) => void>>();
  /** step ids that fail once (the next attempt succeeds) */
  failOnce = new Set<string>();
  stepDelayMs = 1;
  seq = 0;
  /** every spec submitted, for assertions */
  submitted: SetupSpec[] = [];

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
  async job(id: string) {
    const j = this.jobs.get(id);
    return j && structuredClone(j);
  }
  async latestJobFor(deployment: string) {
    const j = [...this.jobs.values()].filter((x) => x.deployment === deployment).at(-1);
    return j && structuredClone(j);
  }

  async submit(input: SubmitInput): Promise<JobView> {
    const name = input.spec.deployment.name;
    const holder = [...this.jobs.values()].find((j) => j.deployment === name && !TERMINAL.includes(j.state));
    if (holder) throw new DeploymentLockedError(name, { jobId: holder.id, requestedBy: holder.requestedBy, since: holder.createdAt, state: holder.state });
    this.submitted.push(input.spec);
    const plan = buildPlan(input.spec);
    const job: JobView = {
      id: `job-${++this.seq}`,
      deployment: name,
      state: 'queued',
      attempt: 1,
      requestedBy: input.requestedBy.id,
      origin: input.origin,
      createdAt: new Date().toISOString(),
      valuesHash: plan.valuesHash,
      chart: plan.chart,
      steps: plan.steps.map((s) => ({ stepId: s.id, number: s.number, title: s.title, state: s.applies ? 'pending' : 'skipped', summary: s.applies ? undefined : s.skipReason, attempt: 0 })),
      approvals: [],
    };
    this.jobs.set(job.id, job);
    this.emit({ type: 'job.queued', job });
    void this.run(job.id);
    return structuredClone(job);
  }

  private ordered(job: JobView) {
    return [...job.steps].sort((a, b) => EXECUTION_ORDER.indexOf(a.stepId as never) - EXECUTION_ORDER.indexOf(b.stepId as never));
  }

  private async run(id: string): Promise<void> {
    const job = this.jobs.get(id)!;
    job.state = 'running';
    job.startedAt ??= new Date().toISOString();
    this.emit({ type: 'job.started', job });
    for (const step of this.ordered(job)) {
      if (['succeeded', 'skipped', 'warned'].includes(step.state)) continue;
      if (job.state !== 'running') return;
      step.state = 'running';
      step.attempt += 1;
      step.startedAt = new Date().toISOString();
      this.emit({ type: 'step.started', job, stepId: step.stepId });
      this.emit({ type: 'step.progress', job, stepId: step.stepId, message: `working on ${step.title}` });
      if (step.stepId === 'agents' && !job.approvals.some((x) => x.state === 'approved' && x.hash === job.valuesHash)) {
        this.requestApproval(job, step.stepId);
        return;
      }
      await new Promise((r) => setTimeout(r, this.stepDelayMs));
      if ((job.state as string) !== 'running') return;
      if (this.failOnce.delete(step.stepId)) {
        step.state = 'failed';
        step.error = 'helm: timed out waiting for the condition';
        job.state = 'failed';
        job.error = `${step.title}: ${step.error}`;
        job.finishedAt = new Date().toISOString();
        this.emit({ type: 'step.failed', job, stepId: step.stepId, error: step.error, logTail: 'Error: UPGRADE FAILED\ncontext deadline exceeded' });
        this.emit({ type: 'job.failed', job });
        this.settle(job);
        return;
      }
      step.state = 'succeeded';
      step.durationMs = 12;
      step.summary = `${step.title} done`;
      step.finishedAt = new Date().toISOString();
      if (step.stepId === 'agents') step.output = { helmRevision: 1 };
      this.emit({ type: 'step.finished', job, stepId: step.stepId });
    }
    job.state = 'succeeded';
    job.finishedAt = new Date().toISOString();
    this.emit({ type: 'job.succeeded', job });
    this.settle(job);
  }

  private requestApproval(job: JobView, stepId: string) {
    const step = job.steps.find((s) => s.stepId === stepId)!;
    step.state = 'waiting_approval';
    job.state = 'waiting_approval';
    const approval: ApprovalView = {
      id: `appr-${job.id}-${job.approvals.length + 1}`,
      jobId: job.id,
      stepId,
      hash: job.valuesHash,
      title: 'helm upgrade --install astro-agent',
      state: 'pending',
      required: this.policy.required,
      approvals: [],
      expiresAt: new Date(Date.now() + this.policy.expiresInMs).toISOString(),
      facts: { chart: job.chart, release: 'astro-agent in astro-agent', image: 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.2.3', change: 'first install' },
      changedKeys: ['image', 'secretBackend', 'xcomBackend'],
      diffText: '+ image: images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.2.3',
    };
    job.approvals.push(approval);
    this.emit({ type: 'approval.requested', job, approval });
    this.settle(job);
  }

  private settle(job: JobView) {
    for (const w of this.waiters.get(job.id) ?? []) w(structuredClone(job));
    this.waiters.delete(job.id);
  }
  settled(jobId: string): Promise<JobView> {
    const j = this.jobs.get(jobId)!;
    if ([...TERMINAL, 'waiting_approval'].includes(j.state)) return Promise.resolve(structuredClone(j));
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
    if (a.state !== 'pending') return { ok: false, reason: 'already_decided', message: `this approval is already ${a.state}` };
    if (a.hash !== input.hash) return { ok: false, reason: 'stale_hash', message: 'the values changed since this approval was requested' };
    const p = this.policy;
    if (!p.allowSelfApproval && input.by.id === job.requestedBy) return { ok: false, reason: 'self_approval', message: 'the requester cannot approve their own job' };
    const allowed = p.approvers.length === 0 || [input.by.id, ...(input.userGroups ?? [])].some((g) => p.approvers.includes(g));
    if (!allowed) return { ok: false, reason: 'not_approver', message: 'you are not on the approver list for this deployment' };
    if (a.approvals.some((x) => x.user === input.by.id)) return { ok: false, reason: 'duplicate', message: 'you already voted on this request' };
    const step = job.steps.find((s) => s.stepId === a.stepId)!;
    if (input.decision === 'reject') {
      a.state = 'rejected';
      a.rejectedBy = input.by.id;
      this.emit({ type: 'approval.updated', job, approval: a });
      step.state = 'failed';
      step.error = `rejected by ${input.by.id}: ${a.title}`;
      job.state = 'failed';
      job.error = step.error;
      this.emit({ type: 'job.failed', job });
      this.settle(job);
      return { ok: true, approval: structuredClone(a) };
    }
    a.approvals.push({ user: input.by.id, at: new Date().toISOString() });
    if (a.approvals.length >= a.required) a.state = 'approved';
    this.emit({ type: 'approval.updated', job, approval: a });
    if (a.state === 'approved') {
      job.state = 'queued';
      step.state = 'pending';
      void this.run(job.id);
    }
    return { ok: true, approval: structuredClone(a) };
  }

  async retry(jobId: string, _by?: Actor): Promise<JobView> {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} not found`);
    if (job.state !== 'failed' && job.state !== 'cancelled') throw new Error(`job ${jobId} is ${job.state}; only failed or cancelled jobs can be retried`);
    job.attempt += 1;
    job.error = undefined;
    job.finishedAt = undefined;
    job.state = 'queued';
    for (const s of job.steps) if (['failed', 'cancelled', 'running', 'waiting_approval'].includes(s.state)) s.state = 'pending';
    this.emit({ type: 'job.queued', job });
    void this.run(jobId);
    return structuredClone(job);
  }
  async cancel(jobId: string, by?: Actor): Promise<JobView> {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} not found`);
    // like the real engine: a finished (or failed) job cannot be cancelled
    if (TERMINAL.includes(job.state)) return structuredClone(job);
    job.state = 'cancelled';
    job.error = `cancelled by ${by?.id ?? 'someone'}`;
    job.finishedAt = new Date().toISOString();
    for (const s of job.steps) if (['running', 'waiting_approval'].includes(s.state)) s.state = 'cancelled';
    for (const a of job.approvals) if (a.state === 'pending') a.state = 'superseded';
    this.emit({ type: 'job.cancelled', job });
    this.settle(job);
    return structuredClone(job);
  }
}
