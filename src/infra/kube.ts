/**
 * Kubernetes adapter on @kubernetes/client-node: what the setup needs and nothing more. Every call has
 * a deadline combined with the caller's AbortSignal, and every error is a RedactedError that names the
 * object and what the API server said (Secret data never reaches a message).
 */
import { ApiException, AppsV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, VersionApi, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { RedactedError } from '../redact.ts';
import type { AccessCheck, AccessResult, CallOptions, KubeAdapter, NodeOomInfo, PodState, RolloutState } from './types.ts';
import { ownerOf, secretContentHash } from './ownership.ts';

export interface KubeAdapterOptions {
  /** default: $KUBECONFIG or ~/.kube/config, as kubectl loads it */
  kubeconfigPath?: string;
  context?: string;
  defaultTimeoutMs?: number;
  /** where $KUBECONFIG and $HOME are read (default process.env) */
  env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 20_000;

export class KubeError extends RedactedError {
  constructor(message: string, readonly status?: number) {
    super(message, status === 404 ? 'not_found' : status === 409 ? 'conflict' : status === 403 ? 'forbidden' : 'kube_failed');
    this.name = 'KubeError';
  }
}

/**
 * client-node 2.0 builds a new undici Agent for every request, so each API call would pay a TLS handshake
 * and a fresh secure context. One kubeconfig has one cluster and one user: keep one dispatcher and reuse
 * its kept-alive connections.
 */
function reuseDispatcher(kc: KubeConfig): void {
  const target = kc as unknown as { createDispatcher(cluster: unknown, agentOptions: unknown): unknown };
  const create = target.createDispatcher.bind(kc);
  let cached: { server: unknown; dispatcher: unknown } | undefined;
  target.createDispatcher = (cluster, agentOptions) => {
    const server = (cluster as { server?: string } | null)?.server;
    if (!cached || cached.server !== server) cached = { server, dispatcher: create(cluster, agentOptions) };
    return cached.dispatcher;
  };
}

/** Where the in-cluster service account token is mounted (client-node falls back to it, as kubectl does). */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export type KubeconfigSource =
  | { kind: 'file'; from: 'cluster.kubeconfig' | 'KUBECONFIG' | '~/.kube/config'; files: string[] }
  | { kind: 'in-cluster' }
  | { kind: 'none'; message: string };

/**
 * Which kubeconfig client-node (and kubectl) would load: the explicit path (the spec's cluster.kubeconfig),
 * else $KUBECONFIG (a list), else ~/.kube/config, else the pod's service account. When none of them exists,
 * client-node silently falls back to http://localhost:8080; this says what was looked at instead.
 */
export function locateKubeconfig(kubeconfigPath: string | undefined, env: NodeJS.ProcessEnv = process.env, inClusterToken = SERVICE_ACCOUNT_TOKEN): KubeconfigSource {
  if (kubeconfigPath) return { kind: 'file', from: 'cluster.kubeconfig', files: [kubeconfigPath] };
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (list.length) return { kind: 'file', from: 'KUBECONFIG', files: list };
  const home = env.HOME || (env === process.env ? homedir() : '');
  const homeConfig = home ? join(home, '.kube', 'config') : '';
  if (homeConfig && existsSync(homeConfig)) return { kind: 'file', from: '~/.kube/config', files: [homeConfig] };
  if (existsSync(inClusterToken)) return { kind: 'in-cluster' };
  return {
    kind: 'none',
    message:
      `no kubeconfig found: looked at $KUBECONFIG (unset), cluster.kubeconfig (not set in the spec), ` +
      `~/.kube/config (${home ? `missing: ${homeConfig}` : 'HOME is not set'}); set KUBECONFIG or cluster.kubeconfig`,
  };
}

export function loadKubeConfig(opts: Pick<KubeAdapterOptions, 'kubeconfigPath' | 'context'>, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  reuseDispatcher(kc);
  const source = locateKubeconfig(opts.kubeconfigPath, env);
  if (source.kind === 'none') throw new KubeError(source.message);
  const where = source.kind === 'file' ? `${source.files.join(delimiter)}${source.from === 'cluster.kubeconfig' ? '' : ` (from ${source.from})`}` : 'the in-cluster service account';
  try {
    if (source.kind === 'in-cluster') kc.loadFromCluster();
    else {
      kc.loadFromFile(source.files[0]!);
      for (const file of source.files.slice(1)) {
        const more = new KubeConfig();
        more.loadFromFile(file);
        kc.mergeConfig(more);
      }
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new KubeError(`cannot read kubeconfig ${where}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  if (opts.context) {
    if (!kc.getContexts().some((c) => c.name === opts.context)) {
      throw new KubeError(`kube context "${opts.context}" is not in ${where} (known: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) throw new KubeError(`the kubeconfig ${where} has no current cluster: set its current-context or cluster.kubeContext in the spec`);
  return kc;
}

/** The API server's own message (Status.message), never the request body. */
function statusMessage(err: ApiException<unknown>): string {
  const body = err.body as unknown;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return `HTTP ${err.code}`;
}

const shared = new Map<string, KubeAdapter>();

/** One adapter (and so one connection pool) per kubeconfig file version and context, shared by every step. */
export function sharedKubeAdapter(options: KubeAdapterOptions = {}): KubeAdapter {
  const path = options.kubeconfigPath ?? process.env.KUBECONFIG ?? '';
  let version = '';
  try {
    version = path ? String(statSync(path).mtimeMs) : '';
  } catch {
    /* a missing file is reported by the first call */
  }
  const key = JSON.stringify([path, version, options.context ?? '', options.defaultTimeoutMs ?? 0]);
  let adapter = shared.get(key);
  if (!adapter) shared.set(key, (adapter = createKubeAdapter(options)));
  return adapter;
}

export function createKubeAdapter(options: KubeAdapterOptions = {}): KubeAdapter {
  let kc: KubeConfig | undefined;
  const config = () => (kc ??= loadKubeConfig(options, options.env));
  let clients: { core: CoreV1Api; authz: AuthorizationV1Api; version: VersionApi; apps: AppsV1Api } | undefined;
  const api = () => (clients ??= { core: config().makeApiClient(CoreV1Api), authz: config().makeApiClient(AuthorizationV1Api), version: config().makeApiClient(VersionApi), apps: config().makeApiClient(AppsV1Api) });
  const core = () => api().core;
  const authz = () => api().authz;
  const server = () => config().getCurrentCluster()?.server ?? 'the cluster';

  /** Runs one API call with a deadline; `what` names the object for the error message. */
  async function call<T>(what: string, opts: CallOptions | undefined, fn: (o: { middleware: unknown[]; middlewareMergeStrategy: 'append' }) => Promise<T>): Promise<T> {
    const timeoutMs = opts?.timeoutMs ?? options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (opts?.signal?.aborted) throw new KubeError(`${what}: cancelled`);
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = opts?.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    // client-node 2.0 calls these observable-style (`.toPromise()`) on some paths and promise-style on others
    const both = <C>(ctx: C) => Object.assign(Promise.resolve(ctx), { toPromise: () => Promise.resolve(ctx) });
    const middleware = [{ pre: (ctx: { setSignal(s: AbortSignal): void }) => { ctx.setSignal(signal); return both(ctx); }, post: <C>(ctx: C) => both(ctx) }];
    try {
      return await fn({ middleware, middlewareMergeStrategy: 'append' });
    } catch (err) {
      // the kubeconfig could not be loaded: that message already says what to fix
      if (err instanceof KubeError && !kc) throw err;
      if (deadline.aborted) throw new KubeError(`${what}: no answer from ${server()} within ${Math.round(timeoutMs / 1000)}s`);
      if (opts?.signal?.aborted) throw new KubeError(`${what}: cancelled`);
      if (err instanceof ApiException) throw new KubeError(`${what}: ${statusMessage(err)} (HTTP ${err.code})`, err.code);
      const e = err as { message?: string; cause?: { code?: string; message?: string } };
      throw new KubeError(`${what}: cannot reach ${server()} (${e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)})`);
    }
  }
  // client-node's option type is generic over its middleware; the shape above is what it expects
  type Opt = Parameters<CoreV1Api['readNamespace']>[1];
  const o = (x: unknown) => x as Opt;

  return {
    async serverVersion(opts) {
      const v = await call('read server version', opts, (x) => api().version.getCode(o(x)));
      return { major: v.major, minor: v.minor.replace(/\D+$/, ''), gitVersion: v.gitVersion };
    },

    async nodesOomKill(opts) {
      const nodes = await call('list nodes', opts, (x) => core().listNode({}, o(x)));
      const out: NodeOomInfo[] = [];
      for (const n of nodes.items) {
        const name = n.metadata?.name ?? '?';
        try {
          const raw = await call(`read kubelet configz of node ${name}`, opts, (x) => core().connectGetNodeProxyWithPath({ name, path: 'configz' }, o(x)));
          const parsed = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { kubeletconfig?: { singleProcessOOMKill?: boolean } };
          const v = parsed.kubeletconfig?.singleProcessOOMKill;
          out.push({ node: name, singleProcessOOMKill: typeof v === 'boolean' ? v : null });
        } catch (err) {
          // a 403 is expected with least-privilege RBAC (no nodes/proxy): the step warns, it does not fail
          const forbidden = err instanceof KubeError && err.status === 403;
          out.push({ node: name, singleProcessOOMKill: null, error: (err as Error).message, ...(forbidden ? { forbidden } : {}) });
        }
      }
      return out;
    },

    async checkAccess(checks: AccessCheck[], opts): Promise<AccessResult[]> {
      return Promise.all(
        checks.map(async (c) => {
          const r = await call(`check permission ${c.verb} ${c.resource}`, opts, (x) =>
            authz().createSelfSubjectAccessReview(
              { body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { verb: c.verb, resource: c.resource, group: c.group ?? '', namespace: c.namespace, subresource: c.subresource } } } },
              o(x),
            ),
          );
          return { ...c, allowed: r.status?.allowed === true, reason: r.status?.reason };
        }),
      );
    },

    async restartDeployments(namespace, names, input, opts) {
      const out: RolloutState[] = [];
      for (const name of names) {
        const what = `Deployment ${namespace}/${name}`;
        const d = await call(`read ${what}`, opts, (x) => api().apps.readNamespacedDeployment({ name, namespace }, o(x)));
        const owner = d.metadata?.annotations?.['meta.helm.sh/release-name'];
        if (owner !== input.release) throw new KubeError(`${what} does not belong to Helm release ${input.release}${owner ? ` (it belongs to ${owner})` : ''}: not restarting it`, 409);
        const tpl = (d.spec!.template.metadata ??= {});
        if (tpl.annotations?.[input.annotation] !== input.value) {
          tpl.annotations = { ...(tpl.annotations ?? {}), [input.annotation]: input.value };
          const r = await call(`update ${what}`, opts, (x) => api().apps.replaceNamespacedDeployment({ name, namespace, body: d }, o(x)));
          out.push(rolloutOf(r));
        } else out.push(rolloutOf(d));
      }
      return out;
    },

    async deploymentRollouts(namespace, names, opts) {
      const out: RolloutState[] = [];
      for (const name of names) {
        try {
          out.push(rolloutOf(await call(`read Deployment ${namespace}/${name}`, opts, (x) => api().apps.readNamespacedDeployment({ name, namespace }, o(x)))));
        } catch (err) {
          if (!(err instanceof KubeError && err.code === 'not_found')) throw err;
        }
      }
      return out;
    },

    async readNamespace(name, opts) {
      try {
        const n = await call(`read namespace ${name}`, opts, (x) => core().readNamespace({ name }, o(x)));
        return { labels: n.metadata?.labels ?? {}, annotations: n.metadata?.annotations ?? {} };
      } catch (err) {
        if (err instanceof KubeError && err.code === 'not_found') return null;
        throw err;
      }
    },

    async readSecret(namespace, name, opts) {
      try {
        const s = await call(`read Secret ${namespace}/${name}`, opts, (x) => core().readNamespacedSecret({ name, namespace }, o(x)));
        const type = s.type ?? 'Opaque';
        const decoded = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
        return { type, keys: Object.keys(decoded).sort(), contentHash: secretContentHash(type, decoded), labels: s.metadata?.labels ?? {}, annotations: s.metadata?.annotations ?? {} };
      } catch (err) {
        if (err instanceof KubeError && err.code === 'not_found') return null;
        throw err;
      }
    },

    async ensureNamespace(name, meta, opts) {
      try {
        await call(`read namespace ${name}`, opts, (x) => core().readNamespace({ name }, o(x)));
        return { created: false };
      } catch (err) {
        if (!(err instanceof KubeError) || err.code !== 'not_found') throw err;
      }
      try {
        await call(`create namespace ${name}`, opts, (x) => core().createNamespace({ body: { metadata: { name, labels: meta?.labels, annotations: meta?.annotations } } }, o(x)));
        return { created: true };
      } catch (err) {
        if (err instanceof KubeError && err.code === 'conflict') return { created: false }; // created meanwhile
        throw err;
      }
    },

    async applySecret(input, opts) {
      const { namespace, name } = input;
      const data = Object.fromEntries(Object.entries(input.stringData).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
      const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels: input.labels, annotations: input.annotations }, type: input.type ?? 'Opaque', data };
      let current;
      try {
        current = await call(`read Secret ${namespace}/${name}`, opts, (x) => core().readNamespacedSecret({ name, namespace }, o(x)));
      } catch (err) {
        if (!(err instanceof KubeError) || err.code !== 'not_found') throw err;
      }
      if (!current) {
        await call(`create Secret ${namespace}/${name}`, opts, (x) => core().createNamespacedSecret({ namespace, body }, o(x)));
        return { action: 'created' };
      }
      if (input.ownedBy !== undefined && ownerOf({ labels: current.metadata?.labels ?? {}, annotations: current.metadata?.annotations ?? {} }, input.ownedBy) !== 'ours') {
        throw new KubeError(`Secret ${namespace}/${name} exists and was not created by re-bot for deployment ${input.ownedBy}: not changing it`, 409);
      }
      const sameData = JSON.stringify(sortKeys(current.data ?? {})) === JSON.stringify(sortKeys(data));
      const sameLabels = Object.entries(input.labels ?? {}).every(([k, v]) => current.metadata?.labels?.[k] === v)
        && Object.entries(input.annotations ?? {}).every(([k, v]) => current.metadata?.annotations?.[k] === v);
      if (sameData && sameLabels && (current.type ?? 'Opaque') === body.type) return { action: 'unchanged' };
      if ((current.type ?? 'Opaque') !== body.type) {
        // the type of a Secret is immutable: replace it
        await call(`delete Secret ${namespace}/${name}`, opts, (x) => core().deleteNamespacedSecret({ name, namespace }, o(x)));
        await call(`create Secret ${namespace}/${name}`, opts, (x) => core().createNamespacedSecret({ namespace, body }, o(x)));
        return { action: 'updated' };
      }
      const replaced = { ...body, metadata: {
        ...body.metadata,
        labels: { ...(current.metadata?.labels ?? {}), ...(input.labels ?? {}) },
        annotations: { ...(current.metadata?.annotations ?? {}), ...(input.annotations ?? {}) },
        resourceVersion: current.metadata?.resourceVersion,
      } };
      await call(`update Secret ${namespace}/${name}`, opts, (x) => core().replaceNamespacedSecret({ name, namespace, body: replaced }, o(x)));
      return { action: 'updated' };
    },

    async getSecretKeys(namespace, name, opts) {
      try {
        const s = await call(`read Secret ${namespace}/${name}`, opts, (x) => core().readNamespacedSecret({ name, namespace }, o(x)));
        return Object.keys(s.data ?? {}).sort();
      } catch (err) {
        if (err instanceof KubeError && err.code === 'not_found') return null;
        throw err;
      }
    },

    async listPods(namespace, labelSelector, opts) {
      const list = await call(`list pods in ${namespace}`, opts, (x) => core().listNamespacedPod({ namespace, labelSelector }, o(x)));
      return list.items.map(podState);
    },

    async podLogTail(namespace, pod, lines, opts) {
      const text = await call(`read log of pod ${namespace}/${pod}`, opts, (x) =>
        core().readNamespacedPodLog({ name: pod, namespace, tailLines: lines, container: opts?.container }, o(x)),
      );
      return String(text ?? '');
    },
  };
}

export function podState(p: V1Pod): PodState {
  const statuses = p.status?.containerStatuses ?? [];
  const waiting = statuses.find((s) => s.state?.waiting)?.state?.waiting;
  const terminated = statuses.find((s) => s.lastState?.terminated)?.lastState?.terminated;
  return {
    name: p.metadata?.name ?? '?',
    labels: p.metadata?.labels ?? {},
    phase: p.status?.phase ?? 'Unknown',
    ready: (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    restarts: statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0),
    waitingReason: waiting?.reason,
    message: waiting?.message ?? terminated?.message ?? terminated?.reason,
    containers: (p.spec?.containers ?? []).map((c) => c.name),
  };
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

function rolloutOf(d: V1Deployment): RolloutState {
  return {
    name: d.metadata?.name ?? '?',
    generation: d.metadata?.generation ?? 0,
    observedGeneration: d.status?.observedGeneration ?? 0,
    replicas: d.spec?.replicas ?? 1,
    updatedReplicas: d.status?.updatedReplicas ?? 0,
    readyReplicas: d.status?.readyReplicas ?? 0,
    templateAnnotations: d.spec?.template.metadata?.annotations ?? {},
  };
}
