/**
 * In-memory Infra for step unit tests, with the real adapter interfaces. Kube keeps namespaces, Secrets and
 * pods; Helm keeps a release history and, on upgrade, replaces the agent pods with pods of the new values'
 * image (a finished rolling update) unless told otherwise; Images records builds and keeps a registry.
 */
import { createHash } from 'node:crypto';
import { RedactedError } from '../../src/redact.ts';
import { canonicalJson } from '../../src/spec/values.ts';
import { ownerOf, secretContentHash } from '../../src/infra/ownership.ts';
import type { HelmReleaseInfo, HelmUpgradeInput, ImageBuildInput, ImageLocalBuildInput, ImagePushInput, Infra, PodState } from '../../src/infra/types.ts';

export interface FakeSecret {
  namespace: string;
  name: string;
  type: string;
  stringData: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface FakeInfraOptions {
  namespaces?: string[];
  builder?: { ok: boolean; reason?: string };
  /** what the agent pods do after an upgrade: become Ready on the new image (default), fail to pull it, or nothing */
  podsAfterUpgrade?: 'ready' | 'image-pull-backoff' | 'unchanged';
}

export type FakeInfra = Infra & {
  state: {
    namespaces: Set<string>;
    namespaceMeta: Map<string, { labels: Record<string, string>; annotations: Record<string, string> }>;
    /** every write to the cluster, in order (namespace, Secret, helm) */
    writes: string[];
    secrets: Map<string, FakeSecret>;
    pods: Map<string, PodState[]>;
    history: Map<string, HelmReleaseInfo[]>;
    deployedValues: Map<string, unknown>;
    upgrades: HelmUpgradeInput[];
    builds: ImageBuildInput[];
    /** local builds (the server image) and the labels each gets */
    localBuilds: ImageLocalBuildInput[];
    localImages: Set<string>;
    imageLabels: Record<string, string>;
    pushes: ImagePushInput[];
    /** one-shot: the server image push happens, then the call throws */
    crashAfterServerPush: boolean;
    registry: Map<string, string>;
    remoteLookups: Array<{ ref: string; tlsVerify?: boolean }>;
    /** one-shot crashes: the action happens, then the call throws (process killed before the checkpoint) */
    crashAfterUpgrade: boolean;
    crashAfterPush: boolean;
    podsAfterUpgrade: NonNullable<FakeInfraOptions['podsAfterUpgrade']>;
    builder: { ok: boolean; reason?: string };
  };
  secret(namespace: string, name: string): FakeSecret | undefined;
};

const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 10);

/** Pods the chart would run for these values: one per worker, DAG processor, triggerer, Sentinel. */
function podsFor(values: Record<string, any>, mode: 'ready' | 'image-pull-backoff'): PodState[] {
  const p = values.resourceNamePrefix as string;
  const agentHash = short(String(values.image));
  const comps = [...(values.workers ?? []).map((w: { name: string }) => `${p}-worker-${w.name}`), `${p}-dag-processor`, `${p}-triggerer`];
  const pods: PodState[] = comps.map((c) => ({
    name: `${c}-${agentHash}-abcde`,
    labels: { 'pod-template-hash': agentHash },
    phase: mode === 'ready' ? 'Running' : 'Pending',
    ready: mode === 'ready',
    restarts: 0,
    ...(mode === 'ready' ? {} : { waitingReason: 'ImagePullBackOff', message: `Back-off pulling image "${values.image}"` }),
    containers: ['agent'],
  }));
  if (values.sentinel?.enabled) {
    const h = short(String(values.sentinel.image ?? 'default'));
    pods.push({ name: `${p}-sentinel-${h}-fghij`, labels: { 'pod-template-hash': h }, phase: 'Running', ready: true, restarts: 0, containers: ['sentinel'] });
  }
  return pods;
}

