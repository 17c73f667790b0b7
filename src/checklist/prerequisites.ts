import type { StepHandler, StepContext, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import type { AccessCheck } from '../infra/types.ts';
import { secretRefsOf } from '../spec/schema.ts';
import { UnresolvedSecretError } from '../app/secrets.ts';

const MIN_KUBE_MINOR = 30;

/** The RBAC the rest of the setup needs, checked with SelfSubjectAccessReview before anything is changed. */
export function requiredAccess(namespace: string, createNamespace = true): AccessCheck[] {
  const ns = (verb: string, resource: string, group = '', subresource?: string): AccessCheck => ({ verb, resource, group, namespace, subresource });
  return [
    { verb: 'get', resource: 'namespaces', group: '' },
    // only when re-bot creates the namespace (cluster.createNamespace): manifests/base grants no namespaces create
    ...(createNamespace ? [{ verb: 'create', resource: 'namespaces', group: '' }] : []),
    ns('get', 'secrets'),
    ns('create', 'secrets'),
    ns('update', 'secrets'),
    ns('create', 'deployments', 'apps'),
    ns('patch', 'deployments', 'apps'),
    ns('create', 'serviceaccounts'),
    ns('create', 'configmaps'),
    ns('list', 'pods'),
    ns('get', 'pods', '', 'log'),
  ];
}

export const OOM_ADVICE =
  'kubelet singleProcessOOMKill is not true: on cgroup v2 (Kubernetes ≥ 1.32) an out-of-memory task then kills the whole agent worker container and every task running in it; set singleProcessOOMKill: true in the kubelet configuration';

export const prerequisites: StepHandler = {
  id: 'prerequisites',
  async run(ctx: StepContext): Promise<StepOutcome> {
    const { kube, helm } = ctx.infra;
    const warnings: string[] = [];
    const opts = { signal: ctx.signal };

    // every secret the later steps need, before anything is written: a missing one must not leave half a setup
    ctx.progress('resolving secret references');
    const unresolved: string[] = [];
    for (const r of secretRefsOf(ctx.spec)) {
      try {
        await ctx.resolveSecret(r.ref);
      } catch (err) {
        unresolved.push(`${r.field} (${r.purpose}): ${err instanceof UnresolvedSecretError ? err.reason : (err as Error).message}`);
      }
    }
    if (unresolved.length) {
      throw new StepFailure(`${unresolved.length} secret reference(s) cannot be resolved, so nothing was changed: ${unresolved.join('; ')}`, {
        field: unresolved[0].split(' ')[0],
        hint: 'set the environment variables or files the spec refers to (re-bot plan lists them), or enter the secrets again with /re setup',
      });
    }

    ctx.progress('checking Kubernetes version');
    const v = await kube.serverVersion(opts);
    const minor = Number.parseInt(v.minor, 10);
    if (Number(v.major) < 1 || (Number(v.major) === 1 && !(minor >= MIN_KUBE_MINOR))) {
      throw new StepFailure(`Kubernetes ${v.gitVersion} is too old: Remote Execution needs Kubernetes ≥ 1.${MIN_KUBE_MINOR}`);
    }

    ctx.progress('checking Helm version');
    const helmVersion = await helm.version(opts);
    const helmMajor = Number(/v?(\d+)\./.exec(helmVersion)?.[1] ?? 0);
    if (helmMajor < 3) throw new StepFailure(`Helm ${helmVersion} is too old: Helm ≥ 3 is required`);

    ctx.progress('reading kubelet configuration of each node');
    const nodes = await kube.nodesOomKill(opts);
    const notSet = nodes.filter((n) => n.singleProcessOOMKill !== true && !n.error);
    if (notSet.length) {
      const names = notSet.map((n) => `${n.node} (${n.singleProcessOOMKill === false ? 'false' : 'not reported'})`);
      warnings.push(`${notSet.length} of ${nodes.length} node(s): ${names.join(', ')} — ${OOM_ADVICE}`);
    }
    const forbidden = nodes.filter((n) => n.error && n.forbidden);
    if (forbidden.length) warnings.push(kubeletNotChecked(forbidden.map((n) => n.node), "forbidden: re-bot's identity has no nodes/proxy, by design"));
    for (const n of nodes.filter((x) => x.error && !x.forbidden)) warnings.push(kubeletNotChecked([n.node], n.error!));

    ctx.progress('checking permissions (SelfSubjectAccessReview)');
    // an existing namespace is never created, so its create permission is not needed (manifests/base grants none)
    const createsNamespace = ctx.spec.cluster.createNamespace && (await kube.readNamespace(ctx.spec.cluster.namespace, opts)) === null;
    const access = await kube.checkAccess(requiredAccess(ctx.spec.cluster.namespace, createsNamespace), opts);
    const missing = access.filter((a) => !a.allowed);
    if (missing.length) {
      const list = missing.map((a) => `${a.verb} ${a.group ? `${a.group}/` : ''}${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.namespace ? ` in ${a.namespace}` : ''}`);
      const createNs = missing.some((a) => a.resource === 'namespaces' && a.verb === 'create');
      const hint = `grant these verbs to the identity in the kube context (see manifests/README.md for the least-privilege roles)${createNs ? `, or create namespace ${ctx.spec.cluster.namespace} beforehand and set cluster.createNamespace: false` : ''}`;
      throw new StepFailure(`missing Kubernetes permissions: ${list.join('; ')}`, { hint });
    }

    let astroFacts = '';
    if (ctx.infra.astro) {
      ctx.progress('checking the Deployment API token against the Astro API');
      const dep = await ctx.infra.astro.getDeployment(ctx.spec.deployment.organizationId, ctx.spec.deployment.id, opts);
      if (dep.remoteExecution && !dep.remoteExecution.enabled) {
        throw new StepFailure(`Astro deployment ${ctx.spec.deployment.id} is not in Remote Execution mode`, { field: 'deployment.id' });
      }
      const remote = dep.remoteExecution?.remoteApiUrl;
      if (remote && stripSlash(remote) !== stripSlash(ctx.spec.deployment.apiUrl)) {
        warnings.push(`deployment.apiUrl ${ctx.spec.deployment.apiUrl} differs from the Astro API's remoteApiUrl ${remote}`);
      }
      astroFacts = `, API token valid`;
    } else {
      warnings.push('Deployment API token not checked: no Astro API configured');
    }

    ctx.progress(`checking network access to ${ctx.spec.deployment.apiUrl}`);
    const probe = await ctx.infra.probeUrl(ctx.spec.deployment.apiUrl, { signal: ctx.signal, timeoutMs: 10_000 });
    if (!probe.ok) warnings.push(`Astro API URL ${ctx.spec.deployment.apiUrl} not reachable from here (${probe.error ?? probe.status}); agents need egress to it`);

    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `Kubernetes ${v.gitVersion}, Helm ${helmVersion}, ${nodes.length} node(s), permissions ok${astroFacts}`,
      warnings,
      output: {
        kubernetesVersion: v.gitVersion,
        helmVersion,
        nodesWithoutSingleProcessOOMKill: notSet.map((n) => n.node),
        nodesNotChecked: nodes.filter((n) => n.error).map((n) => n.node),
        astroReachable: probe.ok,
      },
    };
  },
};

/** The kubelet configuration of these nodes could not be read: say so, and how to check by hand. Not a failure. */
function kubeletNotChecked(names: string[], why: string): string {
  const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
  return (
    `could not read the kubelet configuration of node${names.length > 1 ? 's' : ''} ${shown} (${why}), so singleProcessOOMKill was not checked; ` +
    `check by hand with an admin identity${names.length > 1 ? ', for each node' : ''}: kubectl get --raw /api/v1/nodes/${names[0]}/proxy/configz | jq .kubeletconfig.singleProcessOOMKill ` +
    '(it should print true; if not, an out-of-memory task kills the whole agent worker container on cgroup v2: set singleProcessOOMKill: true in the kubelet configuration)'
  );
}

function stripSlash(u: string): string {
  return u.replace(/\/+$/, '');
}
