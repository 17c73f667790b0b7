import { describe, expect, it } from 'vitest';
import { validateBlocks, validateView } from '../../src/devkit/slack-emulator/limits.ts';
import { approvalMessage, checklistMessage, failureMessage, finalMessage, fullDiffView, stepResultMessage } from '../../src/slack/blocks.ts';
import { valuesDiff } from '../../src/checklist/review.ts';
import { mentionIds, ordinal, pages } from '../../src/slack/text.ts';
import type { ApprovalReview } from '../../src/checklist/types.ts';
import { reportFromJob, statusMessage } from '../../src/slack/status-blocks.ts';
import { WizardSessions } from '../../src/slack/wizard.ts';
import { pageView } from '../../src/slack/wizard-view.ts';
import { PAGE_IDS, PAGES } from '../../src/slack/wizard-fields.ts';
import type { ApprovalView, JobView } from '../../src/jobs/types.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import { sampleSpec } from '../support/fake-engine.ts';

const long = (n: number) => 'x'.repeat(n);
function job(over: Partial<JobView> = {}): JobView {
  const plan = buildPlan(sampleSpec());
  return {
    id: 'job_1', deployment: 'sales-prod', state: 'failed', attempt: 3, requestedBy: 'U0REQUESTR', origin: { kind: 'slack', channel: 'C1' },
    createdAt: '2026-01-01T00:00:00Z', startedAt: '2026-01-01T00:00:01Z', valuesHash: plan.valuesHash, chart: plan.chart, error: long(10_000),
    steps: plan.steps.map((s) => ({ stepId: s.id, number: s.number, title: s.title, state: 'running', attempt: 1, summary: long(5000), warnings: [long(900), long(900)], durationMs: 1234 })),
    approvals: [], ...over,
  };
}
const approval = (over: Partial<ApprovalView> = {}): ApprovalView => ({
  id: 'apr_1', jobId: 'job_1', stepId: 'agents', hash: 'f'.repeat(64), title: long(400), state: 'pending', required: 2,
  approvals: [{ user: 'U0APPROVER2', at: '2026-01-01T00:00:00Z' }], expiresAt: '2026-01-02T00:00:00Z',
  facts: Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`fact${i}`, long(3000)])),
  changedKeys: Array.from({ length: 500 }, (_, i) => `agents.workers[${i}].resources.limits.memory`), diffText: long(50_000) + '```', ...over,
});

/** every mrkdwn text object in blocks (plain_text, e.g. a confirm dialog, is shown literally) */
function mrkdwnTexts(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(mrkdwnTexts);
  if (!v || typeof v !== 'object') return [];
  const o = v as { type?: string; text?: unknown };
  return [...(o.type === 'mrkdwn' && typeof o.text === 'string' ? [o.text] : []), ...Object.values(o).flatMap(mrkdwnTexts)];
}

