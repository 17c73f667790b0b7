/**
 * src/checklist/agent-token.ts against the Astro API stand-in over HTTP: one token per step however often it is
 * re-run, the value only in the Secret (sealed while in flight), and what a crash at each point leaves behind.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAgentTokenOnce, planCreatedAgentToken, writeAgentTokenSecret, TOKEN_ID_ANNOTATION, TOKEN_END_ANNOTATION } from '../../src/checklist/agent-token.ts';
import { startFakeAstro, type FakeAstro } from '../../src/devkit/fake-astro.ts';
import { createAstroTokensClient } from '../../src/infra/astro-tokens.ts';
import { ownerMeta } from '../../src/infra/ownership.ts';
import { secretNames } from '../../src/spec/values.ts';
import { createFakeInfra, type FakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';

const API_TOKEN = 'fake-astro-api-token-Zt5Wq1';
let astro: FakeAstro;
let infra: FakeInfra;
const spec = testSpec({ agent: { ...testSpec().agent, token: { create: { expiresInDays: 30 } } } });
const names = secretNames(spec);
const ns = spec.cluster.namespace;
const KEY = 'install.agentToken';

/** a sealed-secret box as the runtime gives steps one: values by id, erasable */
function vault() {
  const box = new Map<string, string | null>();
  let n = 0;
  return {
    box,
    seal: (value: string) => { const id = `sec_${++n}`; box.set(id, value); return id; },
    erase: (id: string) => void box.set(id, null),
  };
}

function ctxWith(checkpoint: Record<string, unknown>, v = vault()) {
  const h = makeCtx(spec, infra, { checkpoint });
  const resolve = h.ctx.resolveSecret;
  h.ctx.resolveSecret = async (ref) => {
    if ('stored' in ref) {
      const value = v.box.get(ref.stored);
      if (!value) throw new Error(`stored secret ${ref.stored} is gone`);
      return value;
    }
    return resolve(ref);
  };
  h.ctx.sealSecret = async (value) => v.seal(value);
  h.ctx.eraseSecret = async (id) => v.erase(id);
  return { ...h, vault: v };
}

beforeAll(async () => {
  astro = await startFakeAstro({ token: API_TOKEN, deployments: [{ organizationId: spec.deployment.organizationId, id: spec.deployment.id, remoteExecution: { enabled: true } }] });
});
afterAll(() => astro?.stop());
beforeEach(() => {
  infra = createFakeInfra({ namespaces: [ns] });
  infra.astroTokens = createAstroTokensClient({ baseUrl: astro.url, token: API_TOKEN });
  for (const t of astro.agentTokens.live(spec.deployment.id)) astro.agentTokens.all().find((x) => x.id === t.id)!.deletedAt = 'test reset';
});

const live = () => astro.agentTokens.live(spec.deployment.id);

