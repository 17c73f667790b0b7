/**
 * Issue 14 "The approval is a review, the thread is a story", end to end: the real Bolt app against the
 * Slack Web API emulator, the real engine and the eight real steps on a fake Kubernetes API (e2e-support.ts).
 * With SLACK_THREAD_DOC=<file> the success scenario also writes its thread as text (scripts/slack-thread.ts).
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { renderThread, messageText } from '../../src/devkit/slack-emulator/thread-text.ts';
import type { StoredMessage } from '../../src/devkit/slack-emulator/server.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { secretNames } from '../../src/spec/values.ts';
import type { JobView } from '../../src/jobs/types.ts';
import { APPROVER, CHANNEL, REQUESTER, SECRETS, until } from './harness.ts';
import { forms, scratch, startRealSlack, type RealSlack } from './e2e-support.ts';

const GROUP = 'S0APPROVERS';
const USER_APPROVER = 'U0APPROVER3';
const FINAL = ['succeeded', 'failed', 'cancelled'];

let kube: FakeKube;
const started: RealSlack[] = [];
beforeAll(async () => {
  kube = await startFakeKube({ dir: scratch('kube-review'), podReadyDelayMs: 50 });
});
afterAll(async () => {
  for (const s of started) await s.close().catch(() => undefined);
  await kube?.close();
});

async function setup(name: string): Promise<RealSlack> {
  // approvers: a user group and a single user, like RE_BOT_APPROVERS=S0APPROVERS,U0APPROVER3
  const s = await startRealSlack({ kube, name, env: { RE_BOT_APPROVERS: `${GROUP},${USER_APPROVER}` } });
  started.push(s);
  return s;
}

const settledTo = (s: RealSlack, id: string, states: string[], ms = 60_000) =>
  until(async () => { const j = (await s.rt.engine.job(id))!; return states.includes(j.state) && j; }, ms, `job ${id} in ${states.join('|')}`);
const all = (m: StoredMessage | undefined) => `${m?.text ?? ''}\n${JSON.stringify(m?.blocks ?? [])}`;
const isApproval = (m: StoredMessage) => JSON.stringify(m.blocks ?? []).includes('"approval_head"');

/**
 * The wizard, with the outbox held until the job waits for its approval: every post of the run so far
 * (parent, step replies, approval) is queued when sending starts, so the order they reach Slack in is the
 * outbox's choice, not a race with the steps.
 */
async function toApproval(s: RealSlack): Promise<{ j: JobView; parentTs: string; approval: StoredMessage }> {
  await s.h.rt.outbox.stop();
  await s.h.wizard(REQUESTER, s.pages());
  const j = await until(async () => (await s.rt.engine.latestJobFor(s.name)), 5000, 'the submitted job');
  const waiting = await settledTo(s, j.id, ['waiting_approval', ...FINAL]);
  expect(waiting.state, waiting.error).toBe('waiting_approval');
  s.h.rt.outbox.start();
  await s.h.rt.outbox.idle();
  const parentTs = s.h.parentTs(j.id)!;
  const approval = s.h.emu.replies(CHANNEL, parentTs).find(isApproval)!;
  expect(approval, 'the approval request in the thread').toBeDefined();
  return { j: (await s.rt.engine.job(j.id))!, parentTs, approval };
}

/** a raw Slack user id a reader would see as an id: not inside <@…> */
const rawIds = (text: string) => [...text.matchAll(/(^|[^@\w^])(U[A-Z0-9]{6,12})\b/g)].map((x) => x[2]);

