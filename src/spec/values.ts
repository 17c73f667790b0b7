/**
 * SetupSpec → values for the `astro-remote-execution-agent` chart. Pure and deterministic.
 * Only the chart's real keys; never `agentToken`, `imagePullSecretData` or `openLineage.apiKey`:
 * secrets travel in Kubernetes Secrets created by re-bot and are referenced here by name.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { ChartSpec, SetupSpec, WorkerSpec, Resources } from './schema.ts';

export const CLASS = {
  awsSecretsManager: 'airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend',
  azureKeyVault: 'airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend',
  gcpSecretManager: 'airflow.providers.google.cloud.secrets.secret_manager.CloudSecretManagerBackend',
  vault: 'airflow.providers.hashicorp.secrets.vault.VaultBackend',
  xcomObjectStorage: 'airflow.providers.common.io.xcom.backend.XComObjectStorageBackend',
  gitBundle: 'airflow.providers.git.bundles.git.GitDagBundle',
  localBundle: 'airflow.dag_processing.bundles.local.LocalDagBundle',
} as const;

export const AGENT_TOKEN_KEY = 'token';
export const OPENLINEAGE_KEY = 'api-key';
const HPA_METRIC = 'astro_agent_client_queued_or_running_tasks';
const LOG_VOLUME = 'task-logs';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
}
export type Values = Record<string, unknown>;

export interface SecretNames {
  /** key `token` */
  agentToken: string;
  /** type kubernetes.io/dockerconfigjson */
  pullSecret: string;
  /** key `api-key`; only used when openLineage.enabled */
  openLineage: string;
  /** key = gitConnectionEnv; only used for a Git source with credentials */
  gitConnection: string;
  /** e.g. AIRFLOW_CONN_GIT_DEFAULT, or undefined when no Git credentials are configured */
  gitConnectionEnv?: string;
}

/** The names of every Secret re-bot creates, derived from resourceNamePrefix. The one place they are defined. */
export function secretNames(spec: SetupSpec): SecretNames {
  const p = spec.cluster.resourceNamePrefix;
  const git = spec.dagSource.type === 'git' && spec.dagSource.credentials ? connEnvName(spec.dagSource.connId) : undefined;
  return { agentToken: `${p}-agent-token`, pullSecret: `${p}-pull-secret`, openLineage: `${p}-openlineage`, gitConnection: `${p}-git-connection`, gitConnectionEnv: git };
}

/** Names of the Secrets this spec actually needs, in creation order. */
export function requiredSecretNames(spec: SetupSpec): string[] {
  const n = secretNames(spec);
  const out = [n.agentToken, n.pullSecret];
  if (n.gitConnectionEnv) out.push(n.gitConnection);
  if (spec.openLineage.enabled) out.push(n.openLineage);
  return out;
}

export function connEnvName(connId: string): string {
  return `AIRFLOW_CONN_${connId.toUpperCase()}`;
}

/** Value of the Git connection Secret key (JSON connection form). The repo URL goes in `host` (credentials are ignored when repo_url is also in the bundle kwargs). */
export function gitConnectionValue(repoUrl: string, username: string, token: string): string {
  return JSON.stringify({ conn_type: 'git', login: username, password: token, host: repoUrl });
}

function env(name: string, value: string): EnvVar {
  return { name, value };
}

