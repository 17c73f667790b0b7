/**
 * Plan, approve, apply against the fake Kubernetes API with real helm: nothing reaches the cluster before
 * the approval, and re-bot changes only what it created for this deployment.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/app/wire.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { createHelmAdapter } from '../../src/infra/helm.ts';
import { createKubeAdapter } from '../../src/infra/kube.ts';
import { renderValues } from '../../src/spec/values.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';
import { countIn, demoSpec, localSetup, scratchDir, setSecretEnv } from './support.ts';

let kube: FakeKube;
beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('plan-kube') });
});
afterAll(() => kube?.close());

/** Every namespace, Secret (Helm keeps releases in Secrets), Deployment and ConfigMap, as the API serves them. */
// what a write by re-bot would change; the fake controller's own status updates (pods becoming Ready after a
// hand-made install) bump status and resourceVersion on its own schedule, so those are left out
const desired = (objs: any[]) => objs.map(({ status: _status, metadata: { resourceVersion: _rv, managedFields: _mf, ...metadata } = {}, ...rest }) => ({ ...rest, metadata }));
const snapshot = () => JSON.stringify({
  namespaces: desired(kube.list('v1', 'Namespace')),
  secrets: desired(kube.list('v1', 'Secret')),
  deployments: desired(kube.list('apps/v1', 'Deployment')),
  configMaps: desired(kube.list('v1', 'ConfigMap')),
});

async function submitted(name: string, patch: (s: SetupSpec) => void = () => {}) {
  const local = await localSetup(await demoSpec(name, (s) => { delete (s.images as { client?: unknown }).client; patch(s); }), { sharedKube: kube });
  const rt = await createRuntime({ dbPath: join(scratchDir(name), 'db.sqlite'), policy: { allowSelfApproval: true }, pollMs: 50 });
  const job = await rt.engine.submit({ spec: local.spec, requestedBy: { id: 'U_ALICE' }, origin: { kind: 'cli' } });
  rt.engine.start();
  const v = await rt.engine.settled(job.id);
  return { local, rt, job: v, close: async () => { await rt.close(); await local.stop(); } };
}

