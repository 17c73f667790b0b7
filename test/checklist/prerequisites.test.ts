import { afterEach, describe, expect, it } from 'vitest';
import { prerequisites, OOM_ADVICE } from '../../src/checklist/prerequisites.ts';
import { createKubeAdapter } from '../../src/infra/kube.ts';
import { startFakeKube, type FakeKube, type FakeKubeOptions } from '../../src/devkit/fake-kube/index.ts';
import type { StepOutcome } from '../../src/checklist/types.ts';
import { createFakeInfra } from './fake-infra.ts';
import { makeCtx, testSpec } from './step-context.ts';

/**
 * Step 1 against the fake Kubernetes API through the real kube adapter: what the user sees when the identity
 * has the least-privilege RBAC of manifests/base (no nodes/proxy, no namespaces create).
 */
const NO_NODES_PROXY = { verb: 'get', resource: 'nodes', subresource: 'proxy' };
const API_URL = testSpec().deployment.apiUrl;

let kube: FakeKube | undefined;
afterEach(async () => {
  await kube?.close();
  kube = undefined;
});

async function runStep1(kubeOpts: FakeKubeOptions, cluster: Record<string, unknown> = {}, o: { namespaceExists?: boolean } = {}): Promise<StepOutcome> {
  kube = await startFakeKube(kubeOpts);
  const infra = createFakeInfra();
  infra.kube = createKubeAdapter({ kubeconfigPath: kube.kubeconfigPath });
  if (o.namespaceExists) await infra.kube.ensureNamespace('astro-agents', { labels: {}, annotations: {} });
  infra.astro = { getDeployment: async (_o, id) => ({ id, remoteExecution: { enabled: true, remoteApiUrl: API_URL } }) };
  const spec = testSpec({ cluster: { namespace: 'astro-agents', chart: { version: '2.3.3' }, ...cluster } });
  return prerequisites.run(makeCtx(spec, infra).ctx);
}

describe('step 1 (prerequisites): kubelet configuration and permissions under least-privilege RBAC', () => {
  it('warns, without failing, when the kubelet configuration is forbidden, and says how to check by hand', async () => {
    const outcome = await runStep1({ nodes: [{ name: 'node-a', singleProcessOOMKill: false }], deny: [NO_NODES_PROXY] });
    expect(outcome.status).toBe('warned');
    expect(outcome.warnings).toEqual([
      "could not read the kubelet configuration of node node-a (forbidden: re-bot's identity has no nodes/proxy, by design), so singleProcessOOMKill was not checked; " +
        'check by hand with an admin identity: kubectl get --raw /api/v1/nodes/node-a/proxy/configz | jq .kubeletconfig.singleProcessOOMKill ' +
        '(it should print true; if not, an out-of-memory task kills the whole agent worker container on cgroup v2: set singleProcessOOMKill: true in the kubelet configuration)',
    ]);
    // not claimed to be unset: it was not read
    expect(outcome.output).toMatchObject({ nodesWithoutSingleProcessOOMKill: [], nodesNotChecked: ['node-a'] });
    expect(outcome.summary).toContain('permissions ok');
  });

  it('lists many forbidden nodes in one warning, a few by name, with the command to repeat per node', async () => {
    const nodes = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'].map((name) => ({ name, singleProcessOOMKill: true }));
    const outcome = await runStep1({ nodes, deny: [NO_NODES_PROXY] });
    expect(outcome.status).toBe('warned');
    expect(outcome.warnings).toHaveLength(1);
    expect(outcome.warnings![0]).toMatch(/^could not read the kubelet configuration of nodes n1, n2, n3, n4, n5 and 2 more \(forbidden: .*\), so singleProcessOOMKill was not checked; check by hand with an admin identity, for each node: kubectl get --raw \/api\/v1\/nodes\/n1\/proxy\/configz/);
  });

  it('with nodes/proxy allowed (the fake cluster default, as in the demo) reads configz and advises only on nodes where it is not true', async () => {
    const ok = await runStep1({ nodes: [{ name: 'node-a', singleProcessOOMKill: true }] });
    expect(ok.status).toBe('succeeded');
    expect(ok.warnings).toEqual([]);
    await kube!.close();
    const off = await runStep1({ nodes: [{ name: 'node-a', singleProcessOOMKill: true }, { name: 'node-b', singleProcessOOMKill: false }] });
    expect(off.warnings).toEqual([`1 of 2 node(s): node-b (false) — ${OOM_ADVICE}`]);
  });

  it('another configz failure is a warning that names the error', async () => {
    const infra = createFakeInfra();
    infra.kube.nodesOomKill = async () => [{ node: 'n1', singleProcessOOMKill: null, error: 'read kubelet configz of node n1: no answer from https://k8s within 20s' }];
    infra.astro = { getDeployment: async (_o, id) => ({ id, remoteExecution: { enabled: true, remoteApiUrl: API_URL } }) };
    const outcome = await prerequisites.run(makeCtx(testSpec(), infra).ctx);
    expect(outcome.status).toBe('warned');
    expect(outcome.warnings).toEqual([expect.stringMatching(/^could not read the kubelet configuration of node n1 \(read kubelet configz of node n1: no answer from https:\/\/k8s within 20s\), so singleProcessOOMKill was not checked; check by hand/)]);
  });

  it('needs namespaces create only when re-bot creates the namespace (manifests/base grants none)', async () => {
    const noCreate = { verb: 'create', resource: 'namespaces' };
    const existing = await runStep1({ deny: [NO_NODES_PROXY, noCreate] }, { createNamespace: false });
    expect(existing.status).toBe('warned');
    expect(existing.summary).toContain('permissions ok');
    await kube!.close();
    await expect(runStep1({ deny: [NO_NODES_PROXY, noCreate] }, { createNamespace: true })).rejects.toThrow('missing Kubernetes permissions: create namespaces');
    await kube!.close();
    // the Slack wizard keeps createNamespace: true; a namespace the platform team created beforehand needs no create
    const precreated = await runStep1({ deny: [NO_NODES_PROXY, noCreate] }, { createNamespace: true }, { namespaceExists: true });
    expect(precreated.summary).toContain('permissions ok');
  });
});
