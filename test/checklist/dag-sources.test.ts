import { describe, expect, it } from 'vitest';
import { dagSources } from '../../src/checklist/dag-sources.ts';
import { APPLIED_BY_STEP_2 } from '../../src/checklist/configured.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { CLASS, renderValues } from '../../src/spec/values.ts';
import { createFakeInfra } from './fake-infra.ts';
import { FAKE, leakedSecrets, makeCtx, testSpec, visibleText } from './step-context.ts';

const REPO = 'https://github.com/acme/dags';
const privateGit = (extra: Record<string, unknown> = {}) => ({
  dagSource: { type: 'git', repoUrl: REPO, subdir: 'dags', credentials: { username: { env: 'T_GIT_USER' }, token: { env: 'T_GIT_TOKEN' } } },
  ...extra,
});

describe('step 5: DAG sources', () => {
  it('private Git repo: creates the namespace, then the connection Secret under the key the agents read; no credential in what the step shows', async () => {
    const infra = createFakeInfra();
    const spec = testSpec(privateGit());
    const h = makeCtx(spec, infra);
    const out = await dagSources.run(h.ctx);

    expect(infra.state.namespaces.has('astro-agents')).toBe(true);
    const secret = infra.secret('astro-agents', 'sales-git-connection')!;
    expect(secret.type).toBe('Opaque');
    expect(Object.keys(secret.stringData)).toEqual(['AIRFLOW_CONN_GIT_DEFAULT']);
    expect(JSON.parse(secret.stringData.AIRFLOW_CONN_GIT_DEFAULT)).toEqual({ conn_type: 'git', host: REPO, login: FAKE.T_GIT_USER, password: FAKE.T_GIT_TOKEN });
    // the renderer's secretKeyRef points at exactly this Secret and key
    const worker = (renderValues(spec).workers as Array<{ env: unknown[] }>)[0];
    expect(worker.env).toContainEqual({ name: 'AIRFLOW_CONN_GIT_DEFAULT', valueFrom: { secretKeyRef: { name: 'sales-git-connection', key: 'AIRFLOW_CONN_GIT_DEFAULT' } } });

    expect(out.status).toBe('succeeded');
    expect(out.summary).toBe(
      `${CLASS.gitBundle} 'dags' tracking main of ${REPO} (subdir dags), refreshed every 60s; Git connection git_default in Secret sales-git-connection (key AIRFLOW_CONN_GIT_DEFAULT, created); ${APPLIED_BY_STEP_2}`,
    );
    expect(leakedSecrets(visibleText(h, out))).toEqual([]);
  });

  it('re-running is safe: the Secret is left unchanged', async () => {
    const infra = createFakeInfra();
    const spec = testSpec(privateGit());
    await dagSources.run(makeCtx(spec, infra).ctx);
    const again = await dagSources.run(makeCtx(spec, infra).ctx);
    expect(again.output).toMatchObject({ secretAction: 'unchanged', secrets: ['sales-git-connection'] });
    expect(infra.state.secrets.size).toBe(1);
  });

  it('existing namespace required (createNamespace false) and missing: fails naming cluster.namespace', async () => {
    const spec = testSpec(privateGit({ cluster: { namespace: 'astro-agents', createNamespace: false, chart: { version: '2.3.3' } } }));
    const infra = createFakeInfra();
    const err = await dagSources.run(makeCtx(spec, infra).ctx).catch((e) => e);
    expect(err).toBeInstanceOf(StepFailure);
    expect(err.details.field).toBe('cluster.namespace');
    expect(infra.state.namespaces.size).toBe(0);
    // with the namespace present the Secret is written without creating anything
    const ok = createFakeInfra({ namespaces: ['astro-agents'] });
    await dagSources.run(makeCtx(spec, ok).ctx);
    expect(ok.secret('astro-agents', 'sales-git-connection')).toBeDefined();
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
