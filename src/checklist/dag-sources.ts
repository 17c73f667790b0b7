import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import { CLASS, secretNames } from '../spec/values.ts';
import { APPLIED_BY_STEP_2, APPLIED_WITH, renderedValues } from './configured.ts';
import { planSecret, PREPARED_SECRETS } from './secrets.ts';

const STOCK_AGENT_IMAGE = /^images\.astronomer\.cloud\/baseimages\//;

interface Bundle {
  name: string;
  classpath: string;
  kwargs: Record<string, unknown>;
}

/** Step 5: the DAG bundle in the values step 2 applies, plus the Git connection Secret the agents read via secretKeyRef. */
export const dagSources: StepHandler = {
  id: 'dag-sources',
  async run(ctx): Promise<StepOutcome> {
    const s = ctx.spec.dagSource;
    const bundle = renderedBundle(ctx);
    if (bundle.name !== s.bundleName) throw new StepFailure(`rendered DAG bundle is named ${bundle.name}, expected ${s.bundleName}`, { field: 'dagSource.bundleName' });
    const warnings: string[] = [];

    if (s.type === 'local') {
      if (bundle.classpath !== CLASS.localBundle || bundle.kwargs.path !== s.path) {
        throw new StepFailure(`rendered DAG bundle is ${bundle.classpath} ${JSON.stringify(bundle.kwargs)}, expected ${CLASS.localBundle} with path ${s.path ?? '(image default)'}`, { field: 'dagSource.path' });
      }
      if (!ctx.spec.images.client && STOCK_AGENT_IMAGE.test(ctx.spec.agent.image)) {
        warnings.push(`a local DAG bundle reads DAGs from the agent image, but the agents run the stock image ${ctx.spec.agent.image}, which contains no DAGs: set images.client to build a client image with your DAGs, or use dagSource.type: git`);
      }
      return {
        status: warnings.length ? 'warned' : 'succeeded',
        summary: `${CLASS.localBundle} '${s.bundleName}' reading ${s.path ?? "the image's DAGs folder"}; no Secret needed; ${APPLIED_BY_STEP_2}`,
        warnings,
        output: { classPath: CLASS.localBundle, bundleName: s.bundleName, path: s.path ?? null, secrets: [] },
        appliedWith: APPLIED_WITH,
      };
    }

    if (hasUserInfo(s.repoUrl)) {
      throw new StepFailure('dagSource.repoUrl contains credentials; give the plain HTTPS URL and put username and token in dagSource.credentials', { field: 'dagSource.repoUrl' });
    }
    if (bundle.classpath !== CLASS.gitBundle) throw new StepFailure(`rendered DAG bundle is ${bundle.classpath}, expected ${CLASS.gitBundle}`, { field: 'dagSource.type' });
    if (bundle.kwargs.tracking_ref !== s.trackingRef) throw new StepFailure(`rendered bundle tracks ${String(bundle.kwargs.tracking_ref)}, expected ${s.trackingRef}`, { field: 'dagSource.trackingRef' });

    const names = secretNames(ctx.spec);
    const where = `${s.trackingRef} of ${s.repoUrl}${s.subdir ? ` (subdir ${s.subdir})` : ''}, refreshed every ${s.refreshIntervalSeconds}s`;
    const base = { classPath: CLASS.gitBundle, bundleName: s.bundleName, repoUrl: s.repoUrl, trackingRef: s.trackingRef, subdir: s.subdir ?? null, providerPackage: 'apache-airflow-providers-git' };

    if (!s.credentials) {
      if (bundle.kwargs.repo_url !== s.repoUrl) throw new StepFailure('rendered Git bundle does not carry repo_url for a public repository', { field: 'dagSource.repoUrl' });
      return {
        status: 'succeeded',
        summary: `${CLASS.gitBundle} '${s.bundleName}' tracking ${where}; public repository, no Git connection Secret; ${APPLIED_BY_STEP_2}`,
        output: { ...base, secrets: [] },
        appliedWith: APPLIED_WITH,
      };
    }

    // with a connection, repo_url in the kwargs as well stops the credentials from being used (reference section 4)
    if (bundle.kwargs.git_conn_id !== s.connId || 'repo_url' in bundle.kwargs) {
      throw new StepFailure(`rendered Git bundle must use git_conn_id ${s.connId} and no repo_url when credentials are set`, { field: 'dagSource.connId' });
    }
    const envName = names.gitConnectionEnv!;
    const unwired = componentsWithoutSecretRef(ctx, envName, names.gitConnection);
    if (unwired.length) {
      throw new StepFailure(`${unwired.join(', ')} would not read ${envName} from Secret ${names.gitConnection}`, { field: 'dagSource.credentials' });
    }

    // prepared only: step 2 writes it after its approval
    const secret = await planSecret(ctx, 'git-connection');
    return {
      status: 'succeeded',
      summary: `${CLASS.gitBundle} '${s.bundleName}' tracking ${where}; Git connection ${s.connId} in Secret ${names.gitConnection} (key ${envName}, content sha256:${secret.hash}, ${secret.action}); ${APPLIED_BY_STEP_2}`,
      output: { ...base, connId: s.connId, secrets: [names.gitConnection], secretKey: envName, [PREPARED_SECRETS]: [secret] },
      appliedWith: APPLIED_WITH,
    };
  },
};

function renderedBundle(ctx: StepContext): Bundle {
  const raw = renderedValues(ctx).dagBundleConfigList;
  let list: unknown;
  try {
    list = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || list.length !== 1) throw new StepFailure('rendered dagBundleConfigList is not a JSON list with one bundle', { field: 'dagSource' });
  const b = list[0] as Bundle;
  return { name: b.name, classpath: b.classpath, kwargs: b.kwargs ?? {} };
}

function hasUserInfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/** Components whose env lacks the secretKeyRef to the Git connection Secret. */
function componentsWithoutSecretRef(ctx: StepContext, envName: string, secret: string): string[] {
  type Env = Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  const v = renderedValues(ctx) as { workers?: Array<{ name: string; env?: Env }>; dagProcessor?: { env?: Env }; triggerer?: { env?: Env } };
  const wired = (env?: Env) => !!env?.some((e) => e.name === envName && e.valueFrom?.secretKeyRef?.name === secret && e.valueFrom.secretKeyRef.key === envName);
  const out = (v.workers ?? []).filter((w) => !wired(w.env)).map((w) => `worker ${w.name}`);
  if (!wired(v.dagProcessor?.env)) out.push('dagProcessor');
  if (!wired(v.triggerer?.env)) out.push('triggerer');
  return out;
}
