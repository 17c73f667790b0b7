/**
 * SetupSpec: one Remote Execution setup, as written in a spec file or built by the Slack wizard.
 * Pure: no I/O here (file loading lives in load.ts). Secrets are only ever *references*.
 */
import { z } from 'zod';

// ---------- primitives ----------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONN_ID = /^[A-Za-z0-9_]+$/;
const SEMVER = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const S3_BUCKET = /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const AZURE_CONTAINER = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const AZURE_ACCOUNT = /^[a-z0-9]{3,24}$/;
const IMAGE_REF = /^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$/;
const REPOSITORY = /^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$/;

const dnsLabel = (what: string) =>
  z
    .string({ error: `expected ${what}: a DNS-1123 label (lowercase letters, digits, '-')` })
    .max(63, { error: `${what} must be at most 63 characters` })
    .regex(DNS1123_LABEL, { error: `expected ${what}: a DNS-1123 label (lowercase letters, digits, '-', starting and ending with a letter or digit)` });

const nonEmpty = (what: string) => z.string({ error: `expected ${what} (a non-empty string)` }).trim().min(1, { error: `expected ${what} (a non-empty string)` });

const url = (what: string, schemes: string[] = ['https', 'http']) =>
  z.string({ error: `expected ${what} (a URL)` }).refine(
    (v) => {
      try {
        const u = new URL(v);
        return schemes.includes(u.protocol.replace(/:$/, '')) && u.hostname.length > 0;
      } catch {
        return false;
      }
    },
    { error: `expected ${what}: a ${schemes.join(' or ')} URL` },
  );

const connId = (dflt: string) =>
  z.string().regex(CONN_ID, { error: 'expected an Airflow connection id (letters, digits, underscore)' }).default(dflt);

const prefixPath = z
  .string()
  .regex(/^[A-Za-z0-9._\-/]*$/, { error: 'expected an object key prefix (letters, digits, . _ - /)' })
  .transform((v) => v.replace(/^\/+|\/+$/g, ''));

// ---------- secret references ----------

const SECRET_REF_HELP = 'use { env: NAME }, { file: PATH } or { stored: ID }';

export const envRefSchema = z.strictObject({ env: z.string().regex(ENV_NAME, { error: 'expected an environment variable name' }) });
/** A relative PATH is relative to the spec file's directory (loadSpecFile makes it absolute), not the working directory. */
export const fileRefSchema = z.strictObject({ file: nonEmpty('a file path') });
export const storedRefSchema = z.strictObject({ stored: nonEmpty('a stored secret id') });

/** A pointer to a secret. The value itself is resolved only by the job runner, never at plan time. */
export const secretRefSchema = z.union([envRefSchema, fileRefSchema, storedRefSchema], {
  // never echo the input: it may be a pasted token
  error: (iss) =>
    typeof iss.input === 'string' || typeof iss.input === 'number'
      ? `inline secret values are not allowed; ${SECRET_REF_HELP}`
      : `expected a secret reference; ${SECRET_REF_HELP}`,
});
export type SecretRef = z.infer<typeof secretRefSchema>;

/** `agent.token: { create: { expiresInDays } }`: re-bot creates the agent token through the Astro API after the approval. */
export const agentTokenCreateSchema = z.strictObject({
  create: z.strictObject({
    expiresInDays: z
      .number({ error: 'expected the number of days the token is valid (1 to 3650), or leave it out for a token that never expires' })
      .int({ error: 'expected a whole number of days (1 to 3650)' })
      .min(1, { error: 'expected at least 1 day' })
      .max(3650, { error: 'expected at most 3650 days (the Astro API limit)' })
      .optional(),
  }, { error: 'expected { expiresInDays: N } (or {} for a token that never expires)' }),
});
export type AgentTokenCreate = z.infer<typeof agentTokenCreateSchema>;

/** A secret reference to a pasted token, or `{ create: … }`; the shape of the input picks the branch, so errors name the right fields. */
const agentTokenSchema = z.unknown().pipe(z.custom<SecretRef | AgentTokenCreate>()).transform((v, c) => {
  const schema = v && typeof v === 'object' && 'create' in v ? agentTokenCreateSchema : secretRefSchema;
  const r = schema.safeParse(v, { reportInput: true });
  if (r.success) return r.data as SecretRef | AgentTokenCreate;
  for (const i of r.error.issues) c.addIssue({ ...i, input: (i as { input?: unknown }).input } as never);
  return z.NEVER;
});

export function createsAgentToken(spec: { agent: { token: SecretRef | AgentTokenCreate } }): AgentTokenCreate['create'] | undefined {
  const t = spec.agent.token;
  return 'create' in t ? t.create : undefined;
}

// ---------- deployment ----------

