/**
 * Adapter contracts. Steps talk to the world only through these (on `StepContext.infra`).
 * Every method takes an optional AbortSignal and has its own timeout; errors are `RedactedError`s.
 */

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** called with the pid of a child process (helm, buildah) right after it starts: a resumed step uses it to tell a live orphan from a dead one */
  onSpawn?: (pid: number) => void;
}

// ---------- Kubernetes ----------
export interface NodeOomInfo {
  node: string;
  /** true / false as reported by the kubelet configz; null when configz could not be read */
  singleProcessOOMKill: boolean | null;
  /** why configz could not be read */
  error?: string;
  /** the API server refused configz (403): the identity has no `get nodes/proxy`, as with manifests/base */
  forbidden?: boolean;
}

export interface AccessCheck {
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
  subresource?: string;
}

export interface AccessResult extends AccessCheck {
  allowed: boolean;
  reason?: string;
}

export interface PodState {
  name: string;
  labels: Record<string, string>;
  phase: string;
  ready: boolean;
  restarts: number;
  /** e.g. CrashLoopBackOff, ImagePullBackOff */
  waitingReason?: string;
  message?: string;
  containers: string[];
}

export interface RolloutState {
  name: string;
  generation: number;
  observedGeneration: number;
  replicas: number;
  updatedReplicas: number;
  readyReplicas: number;
  /** the pod template's annotations */
  templateAnnotations: Record<string, string>;
}