function secretsBackend(spec: SetupSpec): { classPath?: string; kwargs?: Record<string, unknown> } {
  const b = spec.secretsBackend;
  const put = (o: Record<string, unknown>, k: string, v: unknown) => {
    if (v !== undefined) o[k] = v;
  };
  switch (b.provider) {
    case 'none':
      return {};
    case 'aws-secrets-manager': {
      const kw: Record<string, unknown> = { connections_prefix: b.connectionsPrefix, variables_prefix: b.variablesPrefix };
      put(kw, 'config_prefix', b.configPrefix);
      kw.region_name = b.region;
      put(kw, 'role_arn', b.roleArn);
      return { classPath: CLASS.awsSecretsManager, kwargs: kw };
    }
    case 'azure-key-vault': {
      const kw: Record<string, unknown> = { vault_url: b.vaultUrl, connections_prefix: b.connectionsPrefix, variables_prefix: b.variablesPrefix };
      put(kw, 'config_prefix', b.configPrefix);
      put(kw, 'sep', b.sep);
      return { classPath: CLASS.azureKeyVault, kwargs: kw };
    }
    case 'gcp-secret-manager': {
      const kw: Record<string, unknown> = { project_id: b.projectId, connections_prefix: b.connectionsPrefix, variables_prefix: b.variablesPrefix };
      put(kw, 'config_prefix', b.configPrefix);
      put(kw, 'sep', b.sep);
      return { classPath: CLASS.gcpSecretManager, kwargs: kw };
    }
    case 'hashicorp-vault': {
      const kw: Record<string, unknown> = {
        url: b.url,
        mount_point: b.mountPoint,
        connections_path: b.connectionsPath,
        variables_path: b.variablesPath,
      };
      put(kw, 'config_path', b.configPath);
      kw.kv_engine_version = b.kvEngineVersion;
      kw.auth_type = b.authType;
      put(kw, 'auth_mount_point', b.authMountPoint);
      put(kw, 'kubernetes_role', b.kubernetesRole);
      put(kw, 'kubernetes_jwt_path', b.kubernetesJwtPath);
      return { classPath: CLASS.vault, kwargs: kw };
    }
  }
}

function xcomEnv(spec: SetupSpec): EnvVar[] {
  const x = spec.xcomBackend;
  if (x.type === 'none') return [];
  const tail = x.prefix ? `/${x.prefix}` : '';
  let path: string;
  let conn: Record<string, unknown>;
  if (x.type === 's3') {
    path = `s3://${x.connId}@${x.bucket}${tail}`;
    conn = x.region ? { conn_type: 'aws', extra: { region_name: x.region } } : { conn_type: 'aws' };
  } else if (x.type === 'azure-blob') {
    path = `abfs://${x.connId}@${x.container}${tail}`;
    const extra: Record<string, string> = {};
    if (spec.identity.provider === 'azure') {
      extra.managed_identity_client_id = spec.identity.clientId;
      if (spec.identity.tenantId) extra.workload_identity_tenant_id = spec.identity.tenantId;
    }
    conn = { conn_type: 'wasb', login: x.storageAccount, extra };
  } else {
    path = `gs://${x.connId}@${x.bucket}${tail}`;
    conn = { conn_type: 'google_cloud_platform' };
  }
  const out = [
    env('AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH', path),
    env('AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD', String(x.threshold)),
  ];
  if (x.compression) out.push(env('AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION', x.compression));
  // the connection carries no credential (workload identity supplies it), so it may live in plain values
  out.push(env(connEnvName(x.connId), JSON.stringify(conn)));
  return out;
}

function loggingEnv(spec: SetupSpec): EnvVar[] {
  const l = spec.logging;
  if (l.mode !== 'object-storage') return [];
  const out = [
    env('AIRFLOW__LOGGING__REMOTE_LOGGING', 'True'),
    env('AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS', 'astronomer.runtime.logging.logging_config'),
    env('AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER', l.remoteBaseLogFolder),
  ];
  if (l.connId) out.push(env('AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID', l.connId));
  if (l.region) out.push(env('AWS_DEFAULT_REGION', l.region));
  return out;
}

export function commonEnv(spec: SetupSpec): EnvVar[] {
  const d = spec.deployment;
  const out: EnvVar[] = [
    env('ASTRO_ORGANIZATION_ID', d.organizationId),
    env('ASTRO_WORKSPACE_ID', d.workspaceId),
    env('ASTRO_DEPLOYMENT_ID', d.id),
    env('ASTRO_DEPLOYMENT_NAMESPACE', d.namespace),
  ];
  const sb = secretsBackend(spec);
  if (sb.kwargs) out.push(env('AIRFLOW__SECRETS__BACKEND_KWARGS', JSON.stringify(sb.kwargs)));
  out.push(...xcomEnv(spec), ...loggingEnv(spec));
  return out;
}

