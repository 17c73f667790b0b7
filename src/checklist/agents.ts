import type { StepHandler, StepOutcome } from './types.ts';
import { renderValues, valuesHash } from '../spec/values.ts';
import { secretNames } from '../spec/values.ts';
import { rollout, waitForAgentPods, expectedComponents } from './release.ts';

const ASTRO_REGISTRY = 'images.astronomer.cloud';

/** Step 2: namespace, agent-token and pull Secrets, values, diff, approval, helm upgrade, Ready pods. */
export const agents: StepHandler = {
  id: 'agents',
  async run(ctx): Promise<StepOutcome> {
    const { spec, infra } = ctx;
    const ns = spec.cluster.namespace;
    const names = secretNames(spec);
    const opts = { signal: ctx.signal };

    ctx.progress(`ensuring namespace ${ns}`);
    const nsResult = await infra.kube.ensureNamespace(ns, { 'app.kubernetes.io/managed-by': 're-bot' }, opts);

    ctx.progress(`writing Secret ${names.agentToken}`);
    const token = await ctx.resolveSecret(spec.agent.token);
    const tokenSecret = await infra.kube.applySecret({ namespace: ns, name: names.agentToken, stringData: { token }, labels: { 'app.kubernetes.io/managed-by': 're-bot' } }, opts);

    ctx.progress(`writing Secret ${names.pullSecret}`);
    const registryPassword = await ctx.resolveSecret(spec.agent.imagePullToken ?? spec.deployment.apiToken);
    const dockerconfig = JSON.stringify({
      auths: { [ASTRO_REGISTRY]: { username: 'cli', password: registryPassword, auth: Buffer.from(`cli:${registryPassword}`).toString('base64') } },
    });
    const pullSecret = await infra.kube.applySecret(
      { namespace: ns, name: names.pullSecret, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': dockerconfig }, labels: { 'app.kubernetes.io/managed-by': 're-bot' } },
      opts,
    );

    const values = renderValues(spec);
    const hash = valuesHash(values, spec.cluster.chart);
    const result = await rollout(ctx, {
      key: 'install',
      values,
      valuesHash: hash,
      title: `helm upgrade --install ${spec.cluster.release} (agents for ${spec.deployment.name})`,
      facts: { 'values hash': hash.slice(0, 16), image: String((values as { image?: string }).image ?? 'chart default'), namespace: ns },
    });

    ctx.progress('waiting for worker, DAG processor, triggerer and Sentinel pods');
    const pods = await waitForAgentPods(ctx, (spec.agent.readyTimeoutSeconds ?? 300) * 1000);
    const comps = expectedComponents(spec);
    return {
      status: 'succeeded',
      summary: `${spec.cluster.release} revision ${result.revision}${result.changed ? '' : ' (unchanged)'}; ${comps.length} components Ready; Secrets ${names.agentToken} (${tokenSecret.action}), ${names.pullSecret} (${pullSecret.action})`,
      output: {
        namespace: ns,
        namespaceCreated: nsResult.created,
        secrets: [names.agentToken, names.pullSecret],
        helmRevision: result.revision,
        valuesHash: hash,
        approvalHash: result.approvalHash,
        approvedBy: result.approvedBy,
        pods: pods.components,
      },
    };
  },
};