const deploymentSchema = z.strictObject({
  /** Astro deployment id */
  id: z.string({ error: 'expected the Astro deployment id' }).regex(/^[a-z0-9]{6,64}$/, { error: 'expected the Astro deployment id (lowercase letters and digits)' }),
  /** short handle used by `/re status <name>` and the output directory */
  name: dnsLabel('a short deployment name'),
  organizationId: z.string({ error: 'expected the Astro organization id' }).regex(/^[a-z0-9]{6,64}$/, { error: 'expected the Astro organization id (lowercase letters and digits)' }),
  workspaceId: z.string({ error: 'expected the Astro workspace id' }).regex(/^[a-z0-9]{6,64}$/, { error: 'expected the Astro workspace id (lowercase letters and digits)' }),
  /** the Astro deployment namespace (e.g. `cosmic-nebula-1234`), not the agent namespace */
  namespace: dnsLabel('the Astro deployment namespace'),
  /** the chart's `astroDeploymentAPIURL` (Astro API `remoteExecution.remoteApiUrl`) */
  apiUrl: url('the deployment API URL (astroDeploymentAPIURL)'),
  /** Airflow REST API base of the deployment (verify step) */
  airflowApiUrl: url('the Airflow API URL').optional(),
  /** Astro Platform API base */
  astroApiUrl: url('the Astro API URL').default('https://api.astronomer.io'),
  /** Deployment API token (Deployment Admin): image pull, Astro API, Airflow API, OpenLineage */
  apiToken: secretRefSchema,
});

// ---------- cluster ----------

const chartSchema = z
  .strictObject({
    repo: url('the Helm chart repository').optional(),
    name: z.string().regex(DNS1123_LABEL, { error: 'expected a chart name' }).optional(),
    version: z.string().regex(SEMVER, { error: 'expected a pinned chart version like 2.3.3 (no ranges)' }).optional(),
    path: nonEmpty('a local chart directory').optional(),
  })
  .superRefine((c, ctx) => {
    if (c.path !== undefined) {
      for (const k of ['repo', 'name', 'version'] as const) {
        if (c[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `${k} cannot be combined with chart.path (a local chart); use either {path} or {repo, name, version}` });
      }
    } else if (c.version === undefined) {
      ctx.addIssue({ code: 'custom', path: ['version'], message: 'expected a pinned chart version like 2.3.3 (or give chart.path for a local chart)' });
    }
  })
  .transform((c) =>
    c.path !== undefined
      ? { path: c.path }
      : { repo: c.repo ?? 'https://helm.astronomer.io', name: c.name ?? 'astro-remote-execution-agent', version: c.version as string },
  );
export type ChartSpec = { path?: string; repo?: string; name?: string; version?: string };

const clusterSchema = z.strictObject({
  kubeconfig: nonEmpty('a kubeconfig path').optional(),
  kubeContext: nonEmpty('a kube context name').optional(),
  /** namespace the agents run in */
  namespace: dnsLabel('the agent namespace'),
  /** re-bot creates the namespace (the chart's createNamespace stays false) */
  createNamespace: z.boolean().default(true),
  release: dnsLabel('a Helm release name').default('astro-agent'),
  /** prefix of every chart object name; defaults to deployment.name */
  resourceNamePrefix: dnsLabel('a resource name prefix').max(40, { error: 'resourceNamePrefix must be at most 40 characters (object names get suffixes)' }).optional(),
  chart: chartSchema,
});

// ---------- agent ----------

const quantity = z.union([z.string().regex(/^[0-9.]+[a-zA-Z]*$/, { error: 'expected a Kubernetes quantity like 500m or 2Gi' }), z.number().nonnegative()]).transform(String);
const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional(), 'ephemeral-storage': quantity.optional() });
const resourcesSchema = z.strictObject({ limits: resourceList.optional(), requests: resourceList.optional() });
export type Resources = z.infer<typeof resourcesSchema>;

const hpaSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    minReplicaCount: z.number().int().min(1).default(1),
    maxReplicaCount: z.number().int().min(1).default(5),
    /** target of the astro_agent_client_queued_or_running_tasks metric */
    targetValue: z.number().int().min(1).default(20),
  })
  .refine((h) => h.maxReplicaCount >= h.minReplicaCount, { error: 'maxReplicaCount must be >= minReplicaCount', path: ['maxReplicaCount'] });