export interface SecretInfo {
  type: string;
  keys: string[];
  /** secretContentHash (src/infra/ownership.ts) of the stored data */
  contentHash: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface KubeAdapter {
  serverVersion(opts?: CallOptions): Promise<{ major: string; minor: string; gitVersion: string }>;
  nodesOomKill(opts?: CallOptions): Promise<NodeOomInfo[]>;
  checkAccess(checks: AccessCheck[], opts?: CallOptions): Promise<AccessResult[]>;
  /** creates the namespace (with these labels/annotations) when missing; returns whether it was created */
  ensureNamespace(name: string, meta?: { labels?: Record<string, string>; annotations?: Record<string, string> }, opts?: CallOptions): Promise<{ created: boolean }>;
  /** labels and annotations of a namespace, null when it does not exist */
  readNamespace(name: string, opts?: CallOptions): Promise<{ labels: Record<string, string>; annotations: Record<string, string> } | null>;
  /**
   * create-or-update an Opaque (or typed) Secret; returns whether content changed. With `ownedBy`, an existing
   * Secret that re-bot did not create for that deployment is never changed (error code 'conflict').
   */
  applySecret(
    input: {
      namespace: string; name: string; type?: string; stringData: Record<string, string>;
      labels?: Record<string, string>; annotations?: Record<string, string>; ownedBy?: string;
    },
    opts?: CallOptions,
  ): Promise<{ action: 'created' | 'updated' | 'unchanged' }>;
  /** what a plan needs to know about a Secret without its values: null when it does not exist */
  readSecret(namespace: string, name: string, opts?: CallOptions): Promise<SecretInfo | null>;
  getSecretKeys(namespace: string, name: string, opts?: CallOptions): Promise<string[] | null>;
  listPods(namespace: string, labelSelector?: string, opts?: CallOptions): Promise<PodState[]>;
  /**
   * Sets `annotation: value` on the pod template of each named Deployment of Helm release `release` (a rollout
   * restart when the value changes; unchanged otherwise). A Deployment of another release is refused ('conflict').
   */
  restartDeployments?(namespace: string, names: string[], input: { release: string; annotation: string; value: string }, opts?: CallOptions): Promise<RolloutState[]>;
  /** rollout progress of the named Deployments (missing ones are left out) */
  deploymentRollouts?(namespace: string, names: string[], opts?: CallOptions): Promise<RolloutState[]>;
  podLogTail(namespace: string, pod: string, lines: number, opts?: CallOptions & { container?: string }): Promise<string>;
}

// ---------- Helm ----------
export interface ChartRef {
  /** either repo+chart+version or a local path */
  repo?: string;
  chart?: string;
  version?: string;
  path?: string;
}

export interface HelmReleaseInfo {
  revision: number;
  status: string;
  chart: string;
  appVersion?: string;
  description?: string;
  updated?: string;
}

export interface HelmUpgradeInput {
  release: string;
  namespace: string;
  chart: ChartRef;
  /** full values object; written to a 0600 temp file, never to argv */
  values: unknown;
  description?: string;
  kubeContext?: string;
  timeoutSeconds?: number;
}

export interface HelmDiff {
  /** unified-ish readable diff with Secret data masked */
  text: string;
  changedKeys: string[];
  /** true when no release exists yet */
  firstInstall: boolean;
}

export interface HelmAdapter {
  version(opts?: CallOptions): Promise<string>;
  template(input: HelmUpgradeInput, opts?: CallOptions): Promise<string>;
  upgradeInstall(input: HelmUpgradeInput, opts?: CallOptions): Promise<HelmReleaseInfo>;
  diff(input: HelmUpgradeInput, opts?: CallOptions): Promise<HelmDiff>;
  history(release: string, namespace: string, opts?: CallOptions): Promise<HelmReleaseInfo[]>;
  /** name and version from the chart's Chart.yaml (`helm show chart`) */
  chartMetadata(chart: ChartRef, opts?: CallOptions): Promise<{ name: string; version: string }>;
  getValues(release: string, namespace: string, opts?: CallOptions): Promise<unknown>;
  rollback(release: string, namespace: string, revision: number, opts?: CallOptions): Promise<void>;
  uninstall(release: string, namespace: string, opts?: CallOptions): Promise<void>;
}

// ---------- Images ----------
export interface ImageBuildInput {
  builder: 'buildah' | 'docker' | 'podman';
  contextDir: string;
  dockerfile: string;
  /** repository without tag, e.g. 127.0.0.1:5000/acme/agent */
  repository: string;
  tag: string;
  /** TLS verification for the push target (false for a local http registry) */
  tlsVerify?: boolean;
  platform?: string;
}

/** A local build (no push): the server image, pushed later to a destination known only after a deploy is created. */
export interface ImageLocalBuildInput {
  builder: ImageBuildInput['builder'];
  contextDir: string;
  dockerfile: string;
  /** local name, e.g. localhost/re-bot/server:<job> */
  image: string;
  platform?: string;
  /** top-level directories left out of the context on top of its .dockerignore, e.g. ['dags'] */
  exclude?: string[];
}

export interface ImagePushInput {
  builder: ImageBuildInput['builder'];
  /** a local image built by `build` */
  image: string;
  /** repository:tag to push to */
  destination: string;
  tlsVerify?: boolean;
  /** credentials for the destination's registry: written to a 0600 auth file removed after the push, never argv */
  auth?: { registry: string; username: string; password: string };
}

export interface ImageAdapter {
  available(builder: ImageBuildInput['builder']): Promise<{ ok: boolean; version?: string; reason?: string }>;
  buildAndPush(input: ImageBuildInput, opts?: CallOptions): Promise<{ image: string; tag: string; digest: string }>;
  /** digest of repository:tag in the registry, or null when the tag does not exist */
  remoteDigest(repository: string, tag: string, opts?: CallOptions & { tlsVerify?: boolean }): Promise<string | null>;
  /** builds without pushing; returns the image's labels */
  build(input: ImageLocalBuildInput, opts?: CallOptions): Promise<{ image: string; labels: Record<string, string> }>;
  /** whether a local image exists (a resumed step rebuilds a lost one) */
  hasLocal(builder: ImageBuildInput['builder'], image: string, opts?: CallOptions): Promise<boolean>;
  push(input: ImagePushInput, opts?: CallOptions): Promise<{ digest: string }>;
  /** removes a local image built by `build` (a server image is large and pushed once) */
  removeLocal(builder: ImageBuildInput['builder'], image: string, opts?: CallOptions): Promise<void>;
}

// ---------- Airflow REST API v2 ----------
export interface DagRun {
  dagId: string;
  dagRunId: string;
  state: 'queued' | 'running' | 'success' | 'failed' | string;
}

export interface AirflowClient {
  unpauseDag(dagId: string, opts?: CallOptions): Promise<void>;
  /** `dagRunId` makes the trigger idempotent: a second trigger with the same id fails with code 'conflict' */
  triggerDagRun(dagId: string, conf?: Record<string, unknown>, opts?: CallOptions & { dagRunId?: string }): Promise<DagRun>;
  getDagRun(dagId: string, dagRunId: string, opts?: CallOptions): Promise<DagRun>;
  listTaskInstances(dagId: string, dagRunId: string, opts?: CallOptions): Promise<Array<{ taskId: string; state: string | null; tryNumber: number }>>;
  taskLog(dagId: string, dagRunId: string, taskId: string, tryNumber: number, opts?: CallOptions): Promise<string>;
}

// ---------- Astro Platform API v1 ----------
export interface AstroDeployment {
  id: string;
  name?: string;
  namespace?: string;
  workspaceId?: string;
  runtimeVersion?: string;
  webServerAirflowApiUrl?: string;
  remoteExecution?: { enabled: boolean; remoteApiUrl?: string; allowedIpAddressRanges?: string[]; taskLogBucket?: string; taskLogUrlPattern?: string };
  /** the Deployment's environment variables; a secret one's value is never kept */
  environmentVariables?: Array<{ key: string; value?: string }>;
}

export interface AstroClient {
  getDeployment(organizationId: string, deploymentId: string, opts?: CallOptions): Promise<AstroDeployment>;
}

/** What a step receives on ctx.infra. Airflow/Astro are absent when not configured. */
export interface Infra {
  kube: KubeAdapter;
  helm: HelmAdapter;
  images: ImageAdapter;
  airflow?: AirflowClient;
  /** Astro Deploys API (server image deploy), src/infra/astro-deploys.ts */
  astroDeploys?: import('./astro-deploys.ts').AstroDeploysClient;
  astro?: AstroClient;
  /** agent tokens through the Astro API (src/infra/astro-tokens.ts); present when astro is */
  astroTokens?: import('./astro-tokens.ts').AstroTokensClient;
  /** reachability probe for a URL (HEAD/GET with timeout); used by prerequisites */
  probeUrl(url: string, opts?: CallOptions): Promise<{ ok: boolean; status?: number; error?: string }>;
}