describe('plan, approve, apply', () => {
  it('a run stopped at the approval and then rejected leaves the cluster exactly as it was; the request lists namespace and Secrets without values', async () => {
    const before = snapshot();
    const s = await submitted('plan-reject');
    try {
      expect(s.job.state).toBe('waiting_approval');
      // nothing reached the cluster while waiting
      expect(snapshot()).toBe(before);
      const a = s.job.approvals[0];
      expect(a.stepId).toBe('agents');
      expect(a.diffText).toContain('Namespace plan-reject: create (labels app.kubernetes.io/managed-by=re-bot; annotation re-bot.astronomer.io/deployment=plan-reject)');
      for (const [name, type, key] of [['agent-token', 'Opaque', 'token'], ['pull-secret', 'kubernetes.io/dockerconfigjson', '.dockerconfigjson'], ['git-connection', 'Opaque', 'AIRFLOW_CONN_GIT_DEFAULT'], ['openlineage', 'Opaque', 'api-key']]) {
        expect(a.diffText).toMatch(new RegExp(`Secret plan-reject/plan-reject-${name} \\(${type.replace(/\./g, '\\.')}, key ${key.replace(/\./g, '\\.')}, content sha256:[0-9a-f]{12}\\): create`));
      }
      expect(a.diffText).toContain(`${s.local.spec.deployment.airflowApiUrl} (Airflow API) receives the Deployment API token in step 8`);
      expect(a.facts.chart).toBe('astro-remote-execution-agent 2.3.3-fake.1');
      expect(countIn(JSON.stringify(s.job))).toBe(0);
      // steps 3–6 are prepared, not done: nothing of theirs is in the cluster yet
      const states = Object.fromEntries(s.job.steps.map((x) => [x.stepId, x.state]));
      expect(states).toMatchObject({ 'secrets-backend': 'prepared', 'xcom-backend': 'prepared', 'dag-sources': 'prepared', logging: 'prepared', agents: 'waiting_approval' });

      expect(await s.rt.engine.decide(a.id, { by: { id: 'U_ALICE' }, decision: 'reject', hash: a.hash })).toMatchObject({ ok: true });
      const v = await s.rt.engine.settled(s.job.id);
      expect(v.state).toBe('failed');
      expect(v.steps.find((x) => x.stepId === 'dag-sources')!.state).toBe('prepared');
      expect(snapshot()).toBe(before);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('after the approval step 2 writes namespace and Secrets marked as re-bot\'s, and steps 3–6 become done', async () => {
    const s = await submitted('plan-apply');
    try {
      const a = s.job.approvals[0];
      await s.rt.engine.decide(a.id, { by: { id: 'U_ALICE' }, decision: 'approve', hash: a.hash });
      const v = await s.rt.engine.settled(s.job.id);
      expect(v.state, JSON.stringify(v.steps.map((x) => [x.stepId, x.state, x.error]))).toBe('succeeded');
      for (const id of ['secrets-backend', 'xcom-backend', 'dag-sources', 'logging']) expect(v.steps.find((x) => x.stepId === id)!.state).toMatch(/^(succeeded|warned)$/);
      const ns = kube.get('v1', 'Namespace', undefined, 'plan-apply');
      expect(ns.metadata.labels['app.kubernetes.io/managed-by']).toBe('re-bot');
      expect(ns.metadata.annotations['re-bot.astronomer.io/deployment']).toBe('plan-apply');
      for (const n of ['agent-token', 'pull-secret', 'git-connection', 'openlineage']) {
        const sec = kube.get('v1', 'Secret', 'plan-apply', `plan-apply-${n}`);
        expect(sec.metadata.labels['app.kubernetes.io/managed-by'], n).toBe('re-bot');
        expect(sec.metadata.annotations['re-bot.astronomer.io/deployment'], n).toBe('plan-apply');
      }
      const history = await createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath }).history('astro-agent', 'plan-apply');
      expect(history.map((h) => h.description)).toEqual([expect.stringMatching(new RegExp(`^re-bot job ${s.job.id} values [0-9a-f]{16} deployment plan-apply$`))]);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('a Secret someone else created under a wanted name fails the plan by name and is left byte-for-byte as it was', async () => {
    const k = createKubeAdapter({ kubeconfigPath: kube.kubeconfigPath });
    await k.ensureNamespace('plan-foreign-secret');
    await k.applySecret({ namespace: 'plan-foreign-secret', name: 'plan-foreign-secret-agent-token', stringData: { token: 'someone-elses' }, labels: { team: 'data' } });
    const before = snapshot();
    const s = await submitted('plan-foreign-secret');
    try {
      expect(s.job.state).toBe('failed');
      expect(s.job.approvals).toEqual([]);
      const step = s.job.steps.find((x) => x.stepId === 'agents')!;
      expect(step.error).toBe('Secret plan-foreign-secret/plan-foreign-secret-agent-token exists and was not created by re-bot for deployment plan-foreign-secret; delete it, or choose another cluster.resourceNamePrefix');
      expect(snapshot()).toBe(before);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('a release of another chart under the release name fails the plan by name and is left untouched', async () => {
    const chart = scratchDir('foo-chart');
    mkdirSync(join(chart, 'templates'));
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: foo\nversion: 1.2.3\n');
    writeFileSync(join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: foo\ndata:\n  a: "1"\n');
    const helm = createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath });
    await createKubeAdapter({ kubeconfigPath: kube.kubeconfigPath }).ensureNamespace('plan-foreign-release');
    await helm.upgradeInstall({ release: 'astro-agent', namespace: 'plan-foreign-release', chart: { path: chart }, values: {} });
    const before = snapshot();
    const s = await submitted('plan-foreign-release');
    try {
      expect(s.job.state).toBe('failed');
      expect(s.job.approvals).toEqual([]);
      expect(s.job.steps.find((x) => x.stepId === 'agents')!.error).toBe('release astro-agent in plan-foreign-release is chart foo-1.2.3, not astro-remote-execution-agent; choose another cluster.release');
      expect(snapshot()).toBe(before);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('a hand-installed release of the agent chart is adopted only as a plan line the approver sees', async () => {
    const helm = createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath });
    const spec = await demoSpec('plan-adopt');
    await createKubeAdapter({ kubeconfigPath: kube.kubeconfigPath }).ensureNamespace('plan-adopt');
    const s0 = await localSetup(spec, { sharedKube: kube });
    await helm.upgradeInstall({ release: 'astro-agent', namespace: 'plan-adopt', chart: s0.spec.cluster.chart, values: { ...renderValues(s0.spec), logLevel: 'DEBUG' } });
    await s0.stop();
    const before = snapshot();
    const s = await submitted('plan-adopt');
    try {
      expect(s.job.state).toBe('waiting_approval');
      const a = s.job.approvals[0];
      expect(a.diffText).toContain('adopts existing release astro-agent (revision 1, installed without re-bot): re-bot will upgrade and own it');
      expect(a.title).toContain('adopting the existing release');
      expect(a.facts.release).toContain('adopts revision 1, installed without re-bot');
      expect(a.diffText).toContain('Namespace plan-adopt: exists, not changed');
      expect(snapshot()).toBe(before);
      await s.rt.engine.cancel(s.job.id, { id: 'U_ALICE' });
    } finally {
      await s.close();
    }
  }, 120_000);
});
