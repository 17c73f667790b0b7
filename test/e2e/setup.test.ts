/**
 * End-to-end: the real engine, the eight real steps, real helm against the fake Kubernetes API, a real
 * local registry (when installed), SQLite on disk, and the Astro/Airflow stand-ins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/app/wire.ts';
import { runSetupJob } from '../../src/cli/run.ts';
import { formatStatus } from '../../src/cli/status.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { createHelmAdapter, helmArgvLog } from '../../src/infra/helm.ts';
import { createKubeAdapter } from '../../src/infra/kube.ts';
import { imageArgvLog } from '../../src/infra/images.ts';
import { DeploymentLockedError } from '../../src/jobs/types.ts';
import { renderValues } from '../../src/spec/values.ts';
import { captureLogs, countIn, demoSpec, localSetup, scanFiles, scratchDir, setSecretEnv } from './support.ts';

let kube: FakeKube;
const logs = captureLogs();
const sink = () => {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d) => (text += d));
  return { stream: s as unknown as NodeJS.WriteStream, text: () => text };
};

beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('kube'), nodes: [{ name: 'n1', singleProcessOOMKill: true }, { name: 'n2', singleProcessOOMKill: false }] });
});
afterAll(async () => {
  await kube?.close();
});

describe('a complete setup from examples/demo.yaml', () => {
  const work = scratchDir('e2e-full');
  let result: Awaited<ReturnType<typeof runSetupJob>>;
  let out: ReturnType<typeof sink>;
  let local: Awaited<ReturnType<typeof localSetup>>;

  beforeAll(async () => {
    local = await localSetup(await demoSpec('e2e-full'), { sharedKube: kube });
    out = sink();
    result = await runSetupJob({ spec: local.spec, yes: true, dbPath: join(work, 're-bot.db'), outDir: join(work, 'out'), out: out.stream, pollMs: 50 });
  }, 180_000);
  afterAll(() => local?.stop());

  it('succeeds with every step in its own final state', () => {
    expect(result.exitCode, out.text()).toBe(0);
    const states = Object.fromEntries(result.job!.steps.map((s) => [s.stepId, s.state]));
    expect(states.prerequisites).toBe('warned'); // node n2 lacks singleProcessOOMKill
    for (const id of ['agents', 'secrets-backend', 'xcom-backend', 'dag-sources', 'logging', 'verify']) expect(states[id], id).toMatch(/succeeded|warned/);
    expect(states.deploy).toMatch(local.registry ? /succeeded|warned/ : /skipped|warned/);
    const prereq = result.job!.steps.find((s) => s.stepId === 'prerequisites')!;
    expect(prereq.warnings!.join(' ')).toMatch(/n2.*singleProcessOOMKill/);
  });

  it('leaves the rendered values on the release (helm get values against the fake API)', async () => {
    const helm = createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath });
    const values = (await helm.getValues('astro-agent', 'e2e-full')) as Record<string, unknown>;
    const rendered = renderValues(local.spec) as Record<string, unknown>;
    for (const key of ['agentTokenSecretName', 'imagePullSecretName', 'secretBackend', 'xcomBackend', 'dagBundleConfigList', 'commonEnv', 'openLineage', 'sentinel', 'resourceNamePrefix', 'astroDeploymentAPIURL']) {
      expect(values[key], key).toEqual(rendered[key]);
    }
    const history = await helm.history('astro-agent', 'e2e-full');
    if (local.registry) {
      // step 7 rolled the agents to the pushed client image: a second revision with that image
      expect(history.length).toBe(2);
      expect(String(values.image)).toContain(local.registry.host);
      const deploy = result.job!.steps.find((s) => s.stepId === 'deploy')!;
      const digest = String(deploy.output?.digest ?? '');
      const tag = String(deploy.output?.tag ?? '');
      expect(digest).toMatch(/^sha256:/);
      expect(await local.registry.manifestDigest('re-bot/demo-client', tag)).toBe(digest);
    } else expect(history.length).toBe(1);
    // the agent components exist in the cluster with Ready pods
    const deployments = kube.list('apps/v1', 'Deployment', 'e2e-full').map((d) => d.metadata.name);
    expect(deployments).toEqual(expect.arrayContaining(['e2e-full-worker-default-worker', 'e2e-full-dag-processor', 'e2e-full-triggerer', 'e2e-full-sentinel']));
    expect(kube.get('v1', 'Secret', 'e2e-full', String(values.agentTokenSecretName))?.data?.token).toBeDefined();
  });

  it('`re-bot status` shows every step, the chart, the revision and who approved', async () => {
    const rt = await createRuntime({ dbPath: join(work, 're-bot.db') });
    try {
      const text = formatStatus((await rt.status('e2e-full'))!);
      for (let n = 1; n <= 8; n++) expect(text).toMatch(new RegExp(`\\b${n}\\. `));
      expect(text).toMatch(/Helm revision [12]/);
      expect(text).toMatch(/approval .*approved by cli:/);
      expect(text).toContain('lock: free');
    } finally {
      await rt.close();
    }
  });

  it('no secret reaches the DB file, the values files, the logs, the terminal or any child argv', () => {
    expect(existsSync(join(work, 're-bot.db'))).toBe(true);
    expect(scanFiles(work)).toEqual([]);
    expect(countIn(logs.text())).toBe(0);
    expect(countIn(out.text())).toBe(0);
    expect(countIn(JSON.stringify(helmArgvLog))).toBe(0);
    expect(countIn(JSON.stringify(imageArgvLog))).toBe(0);
    // …while the cluster really received the agent token
    const s = kube.get('v1', 'Secret', 'e2e-full', String(renderValues(local.spec).agentTokenSecretName));
    expect(Buffer.from(s.data.token, 'base64').toString()).toBe(process.env.RE_BOT_DEMO_AGENT_TOKEN);
    expect(readFileSync(result.valuesFile!, 'utf8')).toContain('agentTokenSecretName');
  });
});

describe('failure paths', () => {
  it('an unset secret fails step 1 naming the field and the variable, before anything is written', async () => {
    const local = await localSetup(await demoSpec('e2e-unset', (s) => {
      delete (s.images as { client?: unknown }).client;
      if (s.dagSource.type === 'git') s.dagSource.credentials!.token = { env: 'RE_BOT_E2E_UNSET_GIT_TOKEN' };
    }), { sharedKube: kube });
    try {
      delete process.env.RE_BOT_E2E_UNSET_GIT_TOKEN;
      const out = sink();
      const r = await runSetupJob({ spec: local.spec, yes: true, dbPath: join(scratchDir('e2e-unset'), 'db.sqlite'), out: out.stream, pollMs: 50 });
      expect(r.exitCode).toBe(1);
      const step1 = r.job!.steps.find((s) => s.stepId === 'prerequisites')!;
      expect(step1.state).toBe('failed');
      expect(step1.error).toMatch(/nothing was changed: dagSource\.credentials\.token \(Git token\/password\): environment variable RE_BOT_E2E_UNSET_GIT_TOKEN is not set/);
      expect(r.job!.steps.filter((s) => s.stepId !== 'prerequisites').every((s) => s.state === 'pending' || s.state === 'skipped')).toBe(true);
      expect(kube.get('v1', 'Namespace', undefined, 'e2e-unset')).toBeUndefined();
    } finally {
      await local.stop();
    }
  }, 120_000);

  it('a crash-looping agent fails step 2 with the pod reason and a log tail', async () => {
    const local = await localSetup(await demoSpec('e2e-crash', (s) => { delete (s.images as { client?: unknown }).client; }), { sharedKube: kube });
    kube.crashLoop('e2e-crash-worker-default-worker', { reason: 'CrashLoopBackOff', restarts: 5, logTail: 'heartbeat failed: 403 Forbidden from the Astro API' });
    try {
      const out = sink();
      const r = await runSetupJob({ spec: local.spec, yes: true, dbPath: join(scratchDir('e2e-crash'), 'db.sqlite'), out: out.stream, pollMs: 50 });
      expect(r.exitCode).toBe(1);
      const agents = r.job!.steps.find((s) => s.stepId === 'agents')!;
      expect(agents.state).toBe('failed');
      expect(agents.error).toMatch(/e2e-crash-worker-default-worker.*CrashLoopBackOff.*5 restart/);
      expect(out.text()).toContain('403 Forbidden');
      expect(r.job!.steps.find((s) => s.stepId === 'verify')!.state).toBe('pending');
    } finally {
      kube.heal('e2e-crash-worker-default-worker');
      await local.stop();
    }
  }, 120_000);

  it('an approval is bound to the change: drift after approving asks again; an old hash and a second job are refused', async () => {
    const local = await localSetup(await demoSpec('e2e-drift', (s) => { delete (s.images as { client?: unknown }).client; }), { sharedKube: kube });
    const rt = await createRuntime({ dbPath: join(scratchDir('e2e-drift'), 'db.sqlite'), policy: { allowSelfApproval: true }, pollMs: 50 });
    try {
      const job = await rt.engine.submit({ spec: local.spec, requestedBy: { id: 'U_ALICE' }, origin: { kind: 'cli' } });
      rt.engine.start();
      let v = await rt.engine.settled(job.id);
      expect(v.state).toBe('waiting_approval');
      const first = v.approvals.find((a) => a.state === 'pending')!;

      // the lock: a second job for the same deployment names the holder
      await expect(rt.engine.submit({ spec: local.spec, requestedBy: { id: 'U_BOB' }, origin: { kind: 'cli' } })).rejects.toThrow(DeploymentLockedError);
      await expect(rt.engine.submit({ spec: local.spec, requestedBy: { id: 'U_BOB' }, origin: { kind: 'cli' } })).rejects.toThrow(new RegExp(`locked by job ${job.id} \\(requested by U_ALICE, waiting_approval`));

      // someone installs the release by hand before the approval is used: the approved diff is stale
      await rt.engine.stop();
      const helm = createHelmAdapter({ kubeconfigPath: kube.kubeconfigPath });
      // nothing was created before the approval: the hand install brings its own namespace
      await createKubeAdapter({ kubeconfigPath: kube.kubeconfigPath }).ensureNamespace('e2e-drift');
      await helm.upgradeInstall({ release: 'astro-agent', namespace: 'e2e-drift', chart: local.spec.cluster.chart, values: { ...renderValues(local.spec), logLevel: 'DEBUG' } });
      const ok = await rt.engine.decide(first.id, { by: { id: 'U_ALICE' }, decision: 'approve', hash: first.hash });
      expect(ok.ok).toBe(true);
      rt.engine.start();
      v = await rt.engine.settled(job.id);
      expect(v.state).toBe('waiting_approval');
      const second = v.approvals.find((a) => a.state === 'pending')!;
      expect(second.id).not.toBe(first.id);
      expect(second.hash).not.toBe(first.hash);
      expect(second.changedKeys.length).toBeGreaterThan(0);

      // a click on the old message (old hash) does not count for the new request
      const stale = await rt.engine.decide(second.id, { by: { id: 'U_ALICE' }, decision: 'approve', hash: first.hash });
      expect(stale).toMatchObject({ ok: false, reason: 'stale_hash' });
      await rt.engine.cancel(job.id, { id: 'U_ALICE' });
    } finally {
      await rt.close();
      await local.stop();
    }
  }, 120_000);
});
