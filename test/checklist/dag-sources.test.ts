import { describe, expect, it } from 'vitest';
import { dagSources } from '../../src/checklist/dag-sources.ts';
import { APPLIED_BY_STEP_2 } from '../../src/checklist/configured.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { CLASS, renderValues } from '../../src/spec/values.ts';
import { createFakeInfra } from './fake-infra.ts';
import { agents } from '../../src/checklist/agents.ts';
import { secretContentHash } from '../../src/infra/ownership.ts';
import { FAKE, leakedSecrets, makeCtx, testSpec, visibleText } from './step-context.ts';

const REPO = 'https://github.com/acme/dags';
const privateGit = (extra: Record<string, unknown> = {}) => ({
  dagSource: { type: 'git', repoUrl: REPO, subdir: 'dags', credentials: { username: { env: 'T_GIT_USER' }, token: { env: 'T_GIT_TOKEN' } } },
  ...extra,
});

describe('step 5: DAG sources', () => {
  it('private Git repo: prepares the connection Secret (name, key, content hash) for step 2 and writes nothing; no credential in what the step shows', async () => {
    const infra = createFakeInfra();
    const spec = testSpec(privateGit());
    const h = makeCtx(spec, infra);
    const out = await dagSources.run(h.ctx);

    // plan phase: nothing reaches the cluster
    expect(infra.state.writes).toEqual([]);
    expect(infra.state.namespaces.has('astro-agents')).toBe(false);
    const value = JSON.stringify({ conn_type: 'git', login: FAKE.T_GIT_USER, password: FAKE.T_GIT_TOKEN, host: REPO });
    const hash = secretContentHash('Opaque', { AIRFLOW_CONN_GIT_DEFAULT: value });
    expect(out.output!.preparedSecrets).toEqual([{ kind: 'git-connection', namespace: 'astro-agents', name: 'sales-git-connection', type: 'Opaque', keys: ['AIRFLOW_CONN_GIT_DEFAULT'], hash, action: 'create' }]);
    expect(out.appliedWith).toBe('agents');
    // the renderer's secretKeyRef points at exactly this Secret and key
    const worker = (renderValues(spec).workers as Array<{ env: unknown[] }>)[0];
    expect(worker.env).toContainEqual({ name: 'AIRFLOW_CONN_GIT_DEFAULT', valueFrom: { secretKeyRef: { name: 'sales-git-connection', key: 'AIRFLOW_CONN_GIT_DEFAULT' } } });

    expect(out.status).toBe('succeeded');
    expect(out.summary).toBe(
      `${CLASS.gitBundle} 'dags' tracking main of ${REPO} (subdir dags), refreshed every 60s; Git connection git_default in Secret sales-git-connection (key AIRFLOW_CONN_GIT_DEFAULT, content sha256:${hash}, create); ${APPLIED_BY_STEP_2}`,
    );
    expect(leakedSecrets(visibleText(h, out))).toEqual([]);
  });

  it('step 2 writes the prepared Secret after its approval, with the exact content and re-bot ownership marks', async () => {
    const infra = createFakeInfra();
    const spec = testSpec(privateGit());
    const out = await dagSources.run(makeCtx(spec, infra).ctx);
    const first = makeCtx(spec, infra, { outputs: { 'dag-sources': out.output! } });
    await expect(agents.run(first.ctx)).rejects.toThrow('waiting for approval');
    expect(infra.state.writes).toEqual([]);
    expect(first.approvals[0].diffText).toContain(`Secret astro-agents/sales-git-connection (Opaque, key AIRFLOW_CONN_GIT_DEFAULT, content sha256:${(out.output!.preparedSecrets as Array<{ hash: string }>)[0].hash}): create`);
    await agents.run(makeCtx(spec, infra, { outputs: { 'dag-sources': out.output! }, checkpoint: first.checkpoint, granted: 'all' }).ctx);
    const secret = infra.secret('astro-agents', 'sales-git-connection')!;
    expect(JSON.parse(secret.stringData.AIRFLOW_CONN_GIT_DEFAULT)).toEqual({ conn_type: 'git', host: REPO, login: FAKE.T_GIT_USER, password: FAKE.T_GIT_TOKEN });
    expect(secret.labels).toEqual({ 'app.kubernetes.io/managed-by': 're-bot' });
    expect(secret.annotations).toEqual({ 're-bot.astronomer.io/deployment': spec.deployment.name });
    // re-planning after the write: the prepared Secret is unchanged
    const again = await dagSources.run(makeCtx(spec, infra).ctx);
    expect((again.output!.preparedSecrets as Array<{ action: string }>)[0].action).toBe('unchanged');
  });

  it('a Git connection Secret re-bot did not create fails the preparation by name and is left untouched', async () => {
    const infra = createFakeInfra({ namespaces: ['astro-agents'] });
    await infra.kube.applySecret({ namespace: 'astro-agents', name: 'sales-git-connection', stringData: { mine: 'x' } });
    const before = structuredClone(infra.secret('astro-agents', 'sales-git-connection'));
    const err = await dagSources.run(makeCtx(testSpec(privateGit()), infra).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.message).toBe('Secret astro-agents/sales-git-connection exists and was not created by re-bot for deployment sales; delete it, or choose another cluster.resourceNamePrefix');
    expect(infra.secret('astro-agents', 'sales-git-connection')).toEqual(before);
  });

  it('a repo URL with embedded credentials fails naming dagSource.repoUrl without echoing them', async () => {
    const spec = testSpec({ dagSource: { type: 'git', repoUrl: `https://bot:${FAKE.T_GIT_TOKEN}@github.com/acme/dags` } });
    const h = makeCtx(spec, createFakeInfra());
    const err = await dagSources.run(h.ctx).catch((e) => e);
    expect(err.details.field).toBe('dagSource.repoUrl');
    expect(leakedSecrets(visibleText(h, err))).toEqual([]);
  });

  it('public Git repo: no Secret, repo_url in the bundle', async () => {
    const infra = createFakeInfra();
    const out = await dagSources.run(makeCtx(testSpec({ dagSource: { type: 'git', repoUrl: REPO } }), infra).ctx);
    expect(out.summary).toContain('public repository, no Git connection Secret');
    expect(infra.state.secrets.size).toBe(0);
    expect(infra.state.namespaces.size).toBe(0);
  });

  it('local bundle on the stock agent image warns that the image has no DAGs', async () => {
    const out = await dagSources.run(makeCtx(testSpec(), createFakeInfra()).ctx);
    expect(out.status).toBe('warned');
    expect(out.summary).toBe(`${CLASS.localBundle} 'dags-folder' reading the image's DAGs folder; no Secret needed; ${APPLIED_BY_STEP_2}`);
    expect(out.warnings![0]).toContain('contains no DAGs: set images.client');
  });

  it('local bundle with a client image does not warn', async () => {
    const out = await dagSources.run(makeCtx(testSpec({ images: { client: { repository: 'registry.acme.io/re/client' } } }), createFakeInfra()).ctx);
    expect(out.status).toBe('succeeded');
  });
});