const workerSchema = z.strictObject({
  name: dnsLabel('a worker queue deployment name'),
  /** Airflow queues served; a list or a comma-separated string */
  queues: z
    .union([z.string().min(1), z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a queue name' })).min(1)], { error: 'expected queue names (a list or comma-separated string)' })
    .transform((q) => (Array.isArray(q) ? q : q.split(',').map((s) => s.trim()).filter(Boolean)).join(',')),
  replicas: z.number().int().min(0).default(1),
  syncSlots: z.number().int().min(1).default(20),
  resources: resourcesSchema.optional(),
  hpa: hpaSchema.optional(),
});
export type WorkerSpec = z.infer<typeof workerSchema>;

const agentSchema = z.strictObject({
  /** agent (or client) image, repo:tag — a fixed tag, never `latest` */
  image: z
    .string({ error: 'expected the agent image (repository:tag)' })
    .regex(IMAGE_REF, { error: 'expected an image reference like images.astronomer.cloud/baseimages/astro-remote-execution-agent:<tag>' })
    .refine((v) => /:[^/]+$/.test(v) || v.includes('@'), { error: 'expected an image with a fixed tag or digest' })
    .refine((v) => !v.endsWith(':latest'), { error: "a fixed tag is required; 'latest' is not allowed" }),
  imagePullPolicy: z.enum(['IfNotPresent', 'Always', 'Never']).default('IfNotPresent'),
  /** agent token: a reference to one pasted from the Astro UI, or `{ create: { expiresInDays } }` (created through the Astro API) */
  token: agentTokenSchema,
  /** registry password for the pull secret; defaults to deployment.apiToken */
  imagePullToken: secretRefSchema.optional(),
  imagePullRegistry: z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, { error: 'expected a registry host' }).default('images.astronomer.cloud'),
  imagePullUsername: z.string().min(1).default('cli'),
  workers: z.array(workerSchema).min(1, { error: 'expected at least one worker queue' }).default([{ name: 'default-worker', queues: 'default', replicas: 1, syncSlots: 20 }]),
  dagProcessor: z.strictObject({ resources: resourcesSchema.optional() }).default({}),
  triggerer: z
    .strictObject({ replicas: z.number().int().min(0).default(1), asyncSlots: z.number().int().min(1).default(1000), resources: resourcesSchema.optional() })
    .default({ replicas: 1, asyncSlots: 1000 }),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARNING', 'ERROR']).default('INFO'),
  /** how long step 2 waits for the agent pods to become Ready */
  readyTimeoutSeconds: z.number().int().min(10).max(3600).default(300),
});

// ---------- cloud identity ----------

const identitySchema = z.discriminatedUnion(
  'provider',
  [
    z.strictObject({ provider: z.literal('none') }),
    /** EKS IRSA */
    z.strictObject({ provider: z.literal('aws'), roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, { error: 'expected an IAM role ARN (arn:aws:iam::<account>:role/<name>)' }) }),
    /** Azure workload identity */
    z.strictObject({
      provider: z.literal('azure'),
      clientId: z.uuid({ error: 'expected the managed identity client id (a GUID)' }),
      tenantId: z.uuid({ error: 'expected the Azure tenant id (a GUID)' }).optional(),
    }),
    /** GKE workload identity */
    z.strictObject({ provider: z.literal('gcp'), serviceAccount: z.email({ error: 'expected a Google service account email' }) }),
  ],
  { error: "expected identity.provider: 'none' | 'aws' | 'azure' | 'gcp'" },
);

// ---------- secrets backend ----------

const secretsBackendSchema = z.discriminatedUnion(
  'provider',
  [
    z.strictObject({ provider: z.literal('none') }),
    z.strictObject({
      provider: z.literal('aws-secrets-manager'),
      region: z.string({ error: 'expected the AWS region' }).regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { error: 'expected an AWS region like us-east-1' }),
      connectionsPrefix: z.string().nullable().default('airflow/connections'),
      variablesPrefix: z.string().nullable().default('airflow/variables'),
      configPrefix: z.string().nullable().optional(),
      /** role assumed by the backend (kwarg role_arn); IRSA itself goes in `identity` */
      roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, { error: 'expected an IAM role ARN' }).optional(),
    }),
    z.strictObject({
      provider: z.literal('azure-key-vault'),
      vaultUrl: url('the Key Vault URL (https://<name>.vault.azure.net/)', ['https']),
      connectionsPrefix: z.string().nullable().default('airflow-connections'),
      variablesPrefix: z.string().nullable().default('airflow-variables'),
      configPrefix: z.string().nullable().optional(),
      sep: z.string().max(3).optional(),
    }),
    z.strictObject({
      provider: z.literal('gcp-secret-manager'),
      projectId: z.string({ error: 'expected the GCP project id' }).regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: 'expected a GCP project id' }),
      connectionsPrefix: z.string().nullable().default('airflow-connections'),
      variablesPrefix: z.string().nullable().default('airflow-variables'),
      configPrefix: z.string().nullable().optional(),
      sep: z.string().max(3).optional(),
    }),
    z
      .strictObject({
        provider: z.literal('hashicorp-vault'),
        url: url('the Vault URL'),
        mountPoint: z.string().min(1).default('secret'),
        connectionsPath: z.string().nullable().default('connections'),
        variablesPath: z.string().nullable().default('variables'),
        configPath: z.string().nullable().optional(),
        kvEngineVersion: z.union([z.literal(1), z.literal(2)]).default(2),
        /** only credential-less auth types: the kwargs live in plain values */
        authType: z.enum(['kubernetes', 'aws_iam', 'gcp'], { error: "expected authType 'kubernetes' | 'aws_iam' | 'gcp' (token/approle would put a credential in plain values)" }).default('kubernetes'),
        authMountPoint: z.string().min(1).optional(),
        kubernetesRole: z.string().min(1).optional(),
        kubernetesJwtPath: z.string().min(1).optional(),
      })
      .superRefine((v, ctx) => {
        if (v.authType === 'kubernetes' && !v.kubernetesRole) ctx.addIssue({ code: 'custom', path: ['kubernetesRole'], message: "expected the Vault Kubernetes auth role (required when authType is 'kubernetes')" });
        if (v.authType !== 'kubernetes' && (v.kubernetesRole || v.kubernetesJwtPath)) ctx.addIssue({ code: 'custom', path: ['kubernetesRole'], message: "kubernetesRole/kubernetesJwtPath apply only to authType 'kubernetes'" });
      }),
  ],
  { error: "expected secretsBackend.provider: 'none' | 'aws-secrets-manager' | 'azure-key-vault' | 'gcp-secret-manager' | 'hashicorp-vault'" },
);

