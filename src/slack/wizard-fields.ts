/**
 * The setup wizard's pages and fields. A field's `path` is its SetupSpec path and also its input
 * block_id, so schema errors map straight onto blocks. A `Choice` is a select with `dispatch_action`
 * whose value decides which fields follow it (re-rendered with views.update).
 */
export type FieldKind = 'text' | 'secret' | 'select' | 'multiline' | 'flags';

export interface Field {
  path: string;
  label: string;
  kind: FieldKind;
  optional?: boolean;
  hint?: string;
  placeholder?: string;
  /** select / flags options: [value, label] */
  options?: Array<[string, string]>;
  /** default for selects and flags (flags: comma-separated values) */
  initial?: string;
}

export interface Choice {
  select: Field;
  variants: Record<string, Field[]>;
}

export const PAGE_IDS = ['target', 'secrets', 'xcom', 'dags', 'options', 'images', 'review'] as const;
export type PageId = (typeof PAGE_IDS)[number];

export interface Page {
  id: Exclude<PageId, 'review'>;
  title: string;
  intro: string;
  /** spec sections whose errors belong to this page when no field matches exactly */
  sections: string[];
  items: Array<Field | Choice>;
}

const text = (path: string, label: string, more: Partial<Field> = {}): Field => ({ path, label, kind: 'text', ...more });
const opt = (path: string, label: string, more: Partial<Field> = {}): Field => text(path, label, { optional: true, ...more });
const secret = (path: string, label: string, more: Partial<Field> = {}): Field => ({ path, label, kind: 'secret', hint: 'Stored encrypted until the job writes it into a Kubernetes Secret; never shown again.', ...more });
const select = (path: string, label: string, options: Array<[string, string]>, more: Partial<Field> = {}): Field => ({ path, label, kind: 'select', options, ...more });

