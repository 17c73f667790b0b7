import { afterEach, describe, expect, it } from 'vitest';
import { FakeEngine, SAMPLE_SPEC_INPUT, sampleSpec } from '../support/fake-engine.ts';
import { startHarness, wizardPages, REQUESTER, SECRETS, until, type Harness } from './harness.ts';
import { buildPlan } from '../../src/spec/plan.ts';
import { parseSpec, type SetupSpec } from '../../src/spec/schema.ts';
import { buildRaw, prefillFromSpec } from '../../src/slack/wizard-spec.ts';

const policy = { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 };
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const blockIds = (harness: Harness) => ((harness.emu.topView(REQUESTER)?.view.blocks ?? []) as any[]).map((b) => b.block_id);
const block = (harness: Harness, id: string) => ((harness.emu.topView(REQUESTER)?.view.blocks ?? []) as any[]).find((b) => b.block_id === id);

const RICH: SetupSpec = (() => {
  const r = parseSpec({
    ...SAMPLE_SPEC_INPUT,
    cluster: { namespace: 'astro-agent', release: 'agents', kubeContext: 'prod-eks', chart: { version: '2.3.4' } },
    agent: {
      ...SAMPLE_SPEC_INPUT.agent,
      workers: [{ name: 'big', queues: 'heavy,ml', replicas: 3 }, { name: 'default-worker', queues: 'default' }],
      logLevel: 'DEBUG',
    },
    identity: { provider: 'aws', roleArn: 'arn:aws:iam::123456789012:role/agent' },
    secretsBackend: { provider: 'aws-secrets-manager', region: 'eu-west-1', configPrefix: 'airflow/config' },
    xcomBackend: { type: 'gcs', bucket: 'sales-xcom', prefix: 'x' },
    dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags.git', trackingRef: 'release', credentials: { username: { env: 'GIT_USER' }, token: { file: '/run/git-token' } } },
    logging: { mode: 'sidecar', config: 'sources: {}\nsinks: {}' },
    openLineage: { enabled: true },
    sentinel: { enabled: false },
    images: { client: { repository: 'registry.example.com/team/client', builder: 'docker' } },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
})();

describe('wizard values ↔ spec', () => {
  it('a previous spec prefills every page and round-trips unchanged (env/file secret refs kept, hidden fields kept)', () => {
    const p = prefillFromSpec(RICH);
    expect(p.values['deployment.apiToken']).toBeUndefined();
    expect(p.keep['dagSource.credentials.token']).toEqual({ file: '/run/git-token' });
    expect(p.values['agent.workers']).toBe('big: heavy, ml\ndefault-worker: default');
    expect(p.values.flags).toBe('openLineage.enabled,verify.enabled');
    const again = parseSpec(buildRaw(p.values, { sealed: {}, keep: p.keep }, p.base));
    expect(again.ok && again.spec).toEqual(RICH);
  });

  it('the Images page turns the server image deploy on and off; off leaves no images.server behind', () => {
    const withServer = { ...RICH, images: { ...RICH.images, server: { deploy: true, contextDir: 'projects/sales', dockerfile: 'Dockerfile', builder: 'buildah', waitTimeoutSeconds: 900, insecureRegistry: false } } } as SetupSpec;
    const p = prefillFromSpec(withServer);
    expect(p.values.serverImage).toBe('images.server.deploy');
    expect(p.values['images.server.contextDir']).toBe('projects/sales');
    const on = parseSpec(buildRaw(p.values, { sealed: {}, keep: p.keep }, p.base));
    expect(on.ok && on.spec.images.server).toEqual(withServer.images.server);
    const fresh = prefillFromSpec(RICH);
    const off = parseSpec(buildRaw({ ...fresh.values, serverImage: '' }, { sealed: {}, keep: fresh.keep }, fresh.base));
    expect(off.ok && off.spec.images.server).toBeUndefined();
    const turnedOn = parseSpec(buildRaw({ ...fresh.values, serverImage: 'images.server.deploy', 'images.server.contextDir': 'proj' }, { sealed: {}, keep: fresh.keep }, fresh.base));
    expect(turnedOn.ok && turnedOn.spec.images.server).toMatchObject({ deploy: true, contextDir: 'proj', dockerfile: 'Dockerfile' });
  });

  it('stored (wizard) secrets are never reused from a previous spec: the field must be typed again', () => {
    const previous = { ...RICH, agent: { ...RICH.agent, token: { stored: 'sec_old' } } } as SetupSpec;
    const p = prefillFromSpec(previous);
    expect(p.keep['agent.token']).toBeUndefined();
    const r = parseSpec(buildRaw(p.values, { sealed: {}, keep: p.keep }, p.base));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => e.path)).toEqual(['agent.token']);
  });
});