export function createFakeInfra(opts: FakeInfraOptions = {}): FakeInfra {
  const state: FakeInfra['state'] = {
    namespaces: new Set(opts.namespaces ?? []),
    namespaceMeta: new Map(),
    writes: [],
    secrets: new Map(),
    pods: new Map(),
    history: new Map(),
    deployedValues: new Map(),
    upgrades: [],
    builds: [],
    localBuilds: [],
    localImages: new Set(),
    imageLabels: { 'io.astronomer.docker.runtime.version': '3.1-2' },
    pushes: [],
    crashAfterServerPush: false,
    registry: new Map(),
    remoteLookups: [],
    crashAfterUpgrade: false,
    crashAfterPush: false,
    podsAfterUpgrade: opts.podsAfterUpgrade ?? 'ready',
    builder: opts.builder ?? { ok: true },
  };
  const rel = (release: string, ns: string) => `${ns}/${release}`;

  const infra: FakeInfra = {
    state,
    secret: (namespace, name) => state.secrets.get(`${namespace}/${name}`),
    kube: {
      async serverVersion() {
        return { major: '1', minor: '31', gitVersion: 'v1.31.2' };
      },
      async nodesOomKill() {
        return [{ node: 'node-1', singleProcessOOMKill: true }];
      },
      async checkAccess(checks) {
        return checks.map((c) => ({ ...c, allowed: true }));
      },
      async ensureNamespace(name, meta) {
        if (state.namespaces.has(name)) return { created: false };
        state.writes.push(`namespace ${name}`);
        state.namespaces.add(name);
        state.namespaceMeta.set(name, { labels: { ...(meta?.labels ?? {}) }, annotations: { ...(meta?.annotations ?? {}) } });
        return { created: true };
      },
      async readNamespace(name) {
        if (!state.namespaces.has(name)) return null;
        return structuredClone(state.namespaceMeta.get(name) ?? { labels: {}, annotations: {} });
      },
      async readSecret(namespace, name) {
        const s = state.secrets.get(`${namespace}/${name}`);
        return s ? { type: s.type, keys: Object.keys(s.stringData).sort(), contentHash: secretContentHash(s.type, s.stringData), labels: { ...s.labels }, annotations: { ...s.annotations } } : null;
      },
      async applySecret(input) {
        if (!state.namespaces.has(input.namespace)) throw new RedactedError(`create Secret ${input.namespace}/${input.name} failed: namespaces "${input.namespace}" not found`, 'not_found');
        const key = `${input.namespace}/${input.name}`;
        const next: FakeSecret = {
          namespace: input.namespace, name: input.name, type: input.type ?? 'Opaque', stringData: { ...input.stringData },
          labels: { ...(input.labels ?? {}) }, annotations: { ...(input.annotations ?? {}) },
        };
        const prev = state.secrets.get(key);
        if (prev && input.ownedBy !== undefined && ownerOf(prev, input.ownedBy) !== 'ours') throw new RedactedError(`Secret ${key} was not created by re-bot`, 'conflict');
        state.writes.push(`secret ${key}`);
        state.secrets.set(key, next);
        if (!prev) return { action: 'created' };
        return canonicalJson(prev) === canonicalJson(next) ? { action: 'unchanged' } : { action: 'updated' };
      },
      async getSecretKeys(namespace, name) {
        const s = state.secrets.get(`${namespace}/${name}`);
        return s ? Object.keys(s.stringData).sort() : null;
      },
      async listPods(namespace) {
        return structuredClone(state.pods.get(namespace) ?? []);
      },
      async podLogTail(_ns, pod) {
        return `log of ${pod}`;
      },
    },
    helm: {
      async version() {
        return 'v3.16.2';
      },
      async template(input) {
        return canonicalJson(input.values);
      },
      async diff(input) {
        const current = state.deployedValues.get(rel(input.release, input.namespace)) as Record<string, unknown> | undefined;
        const next = input.values as Record<string, unknown>;
        if (!current) return { text: `release ${input.release} will be installed`, changedKeys: Object.keys(next).sort(), firstInstall: true };
        const keys = [...new Set([...Object.keys(current), ...Object.keys(next)])].sort();
        const changedKeys = keys.filter((k) => canonicalJson(current[k]) !== canonicalJson(next[k]));
        return { text: changedKeys.length ? changedKeys.map((k) => `~ ${k}`).join('\n') : 'no changes', changedKeys, firstInstall: false };
      },
      async upgradeInstall(input) {
        state.writes.push(`helm upgrade ${input.namespace}/${input.release}`);
        const key = rel(input.release, input.namespace);
        const history = state.history.get(key) ?? [];
        for (const h of history) if (h.status === 'deployed') h.status = 'superseded';
        const info: HelmReleaseInfo = { revision: history.length + 1, status: 'deployed', chart: 'astro-remote-execution-agent-2.3.3', description: input.description };
        history.push(info);
        state.history.set(key, history);
        state.deployedValues.set(key, structuredClone(input.values));
        state.upgrades.push(structuredClone(input));
        if (state.podsAfterUpgrade === 'ready') state.pods.set(input.namespace, podsFor(input.values as Record<string, any>, 'ready'));
        if (state.podsAfterUpgrade === 'image-pull-backoff') {
          state.pods.set(input.namespace, [...(state.pods.get(input.namespace) ?? []), ...podsFor(input.values as Record<string, any>, 'image-pull-backoff')]);
        }
        if (state.crashAfterUpgrade) {
          state.crashAfterUpgrade = false;
          throw new Error('re-bot process killed after helm upgrade');
        }
        return { ...info };
      },
      async history(release, namespace) {
        return structuredClone(state.history.get(rel(release, namespace)) ?? []);
      },
      async getValues(release, namespace) {
        return structuredClone(state.deployedValues.get(rel(release, namespace)) ?? null);
      },
      async chartMetadata() {
        return { name: 'astro-remote-execution-agent', version: '2.3.3' };
      },
      async rollback(release, namespace, revision) {
        state.writes.push(`helm rollback ${namespace}/${release} ${revision}`);
      },
      async uninstall(release, namespace) {
        state.writes.push(`helm uninstall ${namespace}/${release}`);
        state.history.delete(rel(release, namespace));
        state.deployedValues.delete(rel(release, namespace));
      },
    },
    images: {
      async available() {
        return state.builder.ok ? { ok: true, version: 'buildah version 1.39.3' } : { ok: false, reason: state.builder.reason };
      },
      async buildAndPush(input) {
        state.builds.push({ ...input });
        const digest = `sha256:${createHash('sha256').update(`${input.repository}:${input.tag}#${state.builds.length}`).digest('hex')}`;
        state.registry.set(`${input.repository}:${input.tag}`, digest);
        if (state.crashAfterPush) {
          state.crashAfterPush = false;
          throw new Error('re-bot process killed after push');
        }
        return { image: `${input.repository}:${input.tag}`, tag: input.tag, digest };
      },
      async build(input) {
        state.localBuilds.push({ ...input });
        state.localImages.add(input.image);
        return { image: input.image, labels: { ...state.imageLabels } };
      },
      async removeLocal(_builder, image) {
        state.localImages.delete(image);
      },
      async hasLocal(_builder, image) {
        return state.localImages.has(image);
      },
      async push(input) {
        if (!state.localImages.has(input.image)) throw new RedactedError(`push: ${input.image}: image not known`, 'image_failed');
        state.pushes.push(structuredClone(input));
        const digest = `sha256:${createHash('sha256').update(`${input.destination}#${state.pushes.length}`).digest('hex')}`;
        state.registry.set(input.destination, digest);
        if (state.crashAfterServerPush) {
          state.crashAfterServerPush = false;
          throw new Error('re-bot process killed after the server image push');
        }
        return { digest };
      },
      async remoteDigest(repository, tag, o) {
        state.remoteLookups.push({ ref: `${repository}:${tag}`, tlsVerify: o?.tlsVerify });
        return state.registry.get(`${repository}:${tag}`) ?? null;
      },
    },
    async probeUrl() {
      return { ok: true, status: 200 };
    },
  };
  return infra;
}