// ---------- XCom backend ----------

const xcomCommon = {
  prefix: prefixPath.default('xcom'),
  /** bytes; values up to this size stay in the DB. RE guides use 0 */
  threshold: z.number().int().min(0).default(0),
  compression: z.enum(['zip', 'gzip', 'bz2', 'lzma', 'snappy', 'zstd']).nullable().default('zip'),
};
const xcomBackendSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('none') }),
    z.strictObject({
      type: z.literal('s3'),
      connId: connId('aws_default'),
      bucket: z.string({ error: 'expected an S3 bucket name' }).regex(S3_BUCKET, { error: 'expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)' }),
      region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { error: 'expected an AWS region like us-east-1' }).optional(),
      ...xcomCommon,
    }),
    z.strictObject({
      type: z.literal('azure-blob'),
      connId: connId('wasb_xcom'),
      storageAccount: z.string({ error: 'expected the storage account name' }).regex(AZURE_ACCOUNT, { error: 'expected a storage account name (3-24 lowercase letters and digits)' }),
      container: z.string({ error: 'expected a blob container name' }).regex(AZURE_CONTAINER, { error: 'expected a container name (3-63 lowercase letters, digits, single hyphens)' }),
      ...xcomCommon,
    }),
    z.strictObject({
      type: z.literal('gcs'),
      connId: connId('google_cloud_default'),
      bucket: z.string({ error: 'expected a GCS bucket name' }).regex(GCS_BUCKET, { error: 'expected a GCS bucket name (lowercase letters, digits, . _ -)' }),
      ...xcomCommon,
    }),
  ],
  { error: "expected xcomBackend.type: 's3' | 'azure-blob' | 'gcs' | 'none'" },
);

// ---------- DAG source ----------

const dagSourceSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('git'),
      bundleName: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a bundle name' }).default('dags'),
      connId: connId('git_default'),
      repoUrl: url('the Git repository URL', ['https']),
      trackingRef: z.string().min(1).default('main'),
      subdir: z.string().min(1).optional(),
      refreshIntervalSeconds: z.number().int().min(0).default(60),
      /** omit for public repositories */
      credentials: z.strictObject({ username: secretRefSchema, token: secretRefSchema }).optional(),
    }),
    z.strictObject({
      type: z.literal('local'),
      bundleName: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a bundle name' }).default('dags-folder'),
      /** directory inside the client image; omit to use the image's DAGs folder */
      path: z.string().startsWith('/', { error: 'expected an absolute path inside the agent image' }).optional(),
    }),
  ],
  { error: "expected dagSource.type: 'git' | 'local'" },
);

// ---------- logging / OpenLineage / Sentinel ----------

const sidecarFields = {
  image: z.string().regex(IMAGE_REF).default('timberio/vector:0.45.0-debian'),
  /** Vector configuration (YAML) shipping files under logsPath */
  config: nonEmpty('the Vector sidecar configuration (YAML)'),
  logsPath: z.string().startsWith('/').default('/usr/local/airflow/logs'),
};
const loggingSchema = z.discriminatedUnion(
  'mode',
  [
    z.strictObject({ mode: z.literal('none') }),
    z.strictObject({ mode: z.literal('sidecar'), ...sidecarFields }),
    z.strictObject({
      mode: z.literal('object-storage'),
      /** s3://bucket/logs, gs://bucket/logs or wasb-<container> */
      remoteBaseLogFolder: z.string({ error: 'expected the remote log folder URL' }).regex(/^(s3:\/\/|gs:\/\/|wasb[s]?-|abfss?:\/\/)[^\s]+$/, { error: 'expected s3://…, gs://…, wasb-… or abfs://… for remoteBaseLogFolder' }),
      connId: z.string().regex(CONN_ID).optional(),
      region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, { error: 'expected an AWS region like us-east-1' }).optional(),
    }),
    z.strictObject({
      mode: z.literal('external-link'),
      ...sidecarFields,
      /** Jinja URL pattern set on the Astro deployment (remoteExecution.taskLogUrlPattern) */
      taskLogUrlPattern: url('the external log URL pattern'),
    }),
  ],
  { error: "expected logging.mode: 'none' | 'sidecar' | 'object-storage' | 'external-link'" },
);

const openLineageSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** defaults to deployment.apiToken */
  apiKey: secretRefSchema.optional(),
  /** defaults to deployment.namespace */
  namespace: z.string().min(1).optional(),
  url: url('the OpenLineage URL').default('https://o11y.astronomer.io'),
  /** defaults to the Astro lineage endpoint with the deployment ids */
  endpoint: z.string().startsWith('/', { error: "expected an endpoint path starting with '/'" }).optional(),
});

