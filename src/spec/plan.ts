/** SetupSpec → the eight checklist steps, what each will create or change, or why it is skipped. Pure. */
import type { SetupSpec } from './schema.ts';
import { chartDisplay, renderValues, requiredSecretNames, secretNames, valuesHash, CLASS } from './values.ts';

export const STEP_IDS = ['prerequisites', 'agents', 'secrets-backend', 'xcom-backend', 'dag-sources', 'logging', 'deploy', 'verify'] as const;
export type StepId = (typeof STEP_IDS)[number];

/** Steps 3–6 run before step 2 so the first `helm upgrade` already carries complete values. */
export const EXECUTION_ORDER: readonly StepId[] = ['prerequisites', 'secrets-backend', 'xcom-backend', 'dag-sources', 'logging', 'agents', 'deploy', 'verify'];

export interface PlanStep {
  /** a StepId for a setup; another job kind's plan has its own step ids */
  id: StepId | (string & {});
  /** checklist number 1..8 */
  number: number;
  title: string;
  /** execution position 1..8 */
  order: number;
  applies: boolean;
  skipReason?: string;
  actions: string[];
  touches: { namespaces?: string[]; secrets?: string[]; release?: string; chart?: string; images?: string[]; testDag?: string };
}

export interface Plan {
  /** absent: a setup; otherwise the job kind that built it (e.g. rotate-token) */
  kind?: string;
  deployment: string;
  release: string;
  namespace: string;
  chart: string;
  valuesHash: string;
  /** names only, never values */
  secrets: string[];
  steps: PlanStep[];
}

const TITLES: Record<StepId, string> = {
  prerequisites: 'Prerequisites',
  agents: 'Agents (namespace, Secrets, Helm release)',
  'secrets-backend': 'Secrets backend',
  'xcom-backend': 'XCom backend',
  'dag-sources': 'DAG sources',
  logging: 'Logging, OpenLineage and Sentinel',
  deploy: 'Deploy images',
  verify: 'Verify',
};

function step(id: StepId, body: Omit<PlanStep, 'id' | 'number' | 'title' | 'order'>): PlanStep {
  return { id, number: STEP_IDS.indexOf(id) + 1, title: TITLES[id], order: EXECUTION_ORDER.indexOf(id) + 1, ...body };
}

/**
 * The agent components (Deployment names) that get pods: step 2 and step 7 wait for one Ready pod of each,
 * and the plan lists the same names. A worker or triggerer scaled to zero has no pod to wait for.
 */
export function agentComponents(spec: SetupSpec): string[] {
  const p = spec.cluster.resourceNamePrefix;
  const names = spec.agent.workers.filter((w) => w.replicas !== 0).map((w) => `${p}-worker-${w.name}`);
  names.push(`${p}-dag-processor`);
  if (spec.agent.triggerer?.replicas !== 0) names.push(`${p}-triggerer`);
  if (spec.sentinel?.enabled) names.push(`${p}-sentinel`);
  return names;
}

export function clientImageRepository(spec: SetupSpec): string | undefined {
  return spec.images.client?.repository;
}