export const PAGES: Page[] = [
  {
    id: 'target',
    title: 'Target',
    intro: '*1. Target* — the Astro deployment and where its agents run.',
    sections: ['deployment', 'cluster'],
    items: [
      text('deployment.name', 'Deployment short name', { hint: 'A DNS label; `/re status <name>` uses it.', placeholder: 'sales-prod' }),
      text('deployment.id', 'Astro deployment id'),
      text('deployment.organizationId', 'Astro organization id'),
      text('deployment.workspaceId', 'Astro workspace id'),
      text('deployment.namespace', 'Astro deployment namespace', { placeholder: 'cosmic-nebula-1234' }),
      text('deployment.apiUrl', 'Deployment API URL (astroDeploymentAPIURL)', { placeholder: 'https://<id>.api.astronomer.run/remote' }),
      opt('deployment.airflowApiUrl', 'Airflow API URL', { hint: 'Needed by the verify step, which triggers a test DAG.' }),
      secret('deployment.apiToken', 'Deployment API token'),
      opt('cluster.kubeContext', 'Kube context', { hint: 'Empty: the current context of the bot’s kubeconfig.' }),
      text('cluster.namespace', 'Agent namespace', { placeholder: 'astro-agent' }),
      opt('cluster.release', 'Helm release name', { placeholder: 'astro-agent' }),
      {
        select: select('agent.token.source', 'Agent token', [['paste', 'Paste one (from the Astro UI)'], ['create', 'Create a token for me (Astro API)']], { initial: 'paste' }),
        variants: {
          paste: [secret('agent.token', 'Agent token')],
          create: [opt('agent.token.create.expiresInDays', 'Token valid for (days)', { hint: 'Created after your approval with the Deployment API token and written straight into the agent-token Secret. Empty: never expires. `/re rotate-token` replaces it.', placeholder: '90' })],
        },
      },
    ],
  },
  {
    id: 'secrets',
    title: 'Secrets backend',
    intro: '*2. Secrets backend* — where tasks on the agents read Connections and Variables, and the cloud identity the agents use.',
    sections: ['secretsBackend', 'identity'],
    items: [
      {
        select: select('secretsBackend.provider', 'Secrets backend', [
          ['none', 'None (orchestration plane / env only)'],
          ['aws-secrets-manager', 'AWS Secrets Manager'],
          ['azure-key-vault', 'Azure Key Vault'],
          ['gcp-secret-manager', 'GCP Secret Manager'],
          ['hashicorp-vault', 'HashiCorp Vault'],
        ], { initial: 'none' }),
        variants: {
          'aws-secrets-manager': [
            text('secretsBackend.region', 'AWS region', { placeholder: 'us-east-1' }),
            opt('secretsBackend.connectionsPrefix', 'Connections prefix', { placeholder: 'airflow/connections' }),
            opt('secretsBackend.variablesPrefix', 'Variables prefix', { placeholder: 'airflow/variables' }),
            opt('secretsBackend.roleArn', 'Role the backend assumes (role_arn)'),
          ],
          'azure-key-vault': [
            text('secretsBackend.vaultUrl', 'Key Vault URL', { placeholder: 'https://<name>.vault.azure.net/' }),
            opt('secretsBackend.connectionsPrefix', 'Connections prefix', { placeholder: 'airflow-connections' }),
            opt('secretsBackend.variablesPrefix', 'Variables prefix', { placeholder: 'airflow-variables' }),
          ],
          'gcp-secret-manager': [
            text('secretsBackend.projectId', 'GCP project id'),
            opt('secretsBackend.connectionsPrefix', 'Connections prefix', { placeholder: 'airflow-connections' }),
            opt('secretsBackend.variablesPrefix', 'Variables prefix', { placeholder: 'airflow-variables' }),
          ],
          'hashicorp-vault': [
            text('secretsBackend.url', 'Vault URL'),
            opt('secretsBackend.mountPoint', 'KV mount point', { placeholder: 'secret' }),
            select('secretsBackend.authType', 'Auth method', [['kubernetes', 'Kubernetes'], ['aws_iam', 'AWS IAM'], ['gcp', 'GCP']], { initial: 'kubernetes' }),
            opt('secretsBackend.kubernetesRole', 'Vault Kubernetes auth role', { hint: 'Required for the Kubernetes auth method.' }),
          ],
        },
      },
      {
        select: select('identity.provider', 'Cloud identity of the agents', [
          ['none', 'None'],
          ['aws', 'AWS IRSA'],
          ['azure', 'Azure workload identity'],
          ['gcp', 'GKE workload identity'],
        ], { initial: 'none' }),
        variants: {
          aws: [text('identity.roleArn', 'IAM role ARN', { placeholder: 'arn:aws:iam::123456789012:role/astro-agent' })],
          azure: [text('identity.clientId', 'Managed identity client id'), opt('identity.tenantId', 'Tenant id')],
          gcp: [text('identity.serviceAccount', 'Google service account', { placeholder: 'agent@project.iam.gserviceaccount.com' })],
        },
      },
    ],
  },
  {
    id: 'xcom',
    title: 'XCom backend',
    intro: '*3. XCom backend* — without one, tasks on remote agents cannot pass XCom values through the orchestration plane.',
    sections: ['xcomBackend'],
    items: [
      {
        select: select('xcomBackend.type', 'XCom backend', [
          ['s3', 'Amazon S3'],
          ['gcs', 'Google Cloud Storage'],
          ['azure-blob', 'Azure Blob Storage'],
          ['none', 'None'],
        ]),
        variants: {
          s3: [
            text('xcomBackend.bucket', 'Bucket'),
            opt('xcomBackend.region', 'Region'),
            opt('xcomBackend.connId', 'Airflow connection id', { placeholder: 'aws_default' }),
            opt('xcomBackend.prefix', 'Key prefix', { placeholder: 'xcom' }),
          ],
          gcs: [
            text('xcomBackend.bucket', 'Bucket'),
            opt('xcomBackend.connId', 'Airflow connection id', { placeholder: 'google_cloud_default' }),
            opt('xcomBackend.prefix', 'Key prefix', { placeholder: 'xcom' }),
          ],
          'azure-blob': [
            text('xcomBackend.storageAccount', 'Storage account'),
            text('xcomBackend.container', 'Container'),
            opt('xcomBackend.connId', 'Airflow connection id', { placeholder: 'wasb_xcom' }),
            opt('xcomBackend.prefix', 'Key prefix', { placeholder: 'xcom' }),
          ],
        },
      },
    ],
  },
  {
    id: 'dags',
    title: 'DAG source',
    intro: '*4. DAG source* — where the agents’ DAG processor finds DAGs.',
    sections: ['dagSource'],
    items: [
      {
        select: select('dagSource.type', 'DAG source', [['local', 'In the image (LocalDagBundle)'], ['git', 'Git repository (GitDagBundle)']], { initial: 'local' }),
        variants: {
          local: [opt('dagSource.path', 'DAG folder inside the image', { hint: 'Empty: the image’s DAGs folder.' })],
          git: [
            text('dagSource.repoUrl', 'Repository URL (https)'),
            opt('dagSource.trackingRef', 'Branch or tag', { placeholder: 'main' }),
            opt('dagSource.subdir', 'Sub-directory'),
            secret('dagSource.credentials.username', 'Git username', { optional: true, hint: 'Empty for a public repository. Stored encrypted, never shown again.' }),
            secret('dagSource.credentials.token', 'Git token or password', { optional: true, hint: 'Empty for a public repository. Stored encrypted, never shown again.' }),
          ],
        },
      },
    ],
  },
  {
    id: 'options',
    title: 'Optional settings',
    intro: '*5. Optional settings* — task logs, OpenLineage, Sentinel, worker queues.',
    sections: ['logging', 'openLineage', 'sentinel', 'verify', 'agent.workers'],
    items: [
      {
        select: select('logging.mode', 'Task logs', [
          ['none', 'Keep in the pods'],
          ['object-storage', 'Remote logging to object storage'],
          ['sidecar', 'Vector sidecar'],
          ['external-link', 'Vector sidecar + link in the Airflow UI'],
        ], { initial: 'none' }),
        variants: {
          'object-storage': [
            text('logging.remoteBaseLogFolder', 'Remote log folder', { placeholder: 's3://bucket/logs' }),
            opt('logging.connId', 'Airflow connection id'),
            opt('logging.region', 'Region'),
          ],
          sidecar: [{ path: 'logging.config', label: 'Vector configuration (YAML)', kind: 'multiline' }, opt('logging.image', 'Vector image')],
          'external-link': [
            { path: 'logging.config', label: 'Vector configuration (YAML)', kind: 'multiline' },
            text('logging.taskLogUrlPattern', 'Log URL pattern'),
            opt('logging.image', 'Vector image'),
          ],
        },
      },
      {
        path: 'flags',
        label: 'Features',
        kind: 'flags',
        optional: true,
        options: [['openLineage.enabled', 'OpenLineage'], ['sentinel.enabled', 'Sentinel'], ['verify.enabled', 'Verify with a test DAG']],
        initial: 'sentinel.enabled,verify.enabled',
      },
      {
        path: 'agent.workers',
        label: 'Worker queues',
        kind: 'multiline',
        optional: true,
        hint: 'One worker per line: `name: queue1, queue2`. Empty: one worker `default-worker` serving `default`.',
        placeholder: 'default-worker: default',
      },
      opt('verify.testDag', 'Test DAG id', { placeholder: 're_bot_smoke' }),
    ],
  },
  {
    id: 'images',
    title: 'Images',
    intro: '*6. Images* — the agent image and chart, optionally a client image to build and deploy, and the server image (your Astro project).',
    sections: ['agent', 'cluster.chart', 'images'],
    items: [
      text('agent.image', 'Agent image (repository:tag)', { placeholder: 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:<tag>' }),
      text('cluster.chart.version', 'Chart version', { placeholder: '2.3.3' }),
      opt('images.client.repository', 'Client image repository (no tag)', { hint: 'Empty: no client image is built; the agents run the agent image.' }),
      opt('images.client.tag', 'Client image tag', { hint: 'Empty: deploy-<UTC timestamp>.' }),
      select('images.client.builder', 'Builder', [['buildah', 'buildah'], ['docker', 'docker'], ['podman', 'podman']], { optional: true }),
      opt('images.client.dockerfile', 'Dockerfile', { placeholder: 'Dockerfile.client' }),
      { path: 'serverImage', label: 'Server image', kind: 'flags', optional: true, options: [['images.server.deploy', 'Deploy the Astro project to the Deployment (what `astro deploy` does)']] },
      opt('images.server.contextDir', 'Astro project directory', { placeholder: '.', hint: 'Under the bot’s build root; dags/ is left out of the server image.' }),
    ],
  },
];

export const isChoice = (i: Field | Choice): i is Choice => 'select' in i;

export function pageById(id: PageId): Page | undefined {
  return PAGES.find((p) => p.id === id);
}

/** the fields shown on a page for the current choices */
export function visibleFields(page: Page, values: Record<string, string>): Field[] {
  return page.items.flatMap((i) => (isChoice(i) ? [i.select, ...(i.variants[values[i.select.path] ?? i.select.initial ?? ''] ?? [])] : [i]));
}

/** every field a page can show, whatever the choices (for prefill) */
export function allFields(page: Page): Field[] {
  const out = new Map<string, Field>();
  for (const i of page.items) for (const f of isChoice(i) ? [i.select, ...Object.values(i.variants).flat()] : [i]) if (!out.has(f.path)) out.set(f.path, f);
  return [...out.values()];
}

export const ALL_FIELDS: Field[] = PAGES.flatMap(allFields);
export const SECRET_FIELDS = ALL_FIELDS.filter((f) => f.kind === 'secret');