export function dagBundleConfigList(spec: SetupSpec): string {
  const s = spec.dagSource;
  if (s.type === 'local') {
    return JSON.stringify([{ name: s.bundleName, classpath: CLASS.localBundle, kwargs: s.path ? { path: s.path } : {} }]);
  }
  const kwargs: Record<string, unknown> = {};
  if (s.credentials) kwargs.git_conn_id = s.connId;
  else kwargs.repo_url = s.repoUrl;
  kwargs.tracking_ref = s.trackingRef;
  if (s.subdir) kwargs.subdir = s.subdir;
  kwargs.refresh_interval = s.refreshIntervalSeconds;
  return JSON.stringify([{ name: s.bundleName, classpath: CLASS.gitBundle, kwargs }]);
}

function identityWiring(spec: SetupSpec): { labels: Record<string, string>; saAnnotations: Record<string, string> } {
  const id = spec.identity;
  switch (id.provider) {
    case 'aws':
      return { labels: {}, saAnnotations: { 'eks.amazonaws.com/role-arn': id.roleArn } };
    case 'azure': {
      const ann: Record<string, string> = { 'azure.workload.identity/client-id': id.clientId };
      if (id.tenantId) ann['azure.workload.identity/tenant-id'] = id.tenantId;
      return { labels: { 'azure.workload.identity/use': 'true' }, saAnnotations: ann };
    }
    case 'gcp':
      return { labels: {}, saAnnotations: { 'iam.gke.io/gcp-service-account': id.serviceAccount } };
    default:
      return { labels: {}, saAnnotations: {} };
  }
}

function resources(r: Resources | undefined): Record<string, unknown> {
  if (!r) return {};
  const out: Record<string, unknown> = {};
  if (r.limits) out.limits = { ...r.limits };
  if (r.requests) out.requests = { ...r.requests };
  return { resources: out };
}

function sidecarEnabled(spec: SetupSpec): boolean {
  return spec.logging.mode === 'sidecar' || spec.logging.mode === 'external-link';
}

function logVolumes(spec: SetupSpec): Record<string, unknown> {
  if (spec.logging.mode !== 'sidecar' && spec.logging.mode !== 'external-link') return {};
  return {
    volumes: [{ name: LOG_VOLUME, emptyDir: {} }],
    volumeMounts: [{ name: LOG_VOLUME, mountPath: spec.logging.logsPath }],
  };
}

/** Container env shared by workers, dagProcessor and triggerer: secret-backed values only. */
function componentEnv(spec: SetupSpec): EnvVar[] {
  const n = secretNames(spec);
  return n.gitConnectionEnv ? [{ name: n.gitConnectionEnv, valueFrom: { secretKeyRef: { name: n.gitConnection, key: n.gitConnectionEnv } } }] : [];
}

function worker(spec: SetupSpec, w: WorkerSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { name: w.name, queues: w.queues, replicas: w.replicas, syncSlots: w.syncSlots, ...resources(w.resources), env: componentEnv(spec) };
  if (w.hpa) {
    out.hpa = {
      enabled: w.hpa.enabled,
      minReplicaCount: w.hpa.minReplicaCount,
      maxReplicaCount: w.hpa.maxReplicaCount,
      metric: { enabled: true, name: HPA_METRIC, target: { type: 'Value', value: w.hpa.targetValue } },
    };
  }
  return { ...out, ...logVolumes(spec) };
}

