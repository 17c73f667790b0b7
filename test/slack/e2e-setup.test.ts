/**
 * Issue 5 "Done when", end to end through Slack: the real Bolt app against the Slack Web API emulator,
 * the REAL job engine with the eight REAL checklist steps (src/app/wire.ts createRuntime), real helm into
 * one shared fake Kubernetes API, the Astro/Airflow stand-ins, SQLite on disk and the AES-GCM secret box.
 * Every scenario uses its own deployment name (= agent namespace = resource prefix), DB and emulator.
 * How the wizard's spec reaches the stand-ins: see test/slack/e2e-support.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { exportAudit } from '../../src/store/audit.ts';
import { sealedSecrets } from '../../src/store/schema.ts';
import { secretNames } from '../../src/spec/values.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';
import type { JobView } from '../../src/jobs/types.ts';
import type { StoredMessage } from '../../src/devkit/slack-emulator/server.ts';
import { APPROVER, CHANNEL, REQUESTER, SECRETS, until, type Harness } from './harness.ts';
import { captureProcessLogs, dbBytes, hitsIn, LOCAL_CHART, scratch, startRealSlack, type RealSlack } from './e2e-support.ts';
import { jobView } from '../../src/jobs/views.ts';

process.env.LOG_LEVEL ??= 'debug'; // the secrets scan reads the most verbose logs
const processLogs = captureProcessLogs();
const TYPED_SECRETS = Object.values(SECRETS);
const FINAL = ['succeeded', 'failed', 'cancelled'];

let kube: FakeKube;
/** every setup this file started: closed at the end, and scanned for secrets by scenario 5 */
const started: RealSlack[] = [];
const seen: Array<{ h: Harness; dbPath: string; events: string[] }> = [];

beforeAll(async () => {
  kube = await startFakeKube({ dir: scratch('kube'), podReadyDelayMs: 50 });
});
afterAll(async () => {
  for (const s of started) await s.close().catch(() => undefined);
  await kube?.close();
});

async function setup(name: string, o: Partial<Parameters<typeof startRealSlack>[0]> = {}): Promise<RealSlack> {
  const s = await startRealSlack({ kube, name, ...o });
  started.push(s);
  seen.push({ h: s.h, dbPath: s.dbPath, events: s.events });
  return s;
}

const job = (s: RealSlack, id: string) => jobView(s.rt.store!, id)!;
const settledTo = (s: RealSlack, id: string, states: string[], ms = 60_000) =>
  until(() => { const j = job(s, id); return states.includes(j.state) && j; }, ms, `job ${id} in ${states.join('|')}`);

/** `/re setup` → the wizard pages → the job the app submitted, once it waits for the Helm approval */
async function wizardToApproval(s: RealSlack): Promise<{ j: JobView; parentTs: string; approval: StoredMessage }> {
  await s.h.wizard(REQUESTER, s.pages());
  const j = await until(async () => (await s.rt.engine.latestJobFor(s.name)), 5000, 'the submitted job');
  const waiting = await settledTo(s, j.id, ['waiting_approval', ...FINAL]);
  expect(waiting.state, waiting.error).toBe('waiting_approval');
  await s.h.rt.outbox.idle();
  const parentTs = s.h.parentTs(j.id)!;
  expect(parentTs).toBeDefined();
  const approval = s.h.emu.replies(CHANNEL, parentTs).find((m) => JSON.stringify(m.blocks).includes('"re_approve"'))!;
  expect(approval, 'approval request in the thread').toBeDefined();
  return { j, parentTs, approval };
}

const blocksText = (m: StoredMessage | undefined) => JSON.stringify(m?.blocks ?? []);
const parentOf = (h: Harness, ts: string) => h.emu.messages.get(`${CHANNEL}/${ts}`)!;

/** the parent's checklist lines, parsed: what a reader of the channel sees for each of the eight steps */
function checklist(m: StoredMessage): Array<{ n: number; title: string; state: string }> {
  const steps = (m.blocks as any[]).find((b) => b.block_id === 'steps').text.text as string;
  return steps.split('\n').map((line) => {
    const x = /^\S+ (\d)\. (.+?) — ([a-z ]+?)(?: \(.+?\))?(?: · .*)?$/.exec(line);
    if (!x) throw new Error(`unparsable checklist line: ${line}`);
    return { n: Number(x[1]), title: x[2].replace(/&amp;/g, '&'), state: x[3].replace(/ /g, '_') };
  });
}