const sentinelSchema = z.strictObject({
  enabled: z.boolean().default(true),
  image: z.string().regex(IMAGE_REF).optional(),
});

// ---------- images ----------

const imagesSchema = z.strictObject({
  client: z
    .strictObject({
      contextDir: nonEmpty('the build context directory').default('.'),
      dockerfile: nonEmpty('the Dockerfile name').default('Dockerfile.client'),
      /** target repository without tag, e.g. 123.dkr.ecr.us-east-1.amazonaws.com/re/client */
      repository: z.string({ error: 'expected the client image repository' }).regex(REPOSITORY, { error: 'expected a repository like registry.example.com/team/client (no tag)' }).refine((r) => !/:[^/]*$/.test(r.replace(/^[^/]+(?=\/)/, '')), { error: 'give the repository without a tag; the tag is set by images.client.tag' }),
      /** default deploy-<UTC timestamp>, chosen when the build runs */
      tag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, { error: 'expected an image tag' }).optional(),
      builder: z.enum(['buildah', 'docker', 'podman']).default('buildah'),
      platform: z.string().regex(/^linux\/(amd64|arm64)$/, { error: 'expected linux/amd64 or linux/arm64' }).optional(),
      push: z.boolean().default(true),
      /** registry uses plain HTTP / self-signed TLS (local registries) */
      insecureRegistry: z.boolean().default(false),
    })
    .optional(),
  /** the Astro project's server image, deployed to the Deployment through the Astro Deploys API (what `astro deploy` does) */
  server: z
    .strictObject({
      deploy: z.boolean().default(false),
      contextDir: nonEmpty('the Astro project directory').default('.'),
      dockerfile: nonEmpty('the Dockerfile name').default('Dockerfile'),
      builder: z.enum(['buildah', 'docker', 'podman']).default('buildah'),
      /** how long to wait for the Deployment to be HEALTHY after the deploy is finalized */
      waitTimeoutSeconds: z.number().int().min(10).max(7200).default(900),
      /** the Deployment's registry uses plain HTTP / self-signed TLS (only the local stand-in registry) */
      insecureRegistry: z.boolean().default(false),
    })
    .optional(),
});

const verifySchema = z.strictObject({
  enabled: z.boolean().default(true),
  testDag: z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a DAG id' }).default('re_bot_smoke'),
  timeoutSeconds: z.number().int().min(10).max(7200).default(600),
  podsTimeoutSeconds: z.number().int().min(10).max(3600).default(120),
});

// ---------- the whole spec ----------

export const setupSpecSchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }).default(1),
    deployment: deploymentSchema,
    cluster: clusterSchema,
    agent: agentSchema,
    identity: identitySchema.default({ provider: 'none' }),
    secretsBackend: secretsBackendSchema.default({ provider: 'none' }),
    xcomBackend: xcomBackendSchema,
    dagSource: dagSourceSchema.default({ type: 'local', bundleName: 'dags-folder' }),
    logging: loggingSchema.default({ mode: 'none' }),
    openLineage: openLineageSchema.default({ enabled: false, url: 'https://o11y.astronomer.io' }),
    sentinel: sentinelSchema.default({ enabled: true }),
    images: imagesSchema.default({}),
    verify: verifySchema.default({ enabled: true, testDag: 're_bot_smoke', timeoutSeconds: 600, podsTimeoutSeconds: 120 }),
  })
  .transform((s) => ({ ...s, cluster: { ...s.cluster, resourceNamePrefix: s.cluster.resourceNamePrefix ?? s.deployment.name } }));

export type SetupSpec = z.output<typeof setupSpecSchema>;
export type SetupSpecInput = z.input<typeof setupSpecSchema>;

export interface SpecError {
  path: string;
  message: string;
}
export type ParseResult = { ok: true; spec: SetupSpec } | { ok: false; errors: SpecError[] };

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += (out ? '.' : '') + String(seg);
  }
  return out || '(root)';
}