function openLineage(spec: SetupSpec): Record<string, unknown> {
  const ol = spec.openLineage;
  if (!ol.enabled) return { enabled: false };
  const d = spec.deployment;
  const endpoint =
    ol.endpoint ??
    `/api/v1/lineage?ASTRO_DEPLOYMENT_ID=${d.id}&ASTRO_DEPLOYMENT_NAMESPACE=${d.namespace}&ASTRO_ORGANIZATION_ID=${d.organizationId}&ASTRO_WORKSPACE_ID=${d.workspaceId}`;
  return {
    enabled: true,
    apiKeySecret: secretNames(spec).openLineage,
    namespace: ol.namespace ?? d.namespace,
    url: ol.url,
    endpoint,
    facetsEnvironmentVariables: ['ASTRO_ORGANIZATION_ID', 'ASTRO_WORKSPACE_ID', 'ASTRO_DEPLOYMENT_ID', 'ASTRO_DEPLOYMENT_NAMESPACE'],
  };
}

export interface RenderOptions {
  /** the freshly built client image (step 7); default spec.agent.image */
  clientImage?: string;
}

export function renderValues(spec: SetupSpec, opts: RenderOptions = {}): Values {
  const names = secretNames(spec);
  const sb = secretsBackend(spec);
  const id = identityWiring(spec);
  const values: Values = {
    resourceNamePrefix: spec.cluster.resourceNamePrefix,
    createNamespace: false,
    namespace: spec.cluster.namespace,
    astroDeploymentAPIURL: spec.deployment.apiUrl,
    image: opts.clientImage ?? spec.agent.image,
    imagePullPolicy: spec.agent.imagePullPolicy,
    imagePullSecretName: names.pullSecret,
    agentTokenSecretName: names.agentToken,
  };
  if (sb.classPath) values.secretBackend = sb.classPath;
  if (spec.xcomBackend.type !== 'none') values.xcomBackend = CLASS.xcomObjectStorage;
  values.dagBundleConfigList = dagBundleConfigList(spec);
  values.commonEnv = commonEnv(spec);
  values.openLineage = openLineage(spec);
  values.logLevel = spec.agent.logLevel;
  values.labels = id.labels;
  values.annotations = {};
  values.serviceAccount = {
    annotations: id.saAnnotations,
    workers: { create: true },
    dagProcessor: { create: true },
    triggerer: { create: true },
    sentinel: { create: true },
  };
  if (sidecarEnabled(spec) && (spec.logging.mode === 'sidecar' || spec.logging.mode === 'external-link')) {
    values.loggingSidecar = {
      enabled: true,
      name: 'vector-logging-sidecar',
      image: spec.logging.image,
      volumeMounts: [{ name: LOG_VOLUME, mountPath: spec.logging.logsPath, readOnly: true }],
      config: spec.logging.config,
    };
  } else {
    values.loggingSidecar = { enabled: false };
  }
  values.workers = spec.agent.workers.map((w) => worker(spec, w));
  values.dagProcessor = { ...resources(spec.agent.dagProcessor.resources), env: componentEnv(spec) };
  values.triggerer = {
    replicas: spec.agent.triggerer.replicas,
    asyncSlots: spec.agent.triggerer.asyncSlots,
    ...resources(spec.agent.triggerer.resources),
    env: componentEnv(spec),
    ...logVolumes(spec),
  };
  values.sentinel = spec.sentinel.image ? { enabled: spec.sentinel.enabled, image: spec.sentinel.image } : { enabled: spec.sentinel.enabled };
  return values;
}

export function valuesYaml(values: Values): string {
  return stringify(values, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Canonical JSON: object keys sorted at every level, so the hash does not depend on insertion order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/** sha256 (hex) of values + chart reference; approvals are bound to it. */
export function valuesHash(values: Values, chart: ChartSpec): string {
  return createHash('sha256').update(canonicalJson({ chart, values })).digest('hex');
}

export function chartDisplay(chart: ChartSpec): string {
  return chart.path ? `local chart ${chart.path}` : `${chart.repo}/${chart.name} ${chart.version}`;
}
