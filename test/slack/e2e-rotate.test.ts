/**
 * Issue 17: `/re rotate-token <deployment>` through Slack, end to end: the real Bolt app (signed requests, the
 * Web API emulator), the real runtime with the real steps, real helm into the fake Kubernetes API, and the Astro
 * stand-in's agent tokens. One approval click; afterwards the old token is deleted in the stand-in and the agents
 * run on the new Secret. How the spec reaches the stand-ins: test/slack/e2e-support.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { TOKEN_ID_ANNOTATION } from '../../src/checklist/agent-token.ts';
import { agentComponents } from '../../src/spec/plan.ts';
import { secretNames } from '../../src/spec/values.ts';
import { APPROVER, CHANNEL, REQUESTER, SECRETS, until } from './harness.ts';
import { captureProcessLogs, dbBytes, hitsIn, scratch, startRealSlack, type RealSlack } from './e2e-support.ts';

const processLogs = captureProcessLogs();
let kube: FakeKube;
let s: RealSlack;
const NAME = 'e2e-rotate';

beforeAll(async () => {
  // the setup below is submitted with the demo spec's env references (the wizard would seal typed values instead)
  Object.assign(process.env, { RE_BOT_DEMO_API_TOKEN: SECRETS.apiToken, RE_BOT_DEMO_GIT_USER: 'e2e-git-user', RE_BOT_DEMO_GIT_TOKEN: 'e2e-git-token-rotate-Zx81' });
  kube = await startFakeKube({ dir: scratch('kube'), podReadyDelayMs: 50 });
  s = await startRealSlack({ kube, name: NAME });
}, 60_000);
afterAll(async () => {
  await s?.close().catch(() => undefined);
  await kube?.close();
});

const settled = (id: string, states: string[]) => until(async () => { const j = (await s.rt.engine.job(id))!; return states.includes(j.state) && j; }, 90_000, `job ${id} in ${states.join('|')}`);

/** the approval message of a job's thread, once the outbox has posted it */
async function approvalOf(jobId: string) {
  await s.h.rt.outbox.idle();
  const parentTs = await until(() => s.h.parentTs(jobId), 5000, 'the job thread');
  return until(() => s.h.emu.replies(CHANNEL, parentTs).find((m) => JSON.stringify(m.blocks).includes('"re_approve"')), 5000, 'the approval request');
}

describe('/re rotate-token', () => {
  it('rotates with one approval: new token in the Secret, agents rolled onto it, old token deleted', async () => {
    const tokens = s.local.astro.agentTokens;
    // a setup whose agent token re-bot creates (the spec a wizard with “create a token for me” submits)
    const spec = structuredClone(s.local.spec);
    spec.agent.token = { create: { expiresInDays: 90 } };
    const setup = await s.engine.submit({ spec, requestedBy: { id: REQUESTER }, origin: { kind: 'slack', channel: CHANNEL } });
    const waiting = await settled(setup.id, ['waiting_approval', 'failed']);
    expect(waiting.state, waiting.error).toBe('waiting_approval');
    await s.h.press(APPROVER, (await approvalOf(setup.id)).ts, 're_approve');
    const done = await settled(setup.id, ['succeeded', 'failed']);
    expect(done.state, done.error).toBe('succeeded');
    const [old] = tokens.live(spec.deployment.id);
    expect(old).toBeDefined();

    const r = await s.h.command(REQUESTER, `rotate-token ${NAME}`);
    expect(r.status).toBe(200);
    const answer = await s.h.emu.waitResponse(`cmd-${r.trigger}`);
    expect(JSON.stringify(answer)).toMatch(/Rotating the agent token of `e2e-rotate`: job `job_/);
    const job = await until(async () => { const j = (await s.rt.engine.latestJobFor(NAME)); return j && j.id !== setup.id && j; }, 5000, 'the rotation job');
    expect(job.steps.map((x) => x.title)).toEqual(['Create a new agent token', 'Update the agent-token Secret', 'Roll the agents', 'Verify: pods Ready and a test DAG run', 'Delete the old token']);
    const planned = await settled(job.id, ['waiting_approval', 'failed']);
    expect(planned.state, planned.error).toBe('waiting_approval');
    // nothing is created before the approval
    expect(tokens.all()).toHaveLength(1);
    const approval = await approvalOf(job.id);
    expect(JSON.stringify(approval.blocks)).toMatch(/rotate the agent token of e2e-rotate/);
    await s.h.press(APPROVER, approval.ts, 're_approve');
    const v = await settled(job.id, ['succeeded', 'failed']);
    expect(v.state, v.error).toBe('succeeded');
    expect(v.approvals).toHaveLength(1);
    expect(v.steps.every((x) => x.state === 'succeeded')).toBe(true);

    const fresh = tokens.live(spec.deployment.id);
    expect(fresh).toHaveLength(1);
    expect(fresh[0].id).not.toBe(old.id);
    expect(tokens.all().find((t) => t.id === old.id)!.deletedAt).toBeDefined();
    expect(tokens.accepts(old.value)).toBe(false);
    const secret = kube.get('v1', 'Secret', NAME, secretNames(spec).agentToken);
    expect(Buffer.from(secret.data.token, 'base64').toString('utf8')).toBe(fresh[0].value);
    for (const c of agentComponents(spec)) {
      for (const p of kube.list('v1', 'Pod', NAME).filter((x) => x.metadata.name.startsWith(`${c}-`))) {
        expect(p.metadata.annotations?.[TOKEN_ID_ANNOTATION], p.metadata.name).toBe(fresh[0].id);
      }
    }

    // the thread shows each part as a step, and `/re status` the new token's expiry
    await s.h.rt.outbox.idle();
    const parent = s.h.emu.messages.get(`${CHANNEL}/${s.h.parentTs(job.id)}`)!;
    const steps = (parent.blocks as any[]).find((b) => b.block_id === 'steps').text.text as string;
    for (const title of ['Create a new agent token', 'Update the agent-token Secret', 'Roll the agents', 'Delete the old token']) expect(steps).toContain(title);
    const status = await s.h.command(REQUESTER, `status ${NAME}`);
    expect(status.body).toMatch(new RegExp(`Agent token\\*\\\\n${fresh[0].name}: expires \\S+ \\(in 8[89] days\\)`));

    // no token value in Slack, the logs or the DB
    const values = tokens.all().map((t) => t.value);
    expect(hitsIn(JSON.stringify([...s.h.emu.messages.values()]), values)).toEqual([]);
    expect(hitsIn(JSON.stringify(s.h.emu.callsTo('chat.postMessage')), values)).toEqual([]);
    expect(hitsIn(processLogs.text() + s.h.logs.join(''), values)).toEqual([]);
    expect(hitsIn(dbBytes(s.dbPath), values)).toEqual([]);
  }, 240_000);

  it('answers a missing deployment name in the ack, and an unknown one through response_url', async () => {
    const usage = await s.h.command(REQUESTER, 'rotate-token');
    expect(usage.body).toMatch(/Usage: `\/re rotate-token <deployment>`/);
    const r = await s.h.command(REQUESTER, 'rotate-token e2e-rotat');
    const answer = await s.h.emu.waitResponse(`cmd-${r.trigger}`);
    expect(JSON.stringify(answer)).toMatch(/Unknown deployment `e2e-rotat`.*e2e-rotate/);
  });
});