describe('issue 14: the approval is a review, the thread is a story', () => {
  it('the approval mentions every approver, is broadcast, goes ahead of earlier replies, and shows the review without secrets; approve → final summary', async () => {
    const s = await setup('rv-approve');
    const { h } = s;
    const { j, parentTs, approval } = await toApproval(s);

    // who is asked, by whom, for what: in the notification text and in the message
    expect(approval.replyBroadcast).toBe(true);
    expect(approval.text).toContain(`<@${REQUESTER}> asks <!subteam^${GROUP}> or <@${USER_APPROVER}> to approve helm upgrade --install`);
    expect(approval.text).toContain(`for ${s.name}`);
    expect(all(parentOf(s, parentTs))).toContain(`waiting for approval from <!subteam^${GROUP}> or <@${USER_APPROVER}>`);

    // sent before step replies that were queued earlier (the outbox rows say what was queued when)
    const rows = h.store.sqlite.prepare(`SELECT id, key, ts FROM slack_outbox WHERE kind = 'post' AND ref IS NOT NULL`).all() as Array<{ id: number; key: string; ts: string }>;
    const ap = rows.find((r) => r.key.includes(':approval:'))!;
    const earlier = rows.filter((r) => r.key.includes(':step:') && r.id < ap.id);
    expect(earlier.length, 'step replies queued before the approval').toBeGreaterThan(0);
    for (const r of earlier) expect(Number(r.ts), r.key).toBeGreaterThan(Number(ap.ts));
    expect(h.emu.replies(CHANNEL, parentTs)[0].ts).toBe(approval.ts);

    // the review: chart, release/namespace new or existing, values by key path, Secrets, token URLs, short hash
    const review = messageText(approval);
    const spec = (await s.rt.lastSpec(s.name))!;
    const names = secretNames(spec);
    expect(review).toMatch(/Chart .+ — 🆕 new/);
    expect(review).toContain(`Release ${spec.cluster.release} — 🆕 new (helm install)`);
    expect(review).toMatch(new RegExp(`Namespace ${s.namespace} — (🆕 new|existing)`));
    expect(review).toMatch(/secretBackend: unset → airflow\.providers\.amazon\.aws\.secrets\.secrets_manager\.SecretsManagerBackend/);
    expect(review).toMatch(/xcomBackend: unset → \S*ObjectStorage\S*/i);
    expect(review).toMatch(/dagBundleConfigList: unset → .*GitDagBundle/);
    expect(review).toMatch(/commonEnv\[AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH\]\.value: unset → s3:\/\/aws_default@sales-xcom\/xcom/);
    for (const n of [names.agentToken, names.gitConnection]) expect(review).toContain(n);
    expect(review).toContain('Tokens are sent to');
    expect(review).toContain(spec.deployment.apiUrl);
    expect(review).toMatch(new RegExp(`approval hash ${j.approvals[0].hash.slice(0, 12)} `));
    for (const n of forms(Object.values(SECRETS))) expect(all(approval), 'no secret value in the review').not.toContain(n);
    // Approve asks for confirmation before it counts
    const approve = (approval.blocks as any[]).flatMap((b) => b.elements ?? []).find((e: any) => e.action_id === 're_approve');
    expect(approve.confirm).toMatchObject({ confirm: { text: 'Approve' } });

    // "View full diff": a modal with the whole redacted change, every line of it
    const opened = h.emu.callsTo('views.open').length;
    await h.press(APPROVER, approval.ts, 're_view_diff');
    await until(() => h.emu.callsTo('views.open').length > opened, 3000, 'the diff modal');
    const modal = h.emu.topView(APPROVER)!.view;
    const modalText = (modal.blocks as any[]).filter((b) => b.block_id?.startsWith('diff_') && b.type === 'section').map((b) => b.text.text.replace(/^```|```$/g, '')).join('\n');
    const shown = modalText.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const diffLines = j.approvals[0].diffText.split('\n');
    expect(diffLines.length).toBeGreaterThan(40); // long enough that the message alone could not hold it
    for (const line of diffLines) expect(shown, 'every diff line in the modal').toContain(line);
    for (const n of forms(Object.values(SECRETS))) expect(JSON.stringify(modal)).not.toContain(n);

    // approved by the group member → the final summary
    await h.press(APPROVER, approval.ts, 're_approve');
    const done = await settledTo(s, j.id, FINAL);
    expect(done.state, done.error).toBe('succeeded');
    await h.rt.outbox.idle();
    const final = h.emu.replies(CHANNEL, parentTs).at(-1)!;
    const finalText = messageText(final);
    const revision = done.steps.find((x) => x.stepId === 'agents')!.output!.helmRevision;
    expect(finalText).toContain(`Helm revision ${revision}`);
    expect(finalText).toContain(`approved by @${APPROVER}`);
    expect(finalText).toMatch(/took \d/);
    expect(finalText).toContain(`/re status ${s.name}`);
    const warnings = done.steps.flatMap((x) => x.warnings ?? []);
    expect(warnings.length, 'this setup ends with warnings').toBeGreaterThan(0);
    expect(finalText).toContain(`Action items (${warnings.length})`);
    for (const w of warnings) expect(finalText).toContain(w);
    expect(messageText(parentOf(s, parentTs))).toContain(`succeeded — ${warnings.length} action${warnings.length === 1 ? '' : 's'} for you`);
    // the parent never said "queued" after the approval: every edit it got
    const parentEdits = h.emu.callsTo('chat.update').filter((c) => c.args.ts === parentTs && c.status === 200).map((c) => String(c.args.text));
    const approvedAt = parentEdits.findIndex((t) => t.includes('waiting for approval'));
    expect(approvedAt).toBeGreaterThanOrEqual(0);
    expect(parentEdits.slice(approvedAt).filter((t) => / — queued /.test(t))).toEqual([]);

    // /re status: the live release beside the latest job, and a link to the thread
    const st = (await h.command(REQUESTER, `status ${s.name}`)).json;
    expect(st.text).toContain(`Live release: revision ${revision}`);
    expect(st.text).toContain(`/p${parentTs.replace('.', '')}|Open the job's thread`);

    for (const m of [parentOf(s, parentTs), ...h.emu.replies(CHANNEL, parentTs)]) expect(rawIds(all(m)), 'user ids only as mentions').toEqual([]);

    if (process.env.SLACK_THREAD_DOC) {
      const names = { [REQUESTER]: 'rita', [APPROVER]: 'alex', [USER_APPROVER]: 'sam', [GROUP]: 'platform-approvers' };
      writeFileSync(process.env.SLACK_THREAD_DOC, `# One complete setup thread\n\nGenerated by \`node bin/run-ts.mjs scripts/slack-thread.ts\` from the Slack emulator's recorded messages (test/slack/review.test.ts, real engine and steps on the fake Kubernetes API). User ids are shown as names.\n\n${renderThread(h.emu, CHANNEL, parentTs, names)}`);
    }
  }, 120_000);

  it('Reject asks for a reason, which the thread and the audit log show; refusals name the approvers', async () => {
    const s = await setup('rv-reject');
    const { h } = s;
    const { j, parentTs, approval } = await toApproval(s);
    // not an approver: told who is, in one sentence, without configuration names
    await h.press('U0OUTSIDER9', approval.ts, 're_approve');
    const refusal = await until(() => h.emu.ephemerals.find((e) => e.user === 'U0OUTSIDER9'), 5000, 'refusal');
    expect(refusal.text).toBe(`Your approval was not recorded: you are not an approver of this deployment; approvers are <!subteam^${GROUP}> or <@${USER_APPROVER}>.`);

    const reason = 'the namespace must be <astro-agents> & not this one';
    await h.reject(USER_APPROVER, approval.ts, reason);
    const failed = await settledTo(s, j.id, FINAL, 10_000);
    expect(failed.state).toBe('failed');
    await h.rt.outbox.idle();
    const escaped = 'the namespace must be &lt;astro-agents&gt; &amp; not this one';
    expect(all(h.emu.messages.get(`${CHANNEL}/${approval.ts}`))).toContain(`Rejected by <@${USER_APPROVER}>`);
    expect(all(h.emu.messages.get(`${CHANNEL}/${approval.ts}`))).toContain(escaped);
    const failure = h.emu.replies(CHANNEL, parentTs).find((m) => (m.blocks as any[])?.[0]?.block_id === 'failure')!;
    expect(all(failure)).toContain(escaped);
    expect(all(failure)).toContain(`rejected by <@${USER_APPROVER}>`);
    const decided = exportAudit(s.rt.store!, { jobId: j.id }).find((a) => a.action === 'approval.decided');
    expect(decided).toMatchObject({ actor: USER_APPROVER, decision: 'reject', details: expect.objectContaining({ reason }) });
    for (const m of [parentOf(s, parentTs), ...h.emu.replies(CHANNEL, parentTs)]) expect(rawIds(all(m)), 'user ids only as mentions').toEqual([]);
  }, 90_000);

  it('`/re cancel demo` cancels the deployment\'s running job; the outcome names who cancelled it', async () => {
    const s = await setup('demo');
    const { h } = s;
    const { j, parentTs } = await toApproval(s);
    await h.command(REQUESTER, 'cancel demo');
    const cancelled = await settledTo(s, j.id, ['cancelled'], 5000);
    expect(cancelled.error).toBe(`cancelled by ${REQUESTER}`);
    await h.rt.outbox.idle();
    const final = h.emu.replies(CHANNEL, parentTs).at(-1)!;
    expect(all(final)).toContain(`cancelled by <@${REQUESTER}>`);
    expect(all(parentOf(s, parentTs))).toContain(`cancelled by <@${REQUESTER}>`);
    for (const m of [parentOf(s, parentTs), ...h.emu.replies(CHANNEL, parentTs)]) expect(rawIds(all(m)), 'user ids only as mentions').toEqual([]);
  }, 90_000);
});

function parentOf(s: RealSlack, ts: string): StoredMessage {
  return s.h.emu.messages.get(`${CHANNEL}/${ts}`)!;
}