export function buildPlan(spec: SetupSpec): Plan {
  const ns = spec.cluster.namespace;
  const release = spec.cluster.release;
  const chart = chartDisplay(spec.cluster.chart);
  const names = secretNames(spec);
  const secrets = requiredSecretNames(spec);
  const hash = valuesHash(renderValues(spec), spec.cluster.chart);
  const prefix = spec.cluster.resourceNamePrefix;
  const steps: PlanStep[] = [];

  steps.push(
    step('prerequisites', {
      applies: true,
      actions: [
        `check cluster access${spec.cluster.kubeContext ? ` (context ${spec.cluster.kubeContext})` : ''}: permission to manage namespaces, Secrets, Deployments and ServiceAccounts in ${ns}`,
        `check that Astro deployment ${spec.deployment.id} has Remote Execution enabled and its API URL matches ${spec.deployment.apiUrl}`,
        `check that ${spec.deployment.apiUrl} is reachable (agents need egress to it)`,
        'find helm' + (spec.images.client ? ` and ${spec.images.client.builder}` : ''),
      ],
      touches: {},
    }),
  );

  const sb = spec.secretsBackend;
  steps.push(
    step('secrets-backend', {
      applies: sb.provider !== 'none',
      ...(sb.provider === 'none' ? { skipReason: 'secretsBackend.provider is none: Connections and Variables come only from the orchestration plane / env' } : {}),
      actions:
        sb.provider === 'none'
          ? []
          : [
              `set secretBackend to ${valuesClass(spec)} and AIRFLOW__SECRETS__BACKEND_KWARGS in commonEnv`,
              ...identityActions(spec),
              `the client image needs the ${providerPackage(sb.provider)} provider package`,
            ],
      touches: {},
    }),
  );

  const x = spec.xcomBackend;
  steps.push(
    step('xcom-backend', {
      applies: x.type !== 'none',
      ...(x.type === 'none' ? { skipReason: 'xcomBackend.type is none: tasks on remote agents cannot pass XCom values through the orchestration plane' } : {}),
      actions:
        x.type === 'none'
          ? []
          : [
              `set xcomBackend to ${CLASS.xcomObjectStorage}`,
              `store XCom values in ${x.type === 'azure-blob' ? `container ${x.container} of account ${x.storageAccount}` : `bucket ${x.bucket}`} under '${x.prefix}' (threshold ${x.threshold} bytes${x.compression ? `, ${x.compression} compression` : ''}) through connection ${x.connId}`,
            ],
      touches: {},
    }),
  );

  const d = spec.dagSource;
  steps.push(
    step('dag-sources', {
      applies: true,
      actions:
        d.type === 'git'
          ? [
              `set dagBundleConfigList to a GitDagBundle '${d.bundleName}' tracking ${d.trackingRef} of ${d.repoUrl}${d.subdir ? ` (subdir ${d.subdir})` : ''}, refreshed every ${d.refreshIntervalSeconds}s`,
              d.credentials
                ? `create Secret ${names.gitConnection} (key ${names.gitConnectionEnv}) holding the Git connection ${d.connId}; workers, DAG processor and triggerer read it via secretKeyRef`
                : 'public repository: no Git connection Secret',
            ]
          : [`set dagBundleConfigList to a LocalDagBundle '${d.bundleName}'${d.path ? ` at ${d.path}` : ' (DAGs baked into the client image)'}`],
      touches: d.type === 'git' && d.credentials ? { namespaces: [ns], secrets: [names.gitConnection] } : {},
    }),
  );

  const l = spec.logging;
  const logActions: string[] = [];
  if (l.mode === 'none') logActions.push('logging: none — task logs stay in the agent pods and are lost when they end');
  if (l.mode === 'sidecar' || l.mode === 'external-link') logActions.push(`enable the Vector logging sidecar (${l.image}) shipping ${l.logsPath}`);
  if (l.mode === 'external-link') logActions.push(`the Astro deployment must show task logs via the link pattern ${l.taskLogUrlPattern} (remoteExecution.taskLogUrlPattern)`);
  if (l.mode === 'object-storage') logActions.push(`enable remote logging to ${l.remoteBaseLogFolder}; the Astro deployment's task log bucket must be the same URL`);
  if (spec.openLineage.enabled) logActions.push(`enable OpenLineage to ${spec.openLineage.url}; create Secret ${names.openLineage} (key api-key) from ${spec.openLineage.apiKey ? 'openLineage.apiKey' : 'the Deployment API token'}`);
  else logActions.push('OpenLineage disabled');
  logActions.push(spec.sentinel.enabled ? `enable Sentinel (Deployment ${prefix}-sentinel)` : 'Sentinel disabled');
  const logApplies = l.mode !== 'none' || spec.openLineage.enabled || spec.sentinel.enabled;
  steps.push(
    step('logging', {
      applies: logApplies,
      ...(logApplies ? {} : { skipReason: 'logging.mode is none, OpenLineage and Sentinel are disabled' }),
      actions: logActions,
      touches: spec.openLineage.enabled ? { namespaces: [ns], secrets: [names.openLineage] } : {},
    }),
  );

  const components = agentComponents(spec);
  steps.push(
    step('agents', {
      applies: true,
      actions: [
        'runs after steps 3–6 so that the first helm upgrade carries the complete values (secrets/XCom backends, DAG source, logging) and the agents start once, correctly',
        spec.cluster.createNamespace ? `create namespace ${ns} if missing` : `use existing namespace ${ns} (cluster.createNamespace is false)`,
        'create' in spec.agent.token
          ? `after approval: create agent token re-bot-${spec.deployment.name}-<date> through the Astro API (${spec.agent.token.create.expiresInDays ? `expires in ${spec.agent.token.create.expiresInDays} days` : 'never expires'}) and write it into Secret ${names.agentToken} (key token); kept while the token it holds is live`
          : `create or update Secret ${names.agentToken} (key token) from agent.token`,
        `create or update Secret ${names.pullSecret} (kubernetes.io/dockerconfigjson for ${spec.agent.imagePullRegistry}, user ${spec.agent.imagePullUsername}) from ${spec.agent.imagePullToken ? 'agent.imagePullToken' : 'deployment.apiToken'}`,
        `after approval: helm upgrade --install ${release} ${chart} in ${ns} with values hash ${hash.slice(0, 16)}`,
        `wait up to ${spec.agent.readyTimeoutSeconds}s for ${components.length} component(s) to have a Ready pod: ${components.join(', ')}`,
      ],
      touches: { namespaces: [ns], secrets: [names.agentToken, names.pullSecret], release, chart, images: [spec.agent.image] },
    }),
  );

  const c = spec.images.client;
  const server = spec.images.server?.deploy ? spec.images.server : undefined;
  const serverActions = server
    ? [
        `build the server image ${server.contextDir}/${server.dockerfile} with ${server.builder} for linux/amd64 (dags/ excluded); check its Astro Runtime against Deployment ${spec.deployment.id}'s and the releases Astro offers`,
        `after approval: create a deploy (IMAGE_AND_DAG) on Astro Deployment ${spec.deployment.id}, push the image to the Deployment's imageRepository:<deploy tag> as user cli, finalize, wait for HEALTHY`,
      ]
    : [];
  steps.push(
    step('deploy', {
      applies: c !== undefined || server !== undefined,
      ...(c || server ? {} : { skipReason: `images.client is not set: the agents keep running ${spec.agent.image}` }),
      actions: [
        ...serverActions,
        ...(c
          ? [
              `build ${c.contextDir}/${c.dockerfile} with ${c.builder}${c.platform ? ` for ${c.platform}` : ''}`,
              c.push ? `push ${c.repository}:${c.tag ?? 'deploy-<UTC timestamp>'}` : `keep ${c.repository}:${c.tag ?? 'deploy-<UTC timestamp>'} local (push: false)`,
              `after approval: helm upgrade ${release} with image set to the new tag`,
            ]
          : []),
      ],
      touches: c ? { release, images: [`${c.repository}:${c.tag ?? 'deploy-<UTC timestamp>'}`] } : {},
    }),
  );

  const v = spec.verify;
  steps.push(
    step('verify', {
      applies: v.enabled,
      ...(v.enabled ? {} : { skipReason: 'verify.enabled is false' }),
      actions: v.enabled
        ? [
            `check that every agent pod in ${ns} is Running and Ready (up to ${v.podsTimeoutSeconds}s)`,
            `unpause and trigger test DAG ${v.testDag} through ${spec.deployment.airflowApiUrl ?? 'the Airflow API'}, wait up to ${v.timeoutSeconds}s for success`,
          ]
        : [],
      touches: v.enabled ? { testDag: v.testDag } : {},
    }),
  );

  steps.sort((a, b) => a.number - b.number);
  return { deployment: spec.deployment.name, release, namespace: ns, chart, valuesHash: hash, secrets, steps };
}

function valuesClass(spec: SetupSpec): string {
  return (renderValues(spec).secretBackend as string | undefined) ?? '';
}

function providerPackage(p: string): string {
  return {
    'aws-secrets-manager': 'apache-airflow-providers-amazon',
    'azure-key-vault': 'apache-airflow-providers-microsoft-azure',
    'gcp-secret-manager': 'apache-airflow-providers-google',
    'hashicorp-vault': 'apache-airflow-providers-hashicorp',
  }[p] ?? p;
}

function identityActions(spec: SetupSpec): string[] {
  const id = spec.identity;
  if (id.provider === 'aws') return [`annotate the agent ServiceAccounts with eks.amazonaws.com/role-arn ${id.roleArn} (IRSA)`];
  if (id.provider === 'azure') return [`label pods azure.workload.identity/use=true and annotate ServiceAccounts with client id ${id.clientId}`];
  if (id.provider === 'gcp') return [`annotate the agent ServiceAccounts with iam.gke.io/gcp-service-account ${id.serviceAccount}`];
  return ['no cloud identity configured (identity.provider none): the backend must find credentials another way'];
}