describe('creating the agent token through the Astro API', () => {
  it('plans a new token (reads only), creates it once and writes the value only into the Secret, with id and expiry annotations', async () => {
    const checkpoint: Record<string, unknown> = {};
    const { ctx, vault: v } = ctxWith(checkpoint);
    const planned = await planCreatedAgentToken(ctx);
    expect(planned).toMatchObject({ action: 'create', newToken: { name: expect.stringMatching(/^re-bot-[a-z0-9-]+-\d{4}-\d{2}-\d{2}$/), expiresInDays: 30 } });
    expect(live()).toHaveLength(0);

    const created = await createAgentTokenOnce(ctx, KEY, planned.newToken!);
    const w = await writeAgentTokenSecret(ctx, KEY, planned.newToken!, created);
    expect(live()).toHaveLength(1);
    const token = live()[0];
    const s = infra.secret(ns, names.agentToken)!;
    expect(s.stringData).toEqual({ token: token.value });
    expect(s.annotations).toMatchObject({ ...ownerMeta(spec.deployment.name).annotations, [TOKEN_ID_ANNOTATION]: token.id, [TOKEN_END_ANNOTATION]: token.endAt });
    expect(w).toEqual({ token: { id: token.id, name: token.name, endAt: token.endAt }, action: 'created' });
    // sealed while in flight, erased once written; the checkpoint holds ids only
    expect([...v.box.values()]).toEqual([null]);
    expect(JSON.stringify(checkpoint)).not.toContain(token.value);

    // the step run again (resumed, or a retry): no second token, no second write
    const creates = () => astro.agentTokens.log.filter((l) => l.startsWith('create')).length;
    const before = creates();
    const writes = infra.state.writes.length;
    const again = ctxWith(checkpoint, v);
    const c2 = await createAgentTokenOnce(again.ctx, KEY, planned.newToken!);
    await writeAgentTokenSecret(again.ctx, KEY, planned.newToken!, c2);
    expect(creates()).toBe(before);
    expect(infra.state.writes.length).toBe(writes);
    expect(live()).toHaveLength(1);

    // the next plan sees the live token in the Secret: nothing to do
    const next = await planCreatedAgentToken(ctxWith({}).ctx);
    expect(next).toMatchObject({ action: 'unchanged', token: { id: token.id } });
    expect(next.newToken).toBeUndefined();
  });

  it('a token deleted in the Astro UI (or expired) is replaced at the next plan', async () => {
    const { ctx } = ctxWith({});
    const p = await planCreatedAgentToken(ctx);
    await writeAgentTokenSecret(ctx, KEY, p.newToken!, await createAgentTokenOnce(ctx, KEY, p.newToken!));
    const id = live()[0].id;
    await infra.astroTokens!.deleteAgentToken(spec.deployment.organizationId, spec.deployment.id, id);
    const again = await planCreatedAgentToken(ctxWith({}).ctx);
    expect(again).toMatchObject({ action: 'update', newToken: { expiresInDays: 30 } });
  });

  it('killed after the create answered but before it was checkpointed: the orphan is deleted, one token is created', async () => {
    const checkpoint: Record<string, unknown> = {};
    const { ctx } = ctxWith(checkpoint);
    const p = await planCreatedAgentToken(ctx);
    await createAgentTokenOnce(ctx, KEY, p.newToken!);
    const orphan = live()[0];
    delete checkpoint[`${KEY}.token`]; // the answer never reached the checkpoint
    const resumed = ctxWith(checkpoint);
    const created = await createAgentTokenOnce(resumed.ctx, KEY, p.newToken!);
    await writeAgentTokenSecret(resumed.ctx, KEY, p.newToken!, created);
    expect(live().map((t) => t.id)).toEqual([created.id]);
    expect(created.id).not.toBe(orphan.id);
    expect(resumed.audits.map((a) => a.action)).toEqual(['agent-token.discarded', 'agent-token.created']);
    expect(infra.secret(ns, names.agentToken)!.stringData.token).toBe(live()[0].value);
  });

  it('killed between the create and the Secret write: the resumed step writes the sealed value (no second token)', async () => {
    const checkpoint: Record<string, unknown> = {};
    const v = vault();
    const { ctx } = ctxWith(checkpoint, v);
    const p = await planCreatedAgentToken(ctx);
    await createAgentTokenOnce(ctx, KEY, p.newToken!);
    expect(infra.secret(ns, names.agentToken)).toBeUndefined();
    // a new process: the in-memory value is gone, the sealed copy is not
    const resumed = ctxWith(checkpoint, v);
    const created = await createAgentTokenOnce(resumed.ctx, KEY, p.newToken!);
    expect(created.value).toBeUndefined();
    await writeAgentTokenSecret(resumed.ctx, KEY, p.newToken!, created);
    expect(live()).toHaveLength(1);
    expect(infra.secret(ns, names.agentToken)!.stringData.token).toBe(live()[0].value);
  });

  it('the value lost before it was written (sealed copy erased): that token is deleted and a new one written', async () => {
    const checkpoint: Record<string, unknown> = {};
    const v = vault();
    const { ctx } = ctxWith(checkpoint, v);
    const p = await planCreatedAgentToken(ctx);
    const first = await createAgentTokenOnce(ctx, KEY, p.newToken!);
    for (const id of v.box.keys()) v.erase(id); // e.g. swept after the job sat failed past the TTL
    const resumed = ctxWith(checkpoint, v);
    const w = await writeAgentTokenSecret(resumed.ctx, KEY, p.newToken!, await createAgentTokenOnce(resumed.ctx, KEY, p.newToken!));
    expect(w.token.id).not.toBe(first.id);
    expect(live().map((t) => t.id)).toEqual([w.token.id]);
    expect(astro.agentTokens.all().find((t) => t.id === first.id)!.deletedAt).toBeDefined();
    expect(infra.secret(ns, names.agentToken)!.stringData.token).toBe(live()[0].value);
  });

  it('an Astro API refusal (the 50-token limit) fails naming its message and requestId; nothing is written', async () => {
    astro.agentTokens.failNextCreate(400, 'Deployment has reached the maximum of 50 agent tokens');
    const { ctx } = ctxWith({});
    const p = await planCreatedAgentToken(ctx);
    const err = await createAgentTokenOnce(ctx, KEY, p.newToken!).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/maximum of 50 agent tokens \(request id [0-9a-f-]+\)/);
    expect(infra.secret(ns, names.agentToken)).toBeUndefined();
  });

  it('the stand-in refuses the 51st token of a Deployment', async () => {
    const c = infra.astroTokens!;
    for (let i = 0; i < 50; i++) await c.createAgentToken(spec.deployment.organizationId, spec.deployment.id, { name: `t${i}` });
    const err = await c.createAgentToken(spec.deployment.organizationId, spec.deployment.id, { name: 't50' }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/maximum of 50 agent tokens/);
    expect(live()).toHaveLength(50);
  });
});
