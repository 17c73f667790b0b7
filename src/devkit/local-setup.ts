/**
 * Everything a setup spec needs to run on this machine alone: a fake Kubernetes API, stand-ins for the
 * Astro and Airflow APIs, and (when buildah and docker-registry are installed) a real local registry.
 * The spec is rewritten to point at them. Used by `npm run demo`, the end-to-end tests and the benchmarks.
 */
import { join, resolve } from 'node:path';
import { startFakeAirflow, type FakeAirflow, type FakeDag } from './fake-airflow.ts';
import { startFakeAstro, type FakeAstro } from './fake-astro.ts';
import { startFakeKube, type FakeKube, type FakeKubeOptions } from './fake-kube/index.ts';
import { registryAvailable, startRegistry, type LocalRegistry } from './registry.ts';
import { findTool } from '../infra/tools.ts';
import { displayPath } from '../cli/paths.ts';
import { loadSpecFile } from '../spec/load.ts';
import type { SetupSpec } from '../spec/schema.ts';

export interface LocalSetupOptions {
  /** where kubeconfig and certs go */
  dir: string;
  /** the Deployment API token the Astro/Airflow stand-ins accept */
  apiToken: string;
  /** paths in the spec (chart, image context) are resolved against this */
  root: string;
  kube?: Omit<FakeKubeOptions, 'dir'>;
  /** the test DAG's behaviour in the Airflow stand-in */
  dag?: Partial<FakeDag>;
  /** start a registry for images.client when buildah/docker-registry exist (default true) */
  registry?: boolean;
  /** an already running fake Kubernetes API to reuse */
  sharedKube?: FakeKube;
}

export interface LocalSetup {
  spec: SetupSpec;
  kube: FakeKube;
  astro: FakeAstro;
  airflow: FakeAirflow;
  registry?: LocalRegistry;
  /** stands in for the Astro registry of the Deployment's imageRepository (images.server) */
  astroRegistry?: LocalRegistry;
  /** one line per stand-in, and why step 7 cannot build when it cannot */
  notes: string[];
  stop(): Promise<void>;
}

export async function startLocalSetup(input: SetupSpec, o: LocalSetupOptions): Promise<LocalSetup> {
  const spec: SetupSpec = structuredClone(input);
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const kube = o.sharedKube ?? (await startFakeKube({ ...o.kube, dir: join(o.dir, 'kube') }));
    if (!o.sharedKube) stops.push(() => kube.close());
    const notes = [`fake Kubernetes API   ${kube.url} (kubeconfig ${displayPath(kube.kubeconfigPath)})`];

    const remoteExecution: { enabled: boolean; remoteApiUrl: string; taskLogBucket?: string } = {
      enabled: true,
      remoteApiUrl: '',
      ...(spec.logging.mode === 'object-storage' ? { taskLogBucket: spec.logging.remoteBaseLogFolder } : {}),
    };
    // the Astro registry stand-in: takes only user cli with the API token, as the real one does
    const server = spec.images.server?.deploy ? spec.images.server : undefined;
    let astroRegistry: LocalRegistry | undefined;
    if (server) {
      server.contextDir = resolve(o.root, server.contextDir);
      if (o.registry !== false && findTool(server.builder) && registryAvailable()) {
        astroRegistry = await startRegistry({ auth: { username: 'cli', password: o.apiToken } });
        stops.push(() => astroRegistry!.stop());
      } else {
        server.deploy = false;
        notes.push(`Astro registry        none (${findTool(server.builder) ? 'docker-registry' : server.builder} is not installed): the server image is not deployed`);
      }
    }
    const imageRepository = astroRegistry ? `${astroRegistry.host}/${spec.deployment.organizationId}/${spec.deployment.id}` : undefined;
    const astro = await startFakeAstro({
      token: o.apiToken,
      deployments: [{
        organizationId: spec.deployment.organizationId, id: spec.deployment.id, name: spec.deployment.name, namespace: spec.deployment.namespace, remoteExecution,
        // the Runtime of the demo's server image and agent image
        runtimeVersion: '3.2-5', isDagDeployEnabled: true, ...(imageRepository ? { imageRepository } : {}),
        // what a platform engineer sets on the Deployment for the agents' logs and OpenLineage (steps 6 check both)
        environmentVariables: spec.openLineage.enabled ? [{ key: 'OPENLINEAGE_DISABLED', value: 'False' }] : [],
      }],
      deploys: {
        healthyAfterMs: 1000,
        ...(astroRegistry ? { imageDigest: (repo: string, tag: string) => astroRegistry!.manifestDigest(repo.slice(astroRegistry!.host.length + 1), tag) } : {}),
      },
    });
    stops.push(() => astro.stop());
    const dag: FakeDag = { tasks: ['hello_remote_agent'], outcome: 'success', durationMs: 1500, ...o.dag };
    const airflow = await startFakeAirflow({ token: o.apiToken, dags: { [spec.verify.testDag]: dag } });
    stops.push(() => airflow.stop());
    // the Astro stand-in reports the same remote API URL the spec uses, as the real Astro API would
    spec.deployment.astroApiUrl = astro.url;
    spec.deployment.apiUrl = remoteExecution.remoteApiUrl = `${astro.url}/d${spec.deployment.id.slice(-7)}`;
    spec.deployment.airflowApiUrl = airflow.apiUrl;
    notes.push(`Astro API stand-in    ${astro.url}`, `Airflow API stand-in  ${airflow.apiUrl}`);
    if (astroRegistry) notes.push(`Astro registry        ${astroRegistry.url} (docker-registry, htpasswd: user cli + the API token; imageRepository ${imageRepository})`);

    spec.cluster.kubeconfig = kube.kubeconfigPath;
    if (spec.cluster.chart.path) spec.cluster.chart = { path: resolve(o.root, spec.cluster.chart.path) };
    let registry: LocalRegistry | undefined;
    const client = spec.images.client;
    if (client) {
      client.contextDir = resolve(o.root, client.contextDir);
      if (o.registry !== false && findTool(client.builder) && registryAvailable()) {
        registry = await startRegistry();
        stops.push(() => registry!.stop());
        client.repository = client.repository.replace(/^[^/]+/, registry.host);
        notes.push(`image registry        ${registry.url} (docker-registry)`);
      } else if (findTool(client.builder)) {
        client.push = false; // build for real, but there is nowhere to push: step 7 says so
        notes.push('image registry        none (docker-registry is not installed): step 7 builds without pushing');
      } else {
        notes.push(`image registry        none (${client.builder} is not installed): step 7 reports it`);
      }
    }
    return { spec, kube, astro, airflow, registry, astroRegistry, notes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * examples/demo.yaml under another name: deployment, namespace and resource prefix all become `name`, so many
 * setups can share one fake cluster without touching each other (end-to-end tests, benchmarks). Without images.server.
 */
export async function demoSpecNamed(root: string, name: string, patch: (s: SetupSpec) => void = () => {}): Promise<SetupSpec> {
  const r = await loadSpecFile(join(root, 'examples', 'demo.yaml'));
  if (!r.ok) throw new Error(`examples/demo.yaml: ${JSON.stringify(r.errors)}`);
  const spec = r.spec;
  spec.deployment.name = name;
  spec.cluster.namespace = name;
  spec.cluster.resourceNamePrefix = name;
  // the server image deploy is left to `npm run demo` and the tests that turn it on: the others skip step 7 by deleting images.client
  delete (spec.images as { server?: unknown }).server;
  patch(spec);
  return spec;
}