/** Rules across sections; checked on the raw input so they are reported together with field errors. */
function crossChecks(raw: unknown): SpecError[] {
  const errors: SpecError[] = [];
  if (!raw || typeof raw !== 'object') return errors;
  const r = raw as Record<string, any>;
  const verifyEnabled = r.verify?.enabled !== false;
  if (verifyEnabled && r.deployment && typeof r.deployment === 'object' && !r.deployment.airflowApiUrl) {
    errors.push({ path: 'deployment.airflowApiUrl', message: 'expected the Airflow API URL: the verify step triggers the test DAG through it (or set verify.enabled: false)' });
  }
  const workers = r.agent?.workers;
  if (Array.isArray(workers)) {
    const seen = new Map<string, number>();
    workers.forEach((w: any, i: number) => {
      if (typeof w?.name !== 'string') return;
      if (seen.has(w.name)) errors.push({ path: `agent.workers[${i}].name`, message: `duplicate worker name '${w.name}' (also agent.workers[${seen.get(w.name)}])` });
      else seen.set(w.name, i);
    });
  }
  const prefix = r.cluster?.resourceNamePrefix ?? r.deployment?.name;
  if (typeof prefix === 'string' && Array.isArray(workers)) {
    workers.forEach((w: any, i: number) => {
      if (typeof w?.name === 'string' && `${prefix}-worker-${w.name}`.length > 63) {
        errors.push({ path: `agent.workers[${i}].name`, message: `object name '${prefix}-worker-${w.name}' would exceed 63 characters; shorten the worker name or cluster.resourceNamePrefix` });
      }
    });
  }
  if (r.openLineage?.enabled === true && r.openLineage?.apiKey === undefined && r.deployment && r.deployment.apiToken === undefined) {
    errors.push({ path: 'openLineage.apiKey', message: 'expected a secret reference for the OpenLineage API key (or deployment.apiToken)' });
  }
  const mode = r.logging?.mode;
  const dagType = r.dagSource?.type;
  if (dagType === 'local' && typeof r.dagSource?.path === 'string' && mode === 'sidecar' && r.dagSource.path === r.logging?.logsPath) {
    errors.push({ path: 'dagSource.path', message: 'the DAG folder cannot be the logs folder shipped by the sidecar' });
  }
  return errors;
}

// ---------- limits ----------

/** A spec file larger than this is refused before it is parsed (a real spec is a few KiB). */
export const MAX_SPEC_BYTES = 256 * 1024;
/** Longest string accepted in any field (URLs, paths, refs, names…), unless LONG_FIELDS says otherwise. */
export const MAX_STRING_LENGTH = 2048;
/** Fields that legitimately hold a document. */
const LONG_FIELDS: Record<string, number> = { 'logging.config': 64 * 1024 };
/** Structural caps: deeper or wider input is not a setup spec (and walking it would only cost time). */
const MAX_DEPTH = 16;
const MAX_KEYS = 100;
const MAX_ITEMS = 100;

const fmtInt = (n: number) => n.toLocaleString('en-US');

/**
 * Size limits, checked before the schema. Over-long strings are replaced by '' in the returned copy (so the
 * schema neither echoes nor regex-scans them, and their own error is the one reported); a mapping or list
 * beyond the structural caps stops the check (`fatal`): nothing else is worth reporting about such input.
 */
function checkLimits(input: unknown): { errors: SpecError[]; value: unknown; fatal: boolean } {
  const errors: SpecError[] = [];
  let fatal = false;
  const walk = (v: unknown, path: PropertyKey[], depth: number): unknown => {
    if (fatal) return v;
    if (typeof v === 'string') {
      const p = formatPath(path);
      const max = LONG_FIELDS[p] ?? MAX_STRING_LENGTH;
      if (v.length <= max) return v;
      errors.push({ path: p, message: `is too long: ${fmtInt(v.length)} characters, at most ${fmtInt(max)} are allowed` });
      return '';
    }
    if (v === null || typeof v !== 'object') return v;
    if (depth >= MAX_DEPTH) {
      errors.push({ path: formatPath(path), message: `is nested ${MAX_DEPTH} levels deep; a setup spec is never nested this deeply` });
      fatal = true;
      return v;
    }
    if (Array.isArray(v)) {
      if (v.length > MAX_ITEMS) {
        errors.push({ path: formatPath(path), message: `lists ${fmtInt(v.length)} items; at most ${MAX_ITEMS} are allowed` });
        fatal = true;
        return v;
      }
      return v.map((x, i) => walk(x, [...path, i], depth + 1));
    }
    const keys = Object.keys(v);
    if (keys.length > MAX_KEYS) {
      errors.push({ path: formatPath(path), message: `has ${fmtInt(keys.length)} keys; a spec mapping has at most ${MAX_KEYS} (remove the unknown keys)` });
      fatal = true;
      return v;
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = walk((v as Record<string, unknown>)[k], [...path, k], depth + 1);
    return out;
  };
  const value = walk(input, [], 0);
  return { errors, value, fatal };
}

// ---------- error messages ----------
// Each SpecError is shown as `<path>: <message>`, so a message is the rest of that sentence: what was
// expected, what was found (its type, and its value only when short and not in a secret-looking field).

/** What a missing section must look like (the generic fallback lists the object's required keys). */
const REQUIRED_HINTS: Record<string, string> = {
  deployment: 'a mapping describing the Astro deployment: id, name, organizationId, workspaceId, namespace, apiUrl, airflowApiUrl and apiToken',
  cluster: 'a mapping describing where the agents run: namespace and chart',
  'cluster.chart': 'a mapping with version (a pinned chart version like 2.3.3), or path (a local chart directory)',
  agent: 'a mapping with image (the agent image, repository:tag) and token (a secret reference such as { env: ASTRO_AGENT_TOKEN })',
  xcomBackend: "a mapping with type: 's3' | 'azure-blob' | 'gcs' | 'none' (use type: none to keep XComs in the Airflow database)",
};

const SECRETISH_PATH = /token|secret|password|passwd|apikey|api_key|credential|private/i;
const SHORT_SAFE_VALUE = /^[A-Za-z0-9 ._:/@+-]{1,24}$/;

/** The input's type, plus its value when that is short, plain and not in a secret-looking field. */
function describeInput(input: unknown, path: ReadonlyArray<PropertyKey>): string {
  if (input === null) return 'an empty value (null)';
  if (Array.isArray(input)) return `a list of ${input.length} item(s)`;
  switch (typeof input) {
    case 'string':
      if (input.length === 0) return 'an empty string';
      if (SHORT_SAFE_VALUE.test(input) && !SECRETISH_PATH.test(formatPath(path))) return `the string "${input}"`;
      return `a string of ${fmtInt(input.length)} characters`;
    case 'number':
      return Number.isNaN(input) ? 'NaN' : `the number ${input}`;
    case 'boolean':
      return `the boolean ${input}`;
    case 'object':
      return 'a mapping';
    default:
      return `a value of type ${typeof input}`;
  }
}

function showValue(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function listOf(items: string[], max = 12): string {
  return items.length > max ? `${items.slice(0, max).join(', ')} … (${items.length - max} more)` : items.join(', ');
}

function numberExpectation(inst: unknown): string {
  const n = inst as { isInt?: boolean; minValue?: number | null; maxValue?: number | null };
  const what = n.isInt ? 'an integer' : 'a number';
  const lo = typeof n.minValue === 'number' && Number.isFinite(n.minValue) && Math.abs(n.minValue) < 1e15 ? n.minValue : undefined;
  const hi = typeof n.maxValue === 'number' && Number.isFinite(n.maxValue) && Math.abs(n.maxValue) < 1e15 ? n.maxValue : undefined;
  if (lo !== undefined && hi !== undefined) return `${what} from ${lo} to ${hi}`;
  if (lo !== undefined) return `${what} ≥ ${lo}`;
  if (hi !== undefined) return `${what} ≤ ${hi}`;
  return what;
}

function typeExpectation(expected: string, inst: unknown): string {
  switch (expected) {
    case 'number':
    case 'int': {
      const e = numberExpectation(inst);
      return e === 'a number' ? 'a number' : `a number (${e})`;
    }
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    default:
      return `a ${expected}`;
  }
}

/** Keys an object schema requires (for "is required: a mapping with …"). */
function requiredKeysOf(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, { _zod?: { optin?: string } }> } } })?._zod?.def?.shape;
  if (!shape) return [];
  return Object.entries(shape).filter(([, s]) => s?._zod?.optin === undefined).map(([k]) => k);
}

