import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderValues, secretNames, valuesHash, valuesYaml, CLASS } from '../../src/spec/values.ts';
import { envOf, spec } from './fixtures.ts';

const REF_DIR = resolve(import.meta.dirname, '../fixtures/agent-values'); // origins: SOURCES.md there

function kwargs(values: Record<string, any>): Record<string, unknown> {
  return JSON.parse(envOf(values.commonEnv, 'AIRFLOW__SECRETS__BACKEND_KWARGS')!);
}

describe('renderValues: secrets backends', () => {
  it('AWS Secrets Manager + IRSA', () => {
    const v = renderValues(spec({
      identity: { provider: 'aws', roleArn: 'arn:aws:iam::123456789012:role/agents' },
      secretsBackend: { provider: 'aws-secrets-manager', region: 'eu-west-1', roleArn: 'arn:aws:iam::123456789012:role/sm' },
    })) as any;
    expect(v.secretBackend).toBe('airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend');
    expect(kwargs(v)).toEqual({ connections_prefix: 'airflow/connections', variables_prefix: 'airflow/variables', region_name: 'eu-west-1', role_arn: 'arn:aws:iam::123456789012:role/sm' });
    expect(v.serviceAccount.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/agents' });
  });

  it('Azure Key Vault + workload identity', () => {
    const v = renderValues(spec({
      identity: { provider: 'azure', clientId: '2f1c3b8e-6d7a-4c1e-9b2f-0a1b2c3d4e5f' },
      secretsBackend: { provider: 'azure-key-vault', vaultUrl: 'https://kv1.vault.azure.net/' },
    })) as any;
    expect(v.secretBackend).toBe('airflow.providers.microsoft.azure.secrets.key_vault.AzureKeyVaultBackend');
    expect(kwargs(v)).toEqual({ vault_url: 'https://kv1.vault.azure.net/', connections_prefix: 'airflow-connections', variables_prefix: 'airflow-variables' });
    expect(v.labels).toEqual({ 'azure.workload.identity/use': 'true' });
    expect(v.serviceAccount.annotations['azure.workload.identity/client-id']).toBe('2f1c3b8e-6d7a-4c1e-9b2f-0a1b2c3d4e5f');
  });

  it('GCP Secret Manager + GKE workload identity', () => {
    const v = renderValues(spec({
      identity: { provider: 'gcp', serviceAccount: 'agents@proj-123.iam.gserviceaccount.com' },
      secretsBackend: { provider: 'gcp-secret-manager', projectId: 'proj-123' },
    })) as any;
    expect(v.secretBackend).toBe('airflow.providers.google.cloud.secrets.secret_manager.CloudSecretManagerBackend');
    expect(kwargs(v)).toMatchObject({ project_id: 'proj-123', connections_prefix: 'airflow-connections' });
    expect(v.serviceAccount.annotations).toEqual({ 'iam.gke.io/gcp-service-account': 'agents@proj-123.iam.gserviceaccount.com' });
  });

  it('HashiCorp Vault with Kubernetes auth', () => {
    const v = renderValues(spec({ secretsBackend: { provider: 'hashicorp-vault', url: 'https://vault:8200', mountPoint: 'airflow', kubernetesRole: 'agents' } })) as any;
    expect(v.secretBackend).toBe('airflow.providers.hashicorp.secrets.vault.VaultBackend');
    expect(kwargs(v)).toEqual({ url: 'https://vault:8200', mount_point: 'airflow', connections_path: 'connections', variables_path: 'variables', kv_engine_version: 2, auth_type: 'kubernetes', kubernetes_role: 'agents' });
  });

  it('no backend: no secretBackend key and no kwargs env', () => {
    const v = renderValues(spec()) as any;
    expect(v).not.toHaveProperty('secretBackend');
    expect(envOf(v.commonEnv, 'AIRFLOW__SECRETS__BACKEND_KWARGS')).toBeUndefined();
  });
});

describe('renderValues: XCom backends', () => {
  it.each([
    [{ type: 's3', bucket: 'acme-xcom', region: 'us-east-1' }, 's3://aws_default@acme-xcom/xcom', 'AIRFLOW_CONN_AWS_DEFAULT', 'aws'],
    [{ type: 'azure-blob', storageAccount: 'acmexcom', container: 'xcom', prefix: 'p/q' }, 'abfs://wasb_xcom@xcom/p/q', 'AIRFLOW_CONN_WASB_XCOM', 'wasb'],
    [{ type: 'gcs', bucket: 'acme-xcom', compression: 'gzip' }, 'gs://google_cloud_default@acme-xcom/xcom', 'AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT', 'google_cloud_platform'],
  ])('%o', (xcom, path, connEnv, connType) => {
    const v = renderValues(spec({ xcomBackend: xcom })) as any;
    expect(v.xcomBackend).toBe('airflow.providers.common.io.xcom.backend.XComObjectStorageBackend');
    expect(envOf(v.commonEnv, 'AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH')).toBe(path);
    expect(envOf(v.commonEnv, 'AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD')).toBe('0');
    expect(envOf(v.commonEnv, 'AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION')).toBe((xcom as any).compression ?? 'zip');
    expect(JSON.parse(envOf(v.commonEnv, connEnv)!).conn_type).toBe(connType);
  });
});

describe('renderValues: DAG sources, logging, identity of secrets', () => {
  it('Git with credentials: URL via the connection Secret, never in values', () => {
    const s = spec({ dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags.git', subdir: 'dags', credentials: { username: { env: 'GU' }, token: { env: 'GT' } } } });
    const v = renderValues(s) as any;
    const bundles = JSON.parse(v.dagBundleConfigList);
    expect(bundles).toEqual([{ name: 'dags', classpath: CLASS.gitBundle, kwargs: { git_conn_id: 'git_default', tracking_ref: 'main', subdir: 'dags', refresh_interval: 60 } }]);
    const ref = { name: 'AIRFLOW_CONN_GIT_DEFAULT', valueFrom: { secretKeyRef: { name: 'sales-git-connection', key: 'AIRFLOW_CONN_GIT_DEFAULT' } } };
    expect(v.workers[0].env).toEqual([ref]);
    expect(v.dagProcessor.env).toEqual([ref]);
    expect(v.triggerer.env).toEqual([ref]);
    expect(envOf(v.commonEnv, 'AIRFLOW_CONN_GIT_DEFAULT')).toBeUndefined();
    expect(secretNames(s).gitConnectionEnv).toBe('AIRFLOW_CONN_GIT_DEFAULT');
  });

  it('public Git repo: repo_url in kwargs, no connection env', () => {
    const v = renderValues(spec({ dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags.git' } })) as any;
    expect(JSON.parse(v.dagBundleConfigList)[0].kwargs).toEqual({ repo_url: 'https://github.com/acme/dags.git', tracking_ref: 'main', refresh_interval: 60 });
    expect(v.workers[0].env).toEqual([]);
  });

  it('local bundle', () => {
    const v = renderValues(spec({ dagSource: { type: 'local', path: '/usr/local/airflow/dags' } })) as any;
    expect(JSON.parse(v.dagBundleConfigList)).toEqual([{ name: 'dags-folder', classpath: 'airflow.dag_processing.bundles.local.LocalDagBundle', kwargs: { path: '/usr/local/airflow/dags' } }]);
  });

  it('logging modes', () => {
    const none = renderValues(spec()) as any;
    expect(none.loggingSidecar).toEqual({ enabled: false });
    expect(envOf(none.commonEnv, 'AIRFLOW__LOGGING__REMOTE_LOGGING')).toBeUndefined();

    const obj = renderValues(spec({ logging: { mode: 'object-storage', remoteBaseLogFolder: 's3://logs/airflow', connId: 'aws_default' } })) as any;
    expect(envOf(obj.commonEnv, 'AIRFLOW__LOGGING__REMOTE_LOGGING')).toBe('True');
    expect(envOf(obj.commonEnv, 'AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER')).toBe('s3://logs/airflow');
    expect(envOf(obj.commonEnv, 'AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID')).toBe('aws_default');

    for (const mode of ['sidecar', 'external-link']) {
      const extra = mode === 'external-link' ? { taskLogUrlPattern: 'https://logs.example.com/q?dag={{ ti.dag_id }}' } : {};
      const sc = renderValues(spec({ logging: { mode, config: 'sources: {}', ...extra } })) as any;
      expect(sc.loggingSidecar).toMatchObject({ enabled: true, name: 'vector-logging-sidecar', config: 'sources: {}' });
      expect(sc.workers[0].volumeMounts).toEqual([{ name: 'task-logs', mountPath: '/usr/local/airflow/logs' }]);
      expect(sc.triggerer.volumes).toEqual([{ name: 'task-logs', emptyDir: {} }]);
    }
  });

  it('OpenLineage and agent token by Secret name only', () => {
    const s = spec({ openLineage: { enabled: true } });
    const v = renderValues(s) as any;
    expect(v.agentTokenSecretName).toBe('sales-agent-token');
    expect(v.imagePullSecretName).toBe('sales-pull-secret');
    expect(v.openLineage).toMatchObject({ enabled: true, apiKeySecret: 'sales-openlineage', namespace: 'cosmic-nebula-1234', url: 'https://o11y.astronomer.io' });
    expect(v.openLineage.endpoint).toContain('ASTRO_DEPLOYMENT_ID=cldep0000000001');
    for (const k of ['agentToken', 'imagePullSecretData', 'agentTokenFile']) expect(v).not.toHaveProperty(k);
    expect(v.openLineage).not.toHaveProperty('apiKey');
    expect(v.createNamespace).toBe(false);
    expect(valuesYaml(v).match(/^commonEnv:/gm)).toHaveLength(1);
  });

  it('client image override', () => {
    expect((renderValues(spec(), { clientImage: 'reg/x:deploy-1' }) as any).image).toBe('reg/x:deploy-1');
  });
});

function keyPaths(v: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) {
    if (v.length && typeof v[0] === 'object' && !Array.isArray(v[0])) for (const item of v) keyPaths(item, `${prefix}[]`, out);
    return out;
  }
  if (v && typeof v === 'object') {
    for (const [k, child] of Object.entries(v)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.add(p);
      keyPaths(child, p, out);
    }
  }
  return out;
}

describe('against the real reference values files', () => {
  const drRaw = readFileSync(resolve(REF_DIR, 'aws-re-dr.values.yaml'), 'utf8');
  const dr = parse(drRaw);
  const web = parse(readFileSync(resolve(REF_DIR, 'astronomer-webinar-demos.values.yaml'), 'utf8'));
  // The aws-re-dr setup: AWS SM, S3 XCom, local bundle, OpenLineage, Sentinel, IRSA, prefix aws-re-dr, namespace default
  const drSpec = spec({
    cluster: { namespace: 'default', resourceNamePrefix: 'aws-re-dr', chart: { version: '2.3.3' } },
    identity: { provider: 'aws', roleArn: 'arn:aws:iam::123456789012:role/aws-re-dr' },
    secretsBackend: { provider: 'aws-secrets-manager', region: 'us-east-1', roleArn: 'arn:aws:iam::123456789012:role/aws-re-dr' },
    xcomBackend: { type: 's3', bucket: 'aws-re-dr-xcom', region: 'us-east-1', prefix: 'cldep0000000001/xcom' },
    dagSource: { type: 'local' },
    openLineage: { enabled: true },
    sentinel: { enabled: true },
  });
  const v = renderValues(drSpec) as any;

  it('renders the same key paths as aws-re-dr for the parts that file sets', () => {
    const ours = keyPaths(v);
    const theirs = keyPaths(dr);
    const parts = ['resourceNamePrefix', 'createNamespace', 'namespace', 'astroDeploymentAPIURL', 'image', 'imagePullPolicy', 'imagePullSecretName', 'agentTokenSecretName', 'secretBackend', 'xcomBackend', 'dagBundleConfigList', 'commonEnv', 'commonEnv[].name', 'commonEnv[].value', 'openLineage.enabled', 'openLineage.namespace', 'openLineage.apiKeySecret', 'openLineage.url', 'openLineage.endpoint', 'openLineage.facetsEnvironmentVariables', 'logLevel', 'labels', 'annotations', 'serviceAccount.annotations', 'serviceAccount.workers.create', 'serviceAccount.sentinel.create', 'loggingSidecar.enabled', 'workers[].name', 'workers[].queues', 'workers[].replicas', 'workers[].syncSlots', 'workers[].env', 'dagProcessor.env', 'triggerer.replicas', 'triggerer.asyncSlots', 'triggerer.env', 'sentinel.enabled'];
    for (const p of parts) {
      expect(theirs.has(p), `reference has ${p}`).toBe(true);
      expect(ours.has(p), `rendered has ${p}`).toBe(true);
    }
    expect(v.secretBackend).toBe(dr.secretBackend);
    expect(v.xcomBackend).toBe(dr.xcomBackend);
    expect(JSON.parse(v.dagBundleConfigList)[0].classpath).toBe(JSON.parse(dr.dagBundleConfigList)[0].classpath);
    for (const e of dr.commonEnv as Array<{ name: string }>) {
      if (e.name === 'AWS_REGION') continue; // region travels in the backend kwargs and the connection extra
      expect(envOf(v.commonEnv, e.name), e.name).toBeDefined();
    }
    expect(envOf(v.commonEnv, 'AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD')).toBe('0');
    expect(v.openLineage.facetsEnvironmentVariables).toEqual(dr.openLineage.facetsEnvironmentVariables);
  });

  it('emits only keys the chart knows (every rendered path appears in a reference file)', () => {
    const known = new Set([...keyPaths(dr), ...keyPaths(web)]);
    const freeForm = [/^labels\./, /^annotations\./, /^serviceAccount\.annotations\./, /\.resources\./, /env\[\]\./, /^commonEnv\[\]\./, /volumes\[\]\./, /volumeMounts\[\]\./, /^loggingSidecar\.config/];
    for (const s of [v, renderValues(spec({ logging: { mode: 'sidecar', config: 'x: 1' }, agent: { image: 'a/b:1', token: { env: 'X' }, workers: [{ name: 'w', queues: 'q', hpa: { maxReplicaCount: 3 }, resources: { limits: { cpu: '1' } } }] } }))]) {
      for (const p of keyPaths(s)) {
        if (freeForm.some((re) => re.test(p))) continue;
        expect(known.has(p), `unknown chart key ${p}`).toBe(true);
      }
    }
  });
});

describe('determinism', () => {
  it('same spec → same YAML and hash; a changed field changes the hash', () => {
    const a = renderValues(spec());
    const b = renderValues(spec());
    expect(valuesYaml(a)).toBe(valuesYaml(b));
    expect(valuesHash(a, spec().cluster.chart)).toBe(valuesHash(b, spec().cluster.chart));
    expect(valuesHash(a, spec().cluster.chart)).toMatch(/^[0-9a-f]{64}$/);
    const c = renderValues(spec({ xcomBackend: { type: 's3', bucket: 'acme-xcom', region: 'us-east-1', threshold: 1024 } }));
    expect(valuesHash(c, spec().cluster.chart)).not.toBe(valuesHash(a, spec().cluster.chart));
    expect(valuesHash(a, { ...spec().cluster.chart, version: '2.3.4' })).not.toBe(valuesHash(a, spec().cluster.chart));
  });

  it('hash ignores key insertion order', () => {
    const chart = { path: 'x' };
    expect(valuesHash({ a: 1, b: { c: 2, d: 3 } }, chart)).toBe(valuesHash({ b: { d: 3, c: 2 }, a: 1 }, chart));
  });
});