describe('messages stay within Block Kit limits whatever the input', () => {
  it('parent, step result, approval (pending and decided), failure, status', () => {
    const j = job();
    const messages = [
      checklistMessage(j, long(2000)),
      stepResultMessage(j, 'agents'),
      approvalMessage(j, approval()),
      approvalMessage(j, approval({ state: 'rejected', rejectedBy: 'U0APPROVER3' }), '2026-01-01T01:00:00Z'),
      failureMessage(j, 'agents', long(10_000), Array.from({ length: 500 }, (_, i) => `line ${i} ${long(100)}`).join('\n')),
      statusMessage(reportFromJob(j)),
    ];
    for (const m of messages) {
      expect(validateBlocks(m.blocks, 50)).toEqual([]);
      expect(m.text.length).toBeLessThanOrEqual(4000);
    }
    const pending = JSON.stringify(messages[2].blocks);
    expect(pending).toContain('1 of 2 approvals');
    expect(pending).toContain(`apr_1|${'f'.repeat(64)}`);
    expect(JSON.stringify(messages[3].blocks)).not.toContain('re_approve');
  });

  it('user text is escaped in mrkdwn (no mentions or links smuggled in)', () => {
    const m = checklistMessage(job({ deployment: '<!channel> & <http://evil|x>' }));
    expect(JSON.stringify(m.blocks)).toContain('&lt;!channel&gt; &amp; &lt;http://evil|x&gt;');
  });

  it('a log tail, a failure message and a deployment name cannot ping the channel or smuggle a link, in blocks or the fallback text', () => {
    const evil = '<!channel> & <https://evil.example|click here>';
    const logTail = `Pulling image\nError: ${evil}\n\`\`\`\n<@U0BOSS> see <!here>`;
    const j = job({ deployment: `prod ${evil}` });
    const messages = [
      failureMessage(j, 'agents', `helm failed: R&D quota <exceeded> ${evil}`, logTail),
      checklistMessage(j, evil),
      stepResultMessage(job({ steps: j.steps.map((s) => ({ ...s, title: `${s.title} ${evil}`, summary: evil, warnings: [evil] })) }), 'agents'),
      approvalMessage(j, approval({ title: `Install ${evil}`, diffText: `+ image: ${evil}` })),
    ];
    for (const m of messages) {
      // every text a Slack client renders as mrkdwn: fallback text, sections, contexts, fields
      const texts = [m.text, ...mrkdwnTexts(m.blocks)];
      expect(texts.length).toBeGreaterThan(1);
      for (const t of texts) {
        expect(t).not.toMatch(/<!(channel|here|everyone)|<@U0BOSS|<https?:/); // the requester mention and <!date…> are ours
        expect(t).not.toMatch(/&(?!amp;|lt;|gt;)/);
      }
    }
    const tailBlock = JSON.stringify(messages[0].blocks.find((b) => b.block_id === 'failure_tail'));
    expect(tailBlock).toContain('&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;');
    expect(tailBlock.match(/```/g)).toHaveLength(2); // the tail's own ``` does not close the block early
    expect(messages[0].text).toContain('R&amp;D quota &lt;exceeded&gt;');
  });

  it('every wizard page, with every choice, is a valid modal (from the session as stored)', async () => {
    const sessions = new WizardSessions();
    const s = (await sessions.get((await sessions.create({ channel: 'C1', user: 'U1', previous: sampleSpec() })).key))!;
    for (const page of PAGES) {
      const choices = page.items.flatMap((i) => ('select' in i ? [i] : []));
      const combos = choices.length ? choices.flatMap((c) => (c.select.options ?? []).map(([v]) => ({ [c.select.path]: v }))) : [{}];
      for (const combo of combos) {
        Object.assign(s.values, combo);
        const view = pageView(s, page.id);
        expect(validateView(view), `${page.id} ${JSON.stringify(combo)}`).toEqual([]);
      }
    }
    expect(validateView(pageView(s, 'review'))).toEqual([]);
    expect(PAGE_IDS).toHaveLength(7);
  });

  it('the step 7 review names the server image deploy: Deployment, repository, a deploy created and finalized', () => {
    const review: ApprovalReview = {
      chart: { name: 'astro-remote-execution-agent', version: '2.3.3', state: 'existing' },
      release: { name: 'astro-agent', namespace: 'ns', state: 'existing', revision: 1 },
      namespace: { name: 'ns', state: 'existing' },
      values: [],
      secrets: [],
      server: { deploymentId: 'cldep0000000001', build: './Dockerfile with buildah for linux/amd64 (dags/ excluded)', push: 'cl1.registry.astronomer.run/clorg/cldep0000000001:<deploy tag>' },
      tokenUrls: ['cl1.registry.astronomer.run (registry login as cli: deployment.apiToken)'],
    };
    const m = approvalMessage(job(), approval({ stepId: 'deploy', review }));
    expect(validateBlocks(m.blocks, 50)).toEqual([]);
    expect(JSON.stringify(m.blocks)).toContain('*Server image* builds ./Dockerfile with buildah for linux/amd64 (dags/ excluded) → creates a deploy on Astro Deployment `cldep0000000001`, pushes `cl1.registry.astronomer.run/clorg/cldep0000000001:&lt;deploy tag&gt;`, finalizes it and waits for HEALTHY');
  });

  it('a huge review, a long diff and hundreds of warnings still fit: "and N more", the modal pages every line', () => {
    const evil = '<!channel> & <https://evil.example|x>';
    const review: ApprovalReview = {
      chart: { name: 'astro-remote-execution-agent', version: '2.3.3', state: 'existing' },
      release: { name: 'astro-agent', namespace: 'ns', state: 'existing', revision: 7 },
      namespace: { name: 'ns', state: 'existing' },
      values: [
        ...valuesDiff({ auth: { token: 'old-tok' }, image: 'a:1' }, { auth: { token: 'new-tok' }, image: `b:2 ${evil}` }),
        ...Array.from({ length: 2000 }, (_, i) => ({ path: `workers[${i}].resources.limits.memory`, old: '1Gi', new: long(200) })),
      ],
      secrets: Array.from({ length: 300 }, (_, i) => ({ name: `secret-${i}`, keys: ['token'], action: 'update' as const, hash: 'abcdef123456' })),
      tokenUrls: ['https://api.example/x receives the agent token'],
    };
    const diffText = Array.from({ length: 5000 }, (_, i) => `line ${i} ${i % 97 === 0 ? long(4000) : 'x'}`).join('\n');
    const j = job({ state: 'succeeded', steps: job().steps.map((x) => ({ ...x, state: 'warned', warnings: Array.from({ length: 40 }, (_, i) => `w${i} ${long(300)}`) })) });
    const m = approvalMessage(j, approval({ review, diffText, approvers: ['S0PLATFORM', 'U0SAM1234'] }));
    const fin = finalMessage(j);
    for (const x of [m, fin]) expect(validateBlocks(x.blocks, 50)).toEqual([]);
    const text = JSON.stringify(m.blocks);
    expect(text).toContain('`auth.token`: «secret, changed»');
    expect(text).not.toContain('new-tok');
    expect(text).not.toContain('old-tok');
    expect(text).toMatch(/…and \d+ more keys/);
    expect(text).toMatch(/…and \d+ more Secrets/);
    expect(text).not.toMatch(/<!channel|<https:/);
    expect(m.text).toContain('<@U0REQUESTR> asks <!subteam^S0PLATFORM> or <@U0SAM1234> to approve');
    expect(JSON.stringify(fin.blocks)).toMatch(/Action items \(320\)/);
    expect(JSON.stringify(fin.blocks)).toMatch(/…and \d+ more action items/);

    const view = fullDiffView(j, approval({ diffText: diffText.slice(0, 60_000), review: undefined }));
    expect(validateView(view)).toEqual([]);
    const pagesText = (view.blocks as any[]).filter((b) => b.type === 'section').map((b) => b.text.text.slice(3, -3)).join('\n').replace(/↩\n/g, '');
    for (const line of diffText.slice(0, 60_000).split('\n')) expect(pagesText).toContain(line);
  });

  it('a failure says what to do and what Retry will do; a cancelled outcome names who cancelled it', () => {
    const j = job({ attempt: 1, steps: job().steps.map((x) => ({ ...x, state: x.stepId === 'prerequisites' ? 'succeeded' : x.stepId === 'agents' ? 'failed' : 'pending' })) });
    const f = JSON.stringify(failureMessage(j, 'agents', 'namespace astro does not exist', undefined, 'create it <now> & retry').blocks);
    expect(f).toContain('What to do:* create it &lt;now&gt; &amp; retry');
    expect(f).toMatch(/Retry\* runs attempt 2 from step 2\. [^;]+; the 1 finished step is not repeated/);
    const c = finalMessage(job({ state: 'cancelled', error: 'cancelled by U0REQUESTR' }));
    expect(c.text).toBe('Setup of sales-prod cancelled by <@U0REQUESTR>');
    expect(JSON.stringify(c.blocks)).toContain('/re retry job_1');
  });

  it('pages cut at line ends; raw user ids become mentions; ordinals', () => {
    const p = pages(['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(25)].join('\n'), 22);
    expect(p).toEqual(['a'.repeat(10) + '\n' + 'b'.repeat(10), 'c'.repeat(21) + '↩', 'cccc']);
    expect(mentionIds('cancelled by U0REQUESTR, rejected by <@U0APPROVER2> (UNCHANGED, W0ABC1234)')).toBe('cancelled by <@U0REQUESTR>, rejected by <@U0APPROVER2> (UNCHANGED, <@W0ABC1234>)');
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 112].map(ordinal)).toEqual(['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '112th']);
  });
});
