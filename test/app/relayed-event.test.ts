import { describe, expect, it } from 'vitest';
import { outboxNudger, relayedEvent } from '../../src/app/job-worker.ts';
import type { ApprovalView, JobEvent, JobStepView, JobView } from '../../src/jobs/types.ts';

const approval = (id: string, diffText: string): ApprovalView => ({
  id, jobId: 'job_1', stepId: 'agents', hash: 'h', title: 'helm upgrade --install', state: 'pending', required: 1, approvals: [],
  expiresAt: '2026-12-01T00:00:00Z', facts: { chart: 'agent-1.0.0' }, changedKeys: ['Deployment/a/b (added)'], diffText,
});
const step = (stepId: string, output?: Record<string, unknown>): JobStepView => ({
  stepId, number: 1, title: stepId, state: 'succeeded', attempt: 1, durationMs: 1234, ...(output ? { output } : {}),
});
const job = (approvals: ApprovalView[], steps: JobStepView[] = []) =>
  ({ id: 'job_1', deployment: 'prod', state: 'running', attempt: 1, approvals, steps }) as unknown as JobView;

describe('events the worker sends to the Slack process (it renders Slack progress itself)', () => {
  it('an approval event: the approval without its diff text, the job without its approvals', () => {
    const big = '+ '.repeat(50_000);
    const e: JobEvent = { type: 'approval.requested', job: job([approval('apr_1', big), approval('apr_2', big)]), approval: approval('apr_1', big) };
    const out = relayedEvent(e) as Extract<JobEvent, { type: 'approval.requested' }>;
    expect(out.approval).toEqual({ ...approval('apr_1', ''), diffText: '' });
    expect(out.job.approvals).toEqual([]);
    expect(JSON.stringify(out).length).toBeLessThan(1_000);
    expect(e.approval.diffText).toBe(big); // the worker's own listeners (its progress rendering) keep theirs
    expect(e.job.approvals).toHaveLength(2);
  });

  it('a step event keeps that step (state and duration, for the metric) without its output, and no other step', () => {
    const e: JobEvent = { type: 'step.finished', job: job([], [step('prereqs', { big: 'x'.repeat(10_000) }), step('agents', { agentToken: { id: 't' } })]), stepId: 'prereqs' };
    const out = relayedEvent(e)!;
    expect(out.job.steps).toEqual([{ stepId: 'prereqs', number: 1, title: 'prereqs', state: 'succeeded', attempt: 1, durationMs: 1234 }]);
    expect(out.job).toMatchObject({ id: 'job_1', deployment: 'prod', state: 'running' });
    expect(JSON.stringify(out).length).toBeLessThan(500);
  });

  it('a job event keeps the job\'s state and error, no steps', () => {
    const e: JobEvent = { type: 'job.failed', job: { ...job([], [step('prereqs')]), state: 'failed', error: 'boom' } };
    expect(relayedEvent(e)!.job).toMatchObject({ id: 'job_1', state: 'failed', error: 'boom', steps: [], approvals: [] });
  });

  it('progress lines are not sent at all', () => {
    expect(relayedEvent({ type: 'step.progress', job: job([]), stepId: 'agents', message: 'waiting for pods' })).toBeUndefined();
  });
});

describe('the worker\'s "outbox rows written" nudge', () => {
  it('a burst of writes sends one nudge, the next burst after the gap another', async () => {
    let sent = 0;
    const nudge = outboxNudger(() => sent++, 30);
    for (let i = 0; i < 100; i++) nudge();
    expect(sent).toBe(0); // not inside the writer's turn
    await new Promise((r) => setTimeout(r, 10));
    expect(sent).toBe(1);
    nudge();
    nudge();
    await new Promise((r) => setTimeout(r, 5));
    expect(sent).toBe(1); // within the gap: waits
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toBe(2); // the burst's last write is always followed by a nudge
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toBe(2);
  });
});