describe('setup wizard (modals)', () => {
  it('walks the pages; the provider choice reveals its fields via dispatch_action + views.update; review shows the plan', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, [pages[0]]);
    expect(h.emu.callsTo('views.open')[0].response.ok).toBe(true);
    expect(blockIds(h)).toEqual(expect.arrayContaining(['secretsBackend.provider', 'identity.provider']));
    expect(blockIds(h)).not.toContain('secretsBackend.url');

    await h.page(REQUESTER, { 'secretsBackend.provider': 'hashicorp-vault' }).catch(() => undefined);
    expect(blockIds(h)).toEqual(expect.arrayContaining(['secretsBackend.url', 'secretsBackend.authType', 'secretsBackend.kubernetesRole']));
    const update = h.emu.callsTo('views.update').at(-1)!;
    expect(update.response.ok).toBe(true);
    expect(update.args.hash).toBeTruthy(); // stale re-renders are refused by Slack, not applied

    // switching provider again: the Vault fields go, GCP's come
    await h.page(REQUESTER, { 'secretsBackend.provider': 'gcp-secret-manager', 'secretsBackend.projectId': 'bad id' }).then((ack) => {
      expect(ack.response_action).toBe('errors');
      expect(Object.keys(ack.errors)).toEqual(['secretsBackend.projectId']);
    });
    expect(blockIds(h)).not.toContain('secretsBackend.url');
    for (const p of pages.slice(1, 6)) await h.page(REQUESTER, p);

    const review = h.emu.topView(REQUESTER)!.view;
    expect(review.submit.text).toBe('Start setup');
    const text = JSON.stringify(review.blocks);
    const spec = engine.submitted[0] ?? undefined;
    expect(spec).toBeUndefined(); // nothing runs before Start setup
    for (const t of ['1. Prerequisites', '2. Agents', '3. Secrets backend', '4. XCom backend', '5. DAG sources', '6. Logging', '7. Deploy images', '8. Verify', 'skipped', 'What it touches', 'Git token/password: set']) expect(text).toContain(t);
    expect(review.blocks.length).toBeLessThanOrEqual(100);

    expect(await h.page(REQUESTER, {})).toEqual({});
    await until(() => engine.submitted.length === 1, 3000, 'submit');
    const submitted = engine.submitted[0];
    expect(text).toContain(buildPlan(submitted).valuesHash);
    expect(submitted.secretsBackend).toEqual(expect.objectContaining({ provider: 'aws-secrets-manager', region: 'us-east-1' }));
    expect(submitted.identity).toEqual({ provider: 'aws', roleArn: 'arn:aws:iam::123456789012:role/astro-agent' });
    expect(submitted.dagSource).toMatchObject({ type: 'git', credentials: { username: { stored: expect.stringMatching(/^sec_/) }, token: { stored: expect.stringMatching(/^sec_/) } } });
    expect(submitted.agent.token).toEqual({ stored: expect.stringMatching(/^sec_/) });
  });

  it('validation errors come back inline on the right blocks, from the spec schema; nothing is sealed until the page is valid', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const [target] = wizardPages();
    const ack = await h.wizard(REQUESTER, [{ ...target, 'cluster.namespace': 'Not_A_DNS_Name', 'agent.token': '' }]);
    expect(ack.response_action).toBe('errors');
    expect(Object.keys(ack.errors).sort()).toEqual(['agent.token', 'cluster.namespace']);
    expect(ack.errors['cluster.namespace']).toMatch(/DNS-1123/);
    expect(h.vault.values.size).toBe(0);
    const [, secrets, xcom, dags, options] = wizardPages();
    for (const p of [target, secrets, xcom, dags, options]) await h.page(REQUESTER, p);
    const images = await h.page(REQUESTER, { 'agent.image': 'repo/agent:latest', 'cluster.chart.version': '^2' });
    expect(Object.keys(images.errors).sort()).toEqual(['agent.image', 'cluster.chart.version']);
    expect(images.errors['agent.image']).toMatch(/latest/);
  });

  it('Back keeps what was entered (secrets only as "set"); closing the wizard erases its sealed secrets', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 2));
    expect(h.vault.values.size).toBe(2);
    await h.back(REQUESTER);
    expect(block(h, 'secretsBackend.region').element.initial_value).toBe('us-east-1');
    await h.back(REQUESTER);
    expect(block(h, 'deployment.id').element.initial_value).toBe('clx0abc123');
    const token = block(h, 'agent.token');
    expect(token.element.initial_value).toBeUndefined();
    expect(token.optional).toBe(true);
    expect(token.hint.text).toMatch(/^Set\./);
    // submitting page 1 again with the secrets left empty keeps the sealed ones
    await h.page(REQUESTER, { 'deployment.apiToken': '', 'agent.token': '' });
    expect(h.vault.values.size).toBe(2);
    expect(blockIds(h)).toContain('secretsBackend.provider');
    await h.closeWizard(REQUESTER);
    await until(() => h!.vault.erased.size === 2, 3000, 'erase');
    expect([...h.vault.erased].sort()).toEqual([...h.vault.values.keys()].sort());
  });

  it('prefills from the previous spec of the deployment, secrets excepted', async () => {
    const engine = new FakeEngine(policy);
    const previous = sampleSpec('sales-prod');
    // the previous setup was this user's (its env/file secret refs are offered to them only: wizard-keep.test.ts)
    await engine.cancel((await engine.submit({ spec: previous, requestedBy: { id: REQUESTER }, origin: { kind: 'cli' } })).id);
    h = await startHarness({ engine, lastSpec: (name) => (name === 'sales-prod' ? previous : undefined) });
    await h.wizard(REQUESTER, [], 'sales-prod');
    expect(block(h, 'wizard_prefill')).toBeDefined();
    expect(block(h, 'deployment.apiUrl').element.initial_value).toBe(previous.deployment.apiUrl);
    expect(block(h, 'deployment.apiToken').hint.text).toContain('env ASTRO_API_TOKEN');
    for (let i = 0; i < 7; i++) await h.page(REQUESTER, {});
    await until(() => engine.submitted.length === 2, 3000, 'submit');
    expect(engine.submitted[1]).toEqual(previous);
    expect(h.vault.values.size).toBe(0);
  });

  it('started from a DM the bot is not in, the progress thread goes to the bot’s own DM with the requester', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    await h.command(REQUESTER, 'setup', 'D0SOMEDM01');
    await until(() => h!.emu.topView(REQUESTER), 3000, 'modal');
    for (const p of wizardPages()) await h.page(REQUESTER, p);
    const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
    expect(job.origin).toMatchObject({ kind: 'slack', channel: 'D0REQUESTR' });
    expect(h.emu.callsTo('conversations.open')).toHaveLength(1);
    expect(h.emu.callsTo('users.info')[0].args.user).toBe(REQUESTER);
  });

  it('a wizard survives a restart of the bot between pages: the job starts with what was typed before it', async () => {
    const engine = new FakeEngine(policy);
    h = await startHarness({ engine });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 2));
    h = await h.restart();
    for (const p of pages.slice(2)) await h.page(REQUESTER, p);
    await until(() => engine.submitted.length === 1, 3000, 'submit');
    const submitted = engine.submitted[0];
    expect(submitted.deployment).toMatchObject({ name: 'sales-prod', id: 'clx0abc123', namespace: 'cosmic-nebula-1234' });
    expect(submitted.secretsBackend).toEqual(expect.objectContaining({ provider: 'aws-secrets-manager', region: 'us-east-1' }));
    // sealed before the restart, opened by the bot after it
    const token = submitted.agent.token as { stored: string };
    expect(h.box.openSecret(token.stored)).toBe(SECRETS.agentToken);
    expect(h.acks.join('\n')).not.toContain('expired');
    expect(h.emu.ephemerals.map((e) => e.text).join('\n')).not.toMatch(/expired|Setup not started/);
    // the finished wizard's row is gone
    expect(h.store.sqlite.prepare('SELECT count(*) FROM wizard_sessions').pluck().get()).toBe(0);
  });

  it('a submission for a session that expired (2 h) or is unknown closes with a notice instead of failing', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    await h.wizard(REQUESTER, []);
    h.store.sqlite.prepare('UPDATE wizard_sessions SET expires_at = ?').run(Date.now() - 1);
    const ack = await h.page(REQUESTER, wizardPages()[0]);
    expect(ack.response_action).toBe('update');
    expect(JSON.stringify(ack.view)).toContain('expired');
    expect(h.vault.values.size).toBe(0); // nothing typed there was sealed

    await h.wizard(REQUESTER, []);
    h.store.sqlite.prepare('DELETE FROM wizard_sessions').run();
    expect(JSON.stringify((await h.page(REQUESTER, wizardPages()[0])).view)).toContain('expired');
  });

  it('a stored wizard session holds sealed ids and ref names, never a typed secret; closing the wizard deletes it', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 4));
    const rows = h.store.sqlite.prepare('SELECT * FROM wizard_sessions').all() as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(1);
    const raw = JSON.stringify(rows);
    expect(raw).toContain('clx0abc123'); // the typed values are there
    for (const id of h.vault.values.keys()) expect(raw).toContain(id);
    expect(h.vault.values.size).toBe(4);
    for (const secret of Object.values(SECRETS)) {
      expect(raw).not.toContain(secret);
      expect(raw).not.toContain(Buffer.from(secret).toString('base64'));
    }
    await h.closeWizard(REQUESTER);
    await until(() => h!.vault.erased.size === 4, 3000, 'erase');
    expect(h.store.sqlite.prepare('SELECT count(*) FROM wizard_sessions').pluck().get()).toBe(0);
  });

  it('no secret typed in the wizard appears in any view, private_metadata or ack', async () => {
    h = await startHarness({ engine: new FakeEngine(policy) });
    const pages = wizardPages();
    await h.wizard(REQUESTER, pages.slice(0, 4));
    await h.back(REQUESTER);
    await h.back(REQUESTER);
    const views = JSON.stringify([...h.emu.views.values()].map((v) => v.view)) + JSON.stringify(h.emu.calls.map((c) => c.args)) + h.acks.join('');
    for (const s of Object.values(SECRETS)) expect(views).not.toContain(s);
    for (const v of h.emu.views.values()) expect(String(v.view.private_metadata)).toMatch(/^[0-9a-f-]{36}\|[a-z]+$/);
  });
});
