import type { StepHandler, StepOutcome } from './types.ts';
import { renderValues, valuesHash } from '../spec/values.ts';
import { secretNames } from '../spec/values.ts';
import { rollout, waitForAgentPods, expectedComponents } from './release.ts';
import { writeReferencedSecret } from './configured.ts';
import { registerSecret } from '../redact.ts';

/** Step 2: namespace, agent-token and pull Secrets, values, diff, approval, helm upgrade, Ready pods. */
export const agents: StepHandler = {
  id: 'agents',
  async run(ctx): Promise<StepOutcome> {
    const { spec, infra } = ctx;
    const ns = spec.cluster.namespace;
    const names = secretNames(spec);
    const opts = { signal: ctx.signal };

    let namespaceCreated = false;
    if (spec.cluster.createNamespace) {
      ctx.progress(`ensuring namespace ${ns}`);
      namespaceCreated = (await infra.kube.ensureNamespace(ns, { 'app.kubernetes.io/managed-by': 're-bot' }, opts)).created || ctx.checkpoint.get<boolean>('namespaceCreated') === true;
      if (namespaceCreated) ctx.checkpoint.set('namespaceCreated', true);
    }

    const token = await ctx.resolveSecret(spec.agent.token);
    const tokenAction = await writeReferencedSecret(ctx, names.agentToken, { token });

    const registry = spec.agent.imagePullRegistry;
    const user = spec.agent.imagePullUsername;
    const registryPassword = await ctx.resolveSecret(spec.agent.imagePullToken ?? spec.deployment.apiToken);
    // the dockerconfigjson `auth` field is base64 of user:password, a form the plain value's variants do not cover
    registerSecret(registryPassword, { scope: ctx.jobId, variantsWith: [`${user}:`] });
    const dockerconfig = JSON.stringify({
      auths: { [registry]: { username: user, password: registryPassword, auth: Buffer.from(`${user}:${registryPassword}`).toString('base64') } },
    });
    const pullAction = await writeReferencedSecret(ctx, names.pullSecret, { '.dockerconfigjson': dockerconfig }, 'kubernetes.io/dockerconfigjson');

    const values = renderValues(spec);
    const hash = valuesHash(values, spec.cluster.chart);
    const result = await rollout(ctx, {
      key: 'install',
      values,
      valuesHash: hash,
      title: `helm upgrade --install ${spec.cluster.release} (agents for ${spec.deployment.name})`,
      facts: { 'values hash': hash.slice(0, 16), image: String((values as { image?: string }).image ?? 'chart default'), namespace: ns },
    });

    const comps = expectedComponents(spec);
    ctx.progress(`waiting for a Ready pod of each of ${comps.length} components: ${comps.join(', ')}`);
    const pods = await waitForAgentPods(ctx, (spec.agent.readyTimeoutSeconds ?? 300) * 1000);
    return {
      status: 'succeeded',
      summary: `${spec.cluster.release} revision ${result.revision}${result.changed ? '' : ' (unchanged)'}; ${comps.length} components Ready; Secrets ${names.agentToken} (${tokenAction}), ${names.pullSecret} (${pullAction})`,
      output: {
        namespace: ns,
        namespaceCreated,
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
