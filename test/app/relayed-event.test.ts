import { describe, expect, it } from 'vitest';
import { relayedEvent } from '../../src/app/job-worker.ts';
import type { ApprovalView, JobEvent, JobView } from '../../src/jobs/types.ts';

const approval = (id: string, diffText: string): ApprovalView => ({
  id, jobId: 'job_1', stepId: 'agents', hash: 'h', title: 'helm upgrade --install', state: 'pending', required: 1, approvals: [],
  expiresAt: '2026-12-01T00:00:00Z', facts: { chart: 'agent-1.0.0' }, changedKeys: ['Deployment/a/b (added)'], diffText,
});
const job = (approvals: ApprovalView[]) => ({ id: 'job_1', deployment: 'prod', state: 'running', approvals, steps: [] }) as unknown as JobView;

describe('events the worker sends to the Slack process', () => {
  it('leave out the approvals\' diff text and keep everything a Slack message shows', () => {
    const big = '+ '.repeat(50_000);
    const e: JobEvent = { type: 'approval.requested', job: job([approval('apr_1', big), approval('apr_2', '')]), approval: approval('apr_1', big) };
    const out = relayedEvent(e) as Extract<JobEvent, { type: 'approval.requested' }>;
    expect(out.approval).toEqual({ ...approval('apr_1', ''), diffText: '' });
    expect(out.job.approvals.map((a) => a.diffText)).toEqual(['', '']);
    expect(out.job.approvals[0]).toMatchObject({ facts: { chart: 'agent-1.0.0' }, changedKeys: ['Deployment/a/b (added)'], hash: 'h' });
    expect(JSON.stringify(out).length).toBeLessThan(2_000);
    expect(e.approval.diffText).toBe(big); // the worker's own listeners keep theirs
  });

  it('pass other events through unchanged', () => {
    const e: JobEvent = { type: 'step.progress', job: job([]), stepId: 'agents', message: 'waiting for pods' };
    expect(relayedEvent(e)).toEqual(e);
  });
});