/** the parent shows all eight steps in exactly the engine's final states */
function expectFinalChecklist(h: Harness, parentTs: string, v: JobView): void {
  const lines = checklist(parentOf(h, parentTs));
  expect(lines.map((l) => l.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  for (const s of v.steps) {
    const l = lines.find((x) => x.n === s.number)!;
    expect(l, s.stepId).toMatchObject({ title: s.title, state: s.state });
    expect(['succeeded', 'warned', 'skipped'], `${s.stepId} is final`).toContain(l.state);
  }
  const head = (parentOf(h, parentTs).blocks as any[]).find((b) => b.block_id === 'head').text.text;
  expect(head).toContain(`— ${v.state}`);
}

/** no message of the job outside its thread: exactly one parent in the channel */
function expectSingleThread(h: Harness, parentTs: string): void {
  expect(h.emu.parents(CHANNEL).map((m) => m.ts)).toEqual([parentTs]);
  const posts = h.emu.callsTo('chat.postMessage').filter((c) => c.status === 200 && c.response.ok);
  for (const p of posts) if (p.response.ts !== parentTs) expect(p.args.thread_ts, String(p.args.text)).toBe(parentTs);
}

describe('issue 5, real engine + real steps on the fake Kubernetes API', () => {
  it('1. wizard → job → self-approval refused → second user approves → success; /re status; agent-token Secret; sealed secrets erased', async () => {
    const s = await setup('e2e-s1-approve');
    const { h } = s;
    const { j, parentTs, approval } = await wizardToApproval(s);
    // the spec the wizard built is the user's (stored refs only); the engine got the stand-in chart + Astro URL
    expect(s.engine.submitted[0].deployment.apiToken).toMatchObject({ stored: expect.stringMatching(/^sec_/) });
    expect(s.engine.submitted[0].cluster.chart).toMatchObject({ version: '2.3.3' });

    // the requester's own click: refused, ephemeral, audited; the job keeps waiting
    await h.press(REQUESTER, approval.ts, 're_approve');
    const refusal = await until(() => h.emu.ephemerals.find((e) => e.user === REQUESTER), 5000, 'self-approval refusal');
    expect(refusal.channel).toBe(CHANNEL);
    expect(refusal.text).toMatch(/cannot approve your own request/);
    expect(exportAudit(s.rt.store!, { jobId: j.id }).some((a) => a.action === 'approval.refused' && a.result === 'self_approval' && a.actor === REQUESTER)).toBe(true);
    expect(job(s, j.id).state).toBe('waiting_approval');

    await h.press(APPROVER, approval.ts, 're_approve');
    const done = await settledTo(s, j.id, FINAL, 60_000);
    expect(done.state, done.error).toBe('succeeded');
    await h.rt.outbox.idle();

    // the parent: all eight steps in their final states; one thread
    expectFinalChecklist(h, parentTs, done);
    expectSingleThread(h, parentTs);
    expect(done.steps.find((x) => x.stepId === 'deploy')!.state).toBe('skipped'); // no client image in the wizard
    // the thread: one reply per step result (each step that ran), the approval, the final message
    const replies = h.emu.replies(CHANNEL, parentTs);
    const results = replies.filter((m) => (m.blocks as any[])?.[0]?.block_id === 'result');
    const ran = done.steps.filter((x) => x.startedAt);
    expect(results).toHaveLength(ran.length);
    expect(new Set(results.map((r) => r.text)).size).toBe(ran.length);
    for (const x of ran) expect(results.some((r) => String(r.text).startsWith(`${x.number}. ${x.title}`)), x.stepId).toBe(true);
    expect(replies).toHaveLength(ran.length + 2);
    expect(replies.length + 1).toBeLessThanOrEqual(STEP_IDS.length + 4);
    expect(blocksText(h.emu.messages.get(`${CHANNEL}/${approval.ts}`))).toContain(`Approved by <@${APPROVER}>`);
    expect(blocksText(replies.at(-1))).toContain('succeeded');

    // /re status: every step, the approver, the Helm revision
    const st = (await h.command(REQUESTER, `status ${s.name}`)).json;
    for (const x of done.steps) expect(st.text).toContain(`${x.number}. ${x.title} — ${x.state}`);
    expect(st.text).toContain(`approved by <@${APPROVER}>`);
    expect(st.text).toContain(`Helm revision: ${done.steps.find((x) => x.stepId === 'agents')!.output!.helmRevision}`);
    expect(st.text).toMatch(/Helm revision: 1\b/);
    expect(st.text).toContain('Lock: free');
    expect(st.text).toContain(`Chart: local chart ${LOCAL_CHART}`);

    // the cluster: the agent token typed in the wizard is in the agent-token Secret; the components exist
    const spec = (await s.rt.lastSpec(s.name))!;
    const secret = kube.get('v1', 'Secret', s.namespace, secretNames(spec).agentToken);
    expect(Buffer.from(secret.data.token, 'base64').toString()).toBe(SECRETS.agentToken);
    const git = kube.get('v1', 'Secret', s.namespace, secretNames(spec).gitConnection);
    expect(Object.values(git.data as Record<string, string>).map((v) => Buffer.from(v, 'base64').toString()).join('\n')).toContain(SECRETS.gitToken);
    expect(kube.list('apps/v1', 'Deployment', s.namespace).map((d) => d.metadata.name)).toEqual(expect.arrayContaining([`${s.name}-worker-default-worker`, `${s.name}-dag-processor`]));

    // afterwards the sealed secrets are erased (rows stay for the audit trail, without ciphertext)
    const rows = s.rt.store!.db.select().from(sealedSecrets).all();
    expect(rows).toHaveLength(4); // deployment API token, agent token, git user, git token
    for (const r of rows) expect(r, r.purpose).toMatchObject({ ciphertext: null, iv: null, tag: null, erasedAt: expect.any(String) });
  }, 90_000);

  it('2. a click by someone not on the approver list is refused (ephemeral + audit) and the job keeps waiting', async () => {
    const OUTSIDER = 'U0OUTSIDER9';
    const s = await setup('e2e-s2-approvers', { env: { RE_BOT_APPROVERS: APPROVER } });
    const { h } = s;
    const { j, approval } = await wizardToApproval(s);
    for (const who of [OUTSIDER, 'U0APPROVER3']) {
      await h.press(who, approval.ts, 're_approve');
      const e = await until(() => h.emu.ephemerals.find((x) => x.user === who), 5000, `refusal for ${who}`);
      expect(e.channel).toBe(CHANNEL);
      expect(e.text).toMatch(/not recorded.*not an approver/);
      expect(exportAudit(s.rt.store!, { jobId: j.id }).some((a) => a.action === 'approval.refused' && a.result === 'not_approver' && a.actor === who), who).toBe(true);
    }
    // nothing moved: still waiting, the approval still offers its buttons with 0 of 1
    await new Promise((r) => setTimeout(r, 300)); // > 5 engine polls
    await h.rt.outbox.idle();
    expect(job(s, j.id)).toMatchObject({ state: 'waiting_approval' });
    expect(job(s, j.id).approvals[0]).toMatchObject({ state: 'pending', approvals: [] });
    const msg = blocksText(h.emu.messages.get(`${CHANNEL}/${approval.ts}`));
    expect(msg).toContain('0 of 1 approvals');
    expect(msg).toContain('"re_approve"');
    // nothing was posted in the channel for the refusals: only ephemerals
    expectSingleThread(h, s.h.parentTs(j.id)!);

    // the requester gives up: `/re cancel` releases the lock, the approval loses its buttons, the secrets are erased
    await h.command(REQUESTER, `cancel ${j.id}`);
    await settledTo(s, j.id, ['cancelled'], 5000);
    await h.rt.outbox.idle();
    expect(blocksText(h.emu.messages.get(`${CHANNEL}/${approval.ts}`))).not.toContain('"re_approve"');
    for (const r of s.rt.store!.db.select().from(sealedSecrets).all()) expect(r.erasedAt, r.purpose).toBeTruthy();
  }, 60_000);

  it('3. a crash-looping component fails step 2 (threaded, broadcast, mentions, reason, log tail, Retry/Cancel); healed, Retry succeeds', async () => {
    const s = await setup('e2e-s3-retry');
    const { h } = s;
    const worker = `${s.name}-worker-default-worker`;
    kube.crashLoop(worker, { reason: 'CrashLoopBackOff', restarts: 5, logTail: 'starting agent\nheartbeat failed: 403 Forbidden from the Astro API' });
    try {
      const { j, parentTs, approval } = await wizardToApproval(s);
      await h.press(APPROVER, approval.ts, 're_approve');
      const failed = await settledTo(s, j.id, FINAL);
      expect(failed.state).toBe('failed');
      expect(failed.steps.find((x) => x.stepId === 'agents')).toMatchObject({ state: 'failed', error: expect.stringMatching(new RegExp(`${worker}.*CrashLoopBackOff.*5 restart`)) });
      await h.rt.outbox.idle();

      const failure = h.emu.replies(CHANNEL, parentTs).find((m) => m.replyBroadcast && (m.blocks as any[])?.[0]?.block_id === 'failure')!;
      expect(failure, 'a broadcast reply in the thread').toBeDefined();
      expect(failure.threadTs).toBe(parentTs);
      const text = blocksText(failure);
      expect(text).toContain(`<@${REQUESTER}>`);
      expect(text).toContain('2. Agents');
      expect(text).toContain('CrashLoopBackOff');
      expect(text).toContain('403 Forbidden from the Astro API'); // the log tail
      expect(text).toContain('"re_retry"');
      expect(text).toContain('"re_cancel"');
      expect(h.emu.replies(CHANNEL, parentTs).filter((m) => m.replyBroadcast && (m.blocks as any[])?.[0]?.block_id === 'failure')).toHaveLength(1);
      const parentFailed = checklist(parentOf(h, parentTs));
      expect(parentFailed.find((l) => l.n === 2)!.state).toBe('failed');
      expect(parentFailed.find((l) => l.n === 8)!.state).toBe('pending');

      kube.heal(worker);
      await h.press(REQUESTER, failure.ts, 're_retry');
      // the retry is taken after the ack (src/slack/after-ack.ts): until then the job is still attempt 1's failure
      await until(() => job(s, j.id).attempt === 2, 5000, 'attempt 2');
      const done = await settledTo(s, j.id, FINAL);
      expect(done.state, done.error).toBe('succeeded');
      expect(done.attempt).toBe(2);
      await h.rt.outbox.idle();

      expectFinalChecklist(h, parentTs, done);
      expectSingleThread(h, parentTs);
      const after = blocksText(h.emu.messages.get(`${CHANNEL}/${failure.ts}`));
      expect(after).toContain(`Retried by <@${REQUESTER}> — attempt 2`);
      expect(after).not.toContain('"re_retry"');
      // the approval of attempt 1 was not asked again: the release was already installed with those values
      expect(h.emu.replies(CHANNEL, parentTs).filter((m) => blocksText(m).includes('approval_head'))).toHaveLength(1);
      expect(h.emu.replies(CHANNEL, parentTs).length + 1).toBeLessThanOrEqual(STEP_IDS.length + 4);
      expect((await h.command(REQUESTER, `status ${s.name}`)).json.text).toContain('succeeded* (attempt 2)');
    } finally {
      kube.heal(worker);
    }
  }, 90_000);

  it('4. a restart while the job waits for approval: same DB and emulator, approve, the job finishes in the same thread and parent', async () => {
    let s = await setup('e2e-s4-restart');
    const { j, parentTs, approval } = await wizardToApproval(s);
    const postsBefore = s.h.emu.callsTo('chat.postMessage').length;
    const parentUpdatesBefore = parentOf(s.h, parentTs).updates;

    s = await s.restart(); // stops the Slack app, the engine and the store; starts all three again
    started.push(s); // (the stopped instance's close() is a no-op)
    seen.push({ h: s.h, dbPath: s.dbPath, events: s.events });
    const { h } = s;
    expect(h.parentTs(j.id)).toBe(parentTs); // the outbox rows survived in the DB
    expect(job(s, j.id).state).toBe('waiting_approval');

    await h.press(APPROVER, approval.ts, 're_approve');
    const done = await settledTo(s, j.id, FINAL);
    expect(done.state, done.error).toBe('succeeded');
    await h.rt.outbox.idle();

    expectSingleThread(h, parentTs); // no second parent
    const newPosts = h.emu.callsTo('chat.postMessage').slice(postsBefore).filter((c) => c.response.ok);
    expect(newPosts.length).toBeGreaterThan(0);
    for (const p of newPosts) expect(p.args.thread_ts).toBe(parentTs);
    expect(parentOf(h, parentTs).updates).toBeGreaterThan(parentUpdatesBefore); // the same parent, updated in place
    expectFinalChecklist(h, parentTs, done);
    expect(blocksText(h.emu.messages.get(`${CHANNEL}/${approval.ts}`))).toContain(`Approved by <@${APPROVER}>`);
    const replies = h.emu.replies(CHANNEL, parentTs);
    expect(new Set(replies.map((r) => r.text)).size).toBe(replies.length); // nothing posted twice
    expect(replies.length + 1).toBeLessThanOrEqual(STEP_IDS.length + 4);
  }, 90_000);

  it('4b. a restart while step 8 runs (test DAG in flight): the next engine resumes the step from its checkpoint, same thread, one DAG run', async () => {
    let s = await setup('e2e-s4b-midstep', { dag: { durationMs: 2500 } });
    const restarted = (x: RealSlack) => (started.push(x), x);
    const { j, parentTs, approval } = await wizardToApproval(s);
    await s.h.press(APPROVER, approval.ts, 're_approve');
    await until(() => job(s, j.id).steps.find((x) => x.stepId === 'verify')!.state === 'running' && s.local.airflow.requests.some((r) => r.method === 'POST'), 30_000, 'the test DAG triggered');
    s = restarted(await s.restart()); // engine.stop() aborts the running step and leaves the job resumable
    seen.push({ h: s.h, dbPath: s.dbPath, events: s.events });
    const done = await settledTo(s, j.id, FINAL);
    expect(done.state, done.error).toBe('succeeded');
    await s.h.rt.outbox.idle();
    expect(done.steps.find((x) => x.stepId === 'verify')!.attempt).toBe(2); // run again by the new owner…
    // …without a second DAG run: a trigger repeated after the restart may reach Airflow, which answers 409 for the same run id
    const created = s.local.airflow.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/dagRuns') && r.status! < 300);
    expect(created).toHaveLength(1);
    expectSingleThread(s.h, parentTs);
    expectFinalChecklist(s.h, parentTs, done);
    const replies = s.h.emu.replies(CHANNEL, parentTs);
    expect(new Set(replies.map((r) => r.text)).size).toBe(replies.length);
    expect(replies.filter((r) => String(r.text).startsWith('8. Verify'))).toHaveLength(1);
  }, 90_000);

  it('5. no secret typed in the wizard reaches a Slack payload, the DB file (+WAL) or the logs', async () => {
    const s = await setup('e2e-s5-secrets');
    const { h } = s;
    const [target, secrets, ...rest] = s.pages();
    // type the secrets, go Back to the first page (re-rendered), submit it again without retyping them
    await h.wizard(REQUESTER, [target, secrets]);
    await h.back(REQUESTER);
    await h.back(REQUESTER);
    const reshown = JSON.stringify(h.emu.topView(REQUESTER)!.view);
    expect(reshown).toContain(s.name); // the page really is the target page, prefilled
    expect(hitsIn(reshown, TYPED_SECRETS)).toEqual([]);
    const withoutSecrets = Object.fromEntries(Object.entries(target).filter(([k]) => k !== 'deployment.apiToken' && k !== 'agent.token'));
    for (const p of [withoutSecrets, secrets, ...rest]) await h.page(REQUESTER, p);
    const j = await until(async () => (await s.rt.engine.latestJobFor(s.name)), 5000, 'the submitted job');
    expect((await settledTo(s, j.id, ['waiting_approval', ...FINAL])).state).toBe('waiting_approval');
    expect(hitsIn(dbBytes(s.dbPath), TYPED_SECRETS), 'DB while the secrets are sealed').toEqual([]);
    await h.rt.outbox.idle();
    const approval = h.emu.replies(CHANNEL, h.parentTs(j.id)!).find((m) => blocksText(m).includes('"re_approve"'))!;
    await h.press(APPROVER, approval.ts, 're_approve');
    const done = await settledTo(s, j.id, FINAL);
    expect(done.state, done.error).toBe('succeeded');
    await h.rt.outbox.idle();
    // positive control: the values did travel — into the cluster, where they belong
    const spec = (await s.rt.lastSpec(s.name))!;
    const inCluster = kube.get('v1', 'Secret', s.namespace, secretNames(spec).agentToken).data;
    expect(Buffer.from(inCluster.token, 'base64').toString()).toBe(SECRETS.agentToken);
    expect(hitsIn(JSON.stringify(inCluster), TYPED_SECRETS), 'the scan finds a base64 form').toHaveLength(1);

    // every setup of this file (scenarios 1-5): Slack payloads, the app's acks, the DB bytes, the logs
    expect(seen.length).toBeGreaterThanOrEqual(1);
    for (const { h: x, dbPath, events } of seen) {
      expect(events.length).toBeGreaterThan(0);
      expect(hitsIn(events.join('\n'), TYPED_SECRETS), 'job events (before redaction)').toEqual([]);
      expect(x.emu.calls.length).toBeGreaterThan(0);
      expect(hitsIn(x.emu.allPayloadText(), TYPED_SECRETS), 'Slack API calls').toEqual([]);
      expect(hitsIn(JSON.stringify(x.emu.ephemerals), TYPED_SECRETS), 'ephemerals').toEqual([]);
      expect(hitsIn(x.acks.join('\n'), TYPED_SECRETS), 'HTTP answers of the app').toEqual([]);
      expect(hitsIn(x.logs.join(''), TYPED_SECRETS), 'Slack app logs').toEqual([]);
      expect(hitsIn(dbBytes(dbPath), TYPED_SECRETS), `DB ${dbPath}`).toEqual([]);
    }
    expect(processLogs.text()).toContain('"job.succeeded"');
    expect(hitsIn(processLogs.text(), TYPED_SECRETS), 'engine/steps/adapters logs').toEqual([]);
  }, 90_000);
});