function allowedKeysOf(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } })?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

function shortKey(k: string): string {
  return JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k);
}

/** The custom message of a schema's first check that has one (e.g. a regex's "expected an IAM role ARN …"). */
function checkMessageOf(inst: unknown): string | undefined {
  const checks = (inst as { _zod?: { def?: { checks?: Array<{ _zod?: { def?: { error?: (i: unknown) => unknown } } }> } } })?._zod?.def?.checks ?? [];
  for (const c of checks) {
    const m = c._zod?.def?.error?.({ code: 'invalid_format', input: undefined });
    const text = typeof m === 'string' ? m : (m as { message?: unknown } | undefined)?.message;
    if (typeof text === 'string' && text) return text;
  }
  return undefined;
}

type RawIssue = z.core.$ZodRawIssue;

/** Zod's default messages ("Invalid input: expected object, received undefined") rewritten as sentences. */
function issueMessage(iss: RawIssue): string | undefined {
  const path = (iss.path ?? []) as PropertyKey[];
  const input = iss.input;
  switch (iss.code) {
    case 'invalid_type': {
      const expected = String(iss.expected);
      if (input === undefined) {
        if (expected === 'object') {
          const keys = requiredKeysOf(iss.inst);
          return `is required: a mapping${keys.length ? ` with ${keys.join(', ')}` : ''}`;
        }
        return `is required: ${checkMessageOf(iss.inst) ?? typeExpectation(expected, iss.inst)}`;
      }
      const hint = (expected === 'number' || expected === 'int') && typeof input === 'string' && /^-?\d+(\.\d+)?$/.test(input.trim()) ? ' (write the number without quotes)' : '';
      return `must be ${typeExpectation(expected, iss.inst)}, got ${describeInput(input, path)}${hint}`;
    }
    case 'too_small': {
      const min = Number(iss.minimum);
      if (iss.origin === 'string') return min <= 1 ? 'must not be empty' : `must be at least ${min} characters long, got ${typeof input === 'string' ? input.length : '?'}`;
      if (iss.origin === 'array' || iss.origin === 'set') return `must list at least ${min} item(s)`;
      return `must be ${iss.inclusive ? 'at least' : 'greater than'} ${min}, got ${describeInput(input, path)}`;
    }
    case 'too_big': {
      const max = Number(iss.maximum);
      if (iss.origin === 'string') return `must be at most ${max} characters long, got ${typeof input === 'string' ? fmtInt(input.length) : '?'}`;
      if (iss.origin === 'array' || iss.origin === 'set') return `must list at most ${max} item(s)`;
      return `must be ${iss.inclusive ? 'at most' : 'less than'} ${max}, got ${describeInput(input, path)}`;
    }
    case 'invalid_value':
      return `must be ${iss.values.length === 1 ? showValue(iss.values[0]) : `one of ${iss.values.map(showValue).join(', ')}`}, got ${describeInput(input, path)}`;
    case 'unrecognized_keys': {
      const allowed = allowedKeysOf(iss.inst);
      const unknown = iss.keys.length === 1 ? `unknown key ${shortKey(iss.keys[0])}` : `unknown keys ${listOf(iss.keys.map(shortKey), 5)}`;
      return `${unknown}: remove ${iss.keys.length === 1 ? 'it' : 'them'} or check the spelling${allowed.length ? `; allowed keys: ${allowed.join(', ')}` : ''}`;
    }
    case 'invalid_union': {
      const options = new Set<string>();
      for (const branch of iss.errors ?? []) {
        const first = branch[0];
        if (first?.code === 'invalid_value') for (const v of first.values) options.add(showValue(v));
        else if (first?.code === 'invalid_type') options.add(typeExpectation(String(first.expected), undefined));
      }
      const got = describeInput(input, path);
      return options.size ? `must be ${[...options].join(' or ')}, got ${got}` : `does not match any accepted form, got ${got}`;
    }
    case 'invalid_format':
      if (iss.format === 'starts_with') return `must start with '${(iss as { prefix?: string }).prefix}'`;
      return `must be a valid ${iss.format}`;
    default:
      return undefined;
  }
}

