/**
 * A wizard left with empty secret fields reuses the previous spec's env/file secret references. Those point at
 * the bot's own credentials, so they are reused only by the user who stored them and only while every URL that
 * receives them is unchanged; otherwise the field asks again, saying why. URLs with credentials, reserved
 * namespaces and the like are refused inline before anything is sealed or submitted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseSpec, type SetupSpec } from '../../src/spec/schema.ts';
import { FakeEngine, SAMPLE_SPEC_INPUT } from '../support/fake-engine.ts';
import { REQUESTER, SECRETS, startHarness, until, wizardPages, type Harness } from './harness.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
const OTHER = 'U0OTHER0001';
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const PREVIOUS: SetupSpec = (() => {
  const r = parseSpec({
    ...SAMPLE_SPEC_INPUT,
    dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags.git', credentials: { username: { env: 'GIT_USER' }, token: { env: 'GIT_TOKEN' } } },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
})();

/** an engine whose latest job for the deployment (the one that stored PREVIOUS) was requested by `by` */
async function engineStoredBy(by: string): Promise<FakeEngine> {
  const engine = new FakeEngine(policy);
  await engine.cancel((await engine.submit({ spec: PREVIOUS, requestedBy: { id: by }, origin: { kind: 'cli' } })).id);
  return engine;
}

async function open(engine: FakeEngine): Promise<Harness> {
  const harness = await startHarness({ engine, lastSpec: (name) => (name === 'sales-prod' ? PREVIOUS : undefined) });
  await harness.wizard(REQUESTER, [], 'sales-prod');
  return harness;
}

describe('kept secret references', () => {
  it('a changed API URL drops the kept Deployment API token: the field asks again; the agent token (not sent there) stays', async () => {
    const engine = await engineStoredBy(REQUESTER);
    h = await open(engine);
    const ack = await h.page(REQUESTER, { 'deployment.airflowApiUrl': 'https://clother0000000001.astronomer.run/d7654321/api/v2' });
    expect(ack.response_action).toBe('errors');
    expect(ack.errors).toEqual({ 'deployment.apiToken': expect.stringMatching(/^Re-enter the token: the API URL changed since it was stored \(deployment\.airflowApiUrl\)/) });
    // typed again, it is sealed and the wizard moves on; nothing else needs re-entering
    await h.page(REQUESTER, { 'deployment.airflowApiUrl': 'https://clother0000000001.astronomer.run/d7654321/api/v2', 'deployment.apiToken': SECRETS.apiToken });
    for (let i = 0; i < 6; i++) await h.page(REQUESTER, {});
    await until(() => engine.submitted.length === 2, 3000, 'submit');
    const spec = engine.submitted[1];
    expect(spec.deployment.airflowApiUrl).toBe('https://clother0000000001.astronomer.run/d7654321/api/v2');
    expect(spec.deployment.apiToken).toEqual({ stored: expect.stringMatching(/^sec_/) });
    expect(spec.agent.token).toEqual({ env: 'AGENT_TOKEN' });
    expect(spec.dagSource).toMatchObject({ credentials: { token: { env: 'GIT_TOKEN' } } });
  });

  it('an API URL on a host outside the allowed API hosts is refused on its own field before the token is asked for again', async () => {
    h = await open(await engineStoredBy(REQUESTER));
    const ack = await h.page(REQUESTER, { 'deployment.airflowApiUrl': 'https://collector.attacker.example/api/v2' });
    expect(ack.response_action).toBe('errors');
    expect(ack.errors['deployment.airflowApiUrl']).toMatch(/would receive the Deployment API token at collector\.attacker\.example, which is not in the default API hosts/);
  });

  it('references stored by another user are not reused: every secret field asks again, saying so', async () => {
    h = await open(await engineStoredBy(OTHER));
    const viewOf = () => (h!.emu.topView(REQUESTER)?.view.blocks as any[]).find((b) => b.block_id === 'deployment.apiToken');
    expect(viewOf().hint.text).toMatch(/stored by another user/);
    expect(viewOf().optional).toBe(false);
    const ack = await h.page(REQUESTER, {});
    expect(ack.response_action).toBe('errors');
    expect(Object.keys(ack.errors).sort()).toEqual(['agent.token', 'deployment.apiToken']);
    for (const m of Object.values(ack.errors)) expect(m).toMatch(/^Re-enter the token: it was stored by another user/);
    expect(JSON.stringify(ack)).not.toContain('ASTRO_API_TOKEN');
  });

  it('a changed Git repository URL drops the kept Git credentials; left empty again after the warning, the job has none', async () => {
    const engine = await engineStoredBy(REQUESTER);
    h = await open(engine);
    for (let i = 0; i < 3; i++) await h.page(REQUESTER, {});
    const ack = await h.page(REQUESTER, { 'dagSource.repoUrl': 'https://github.com/acme/public-dags.git' });
    expect(ack.response_action).toBe('errors');
    expect(ack.errors['dagSource.credentials.token']).toMatch(/^Re-enter the token: the repository URL changed since it was stored \(dagSource\.repoUrl\)/);
    expect(ack.errors['dagSource.credentials.username']).toMatch(/^Re-enter the user name/);
    await h.page(REQUESTER, { 'dagSource.repoUrl': 'https://github.com/acme/public-dags.git' });
    for (let i = 0; i < 3; i++) await h.page(REQUESTER, {});
    await until(() => engine.submitted.length === 2, 3000, 'submit');
    expect(engine.submitted[1].dagSource).toEqual(expect.objectContaining({ repoUrl: 'https://github.com/acme/public-dags.git' }));
    expect((engine.submitted[1].dagSource as any).credentials).toBeUndefined();
  });
});

describe('spec safety in the wizard', () => {
  it('a URL with a token before @ and a reserved namespace are refused inline; nothing is sealed, the token is not echoed', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const [target] = wizardPages();
    const ack = await h.wizard(REQUESTER, [{ ...target, 'deployment.airflowApiUrl': `https://${SECRETS.apiToken}@clx0abc123.astronomer.run/api/v2`, 'cluster.namespace': 'kube-system' }]);
    expect(ack.response_action).toBe('errors');
    expect(ack.errors['deployment.airflowApiUrl']).toBe('`deployment.airflowApiUrl` must not contain a user name or password (found userinfo before @); put credentials in a secret reference');
    expect(ack.errors['cluster.namespace']).toMatch(/must not be kube-system/);
    expect(h.vault.values.size).toBe(0);
    expect(JSON.stringify(ack)).not.toContain(SECRETS.apiToken);
    expect(engine.submitted).toHaveLength(0);
  });
});
