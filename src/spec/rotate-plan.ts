/**
 * The `rotate-token` job: a new agent token replaces the one the agents use, with one approval. Its steps run in
 * this order; the old token is deleted last, so a failure anywhere before leaves it working. Pure.
 */
import type { SetupSpec } from './schema.ts';
import { createsAgentToken } from './schema.ts';
import { chartDisplay, renderValues, secretNames, valuesHash } from './values.ts';
import { agentComponents, type Plan, type PlanStep } from './plan.ts';

export const ROTATE_TOKEN = 'rotate-token';
export const ROTATE_STEP_IDS = ['token-create', 'token-secret', 'token-roll', 'token-verify', 'token-delete-old'] as const;
export type RotateStepId = (typeof ROTATE_STEP_IDS)[number];

const TITLES: Record<RotateStepId, string> = {
  'token-create': 'Create a new agent token',
  'token-secret': 'Update the agent-token Secret',
  'token-roll': 'Roll the agents',
  'token-verify': 'Verify: pods Ready and a test DAG run',
  'token-delete-old': 'Delete the old token',
};

export function buildRotationPlan(spec: SetupSpec): Plan {
  const ns = spec.cluster.namespace;
  const names = secretNames(spec);
  const days = createsAgentToken(spec)?.expiresInDays;
  const components = agentComponents(spec);
  const actions: Record<RotateStepId, string[]> = {
    'token-create': [
      'plan (reads only): the Secret, the token it holds, the Deployment\'s agent tokens (at most 50); one approval covers every step below',
      `after approval: create agent token re-bot-${spec.deployment.name}-<date> through the Astro API (${days ? `expires in ${days} days` : 'never expires'}); its value is sealed until step 2 writes it`,
    ],
    'token-secret': [`write the new token into Secret ${names.agentToken} (key token) in ${ns}; the sealed copy is erased`],
    'token-roll': [`rollout restart of ${components.join(', ')} (release ${spec.cluster.release}); wait until each has Ready pods of the new template`],
    'token-verify': spec.verify.enabled
      ? [`wait for Ready agent pods, then trigger test DAG ${spec.verify.testDag} and wait for its success`]
      : ['wait for Ready agent pods (verify.enabled is false: no test DAG)'],
    'token-delete-old': ['delete the old agent token through the Astro API (only after every step above succeeded)'],
  };
  const steps: PlanStep[] = ROTATE_STEP_IDS.map((id, i) => ({
    id, number: i + 1, order: i + 1, title: TITLES[id], applies: true, actions: actions[id],
    touches: id === 'token-secret' ? { namespaces: [ns], secrets: [names.agentToken] } : id === 'token-roll' ? { release: spec.cluster.release } : id === 'token-verify' && spec.verify.enabled ? { testDag: spec.verify.testDag } : {},
  }));
  return {
    kind: ROTATE_TOKEN,
    deployment: spec.deployment.name,
    release: spec.cluster.release,
    namespace: ns,
    chart: chartDisplay(spec.cluster.chart),
    valuesHash: valuesHash(renderValues(spec), spec.cluster.chart),
    secrets: [names.agentToken],
    steps,
  };
}

/** Job kinds besides the setup, for the job engine (`jobKinds`). */
export const JOB_KINDS = { [ROTATE_TOKEN]: { plan: buildRotationPlan, stepIds: ROTATE_STEP_IDS } };