/** Final wording: a missing field always says "is required", whatever schema message it carries. */
function finalMessage(iss: z.core.$ZodIssue & { input?: unknown }, path: string): string {
  if (iss.code === 'invalid_type' && iss.input === undefined) {
    if (REQUIRED_HINTS[path]) return `is required: ${REQUIRED_HINTS[path]}`;
    return iss.message.startsWith('is required') ? iss.message : `is required: ${iss.message}`;
  }
  // a schema's own message for a wrong type ("expected the Astro deployment id") still says what was found
  if (iss.code === 'invalid_type' && !iss.message.includes(', got ')) return `${iss.message}, got ${describeInput(iss.input, iss.path)}`;
  return iss.message;
}

/** Validates a spec object. Reports every problem at once, each with its field path. */
export function parseSpec(input: unknown): ParseResult {
  const limits = checkLimits(input);
  if (limits.fatal) return { ok: false, errors: limits.errors };
  const value = limits.value;
  const limited = new Set(limits.errors.map((e) => e.path));
  const result = setupSpecSchema.safeParse(value, { reportInput: true, error: issueMessage });
  const errors: SpecError[] = [...limits.errors];
  if (!result.success) {
    for (const i of result.error.issues) {
      const path = formatPath(i.path);
      if (!limited.has(path)) errors.push({ path, message: finalMessage(i, path) });
    }
  }
  for (const e of crossChecks(value)) if (!errors.some((x) => x.path === e.path && x.message === e.message)) errors.push(e);
  if (errors.length > 0 || !result.success) return { ok: false, errors };
  return { ok: true, spec: result.data };
}

/** Every secret reference in a spec, with the field it belongs to. */
export function secretRefsOf(spec: SetupSpec): Array<{ field: string; purpose: string; ref: SecretRef }> {
  const agentToken = spec.agent.token;
  const out: Array<{ field: string; purpose: string; ref: SecretRef }> = [
    // a token re-bot creates has no reference: its value goes from the Astro API straight into the Secret
    ...('create' in agentToken ? [] : [{ field: 'agent.token', purpose: 'agent token', ref: agentToken }]),
    { field: 'deployment.apiToken', purpose: 'Deployment API token (Astro API, Airflow API' + (spec.agent.imagePullToken ? '' : ', image pull') + (spec.openLineage.enabled && !spec.openLineage.apiKey ? ', OpenLineage' : '') + ')', ref: spec.deployment.apiToken },
  ];
  if (spec.agent.imagePullToken) out.push({ field: 'agent.imagePullToken', purpose: `image pull password for ${spec.agent.imagePullRegistry}`, ref: spec.agent.imagePullToken });
  if (spec.dagSource.type === 'git' && spec.dagSource.credentials) {
    out.push({ field: 'dagSource.credentials.username', purpose: 'Git username', ref: spec.dagSource.credentials.username });
    out.push({ field: 'dagSource.credentials.token', purpose: 'Git token/password', ref: spec.dagSource.credentials.token });
  }
  if (spec.openLineage.enabled && spec.openLineage.apiKey) out.push({ field: 'openLineage.apiKey', purpose: 'OpenLineage API key', ref: spec.openLineage.apiKey });
  return out;
}

export function describeRef(ref: SecretRef): string {
  if ('env' in ref) return `env ${ref.env}`;
  if ('file' in ref) return `file ${ref.file}`;
  return `stored secret ${ref.stored}`;
}
