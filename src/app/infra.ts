import type { Infra } from '../infra/types.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { createHelmAdapter } from '../infra/helm.ts';
import { createImageAdapter } from '../infra/images.ts';
import { createAirflowClient } from '../infra/airflow.ts';
import { createAstroClient } from '../infra/astro.ts';
import { createAstroTokensClient } from '../infra/astro-tokens.ts';
import { createAstroDeploysClient } from '../infra/astro-deploys.ts';
import { probeUrl } from '../infra/probe.ts';
import { secretEnvNames } from '../infra/child-env.ts';

export interface InfraOptions {
  /** kubeconfig file; default $KUBECONFIG or ~/.kube/config (client-node's default loading) */
  kubeconfigPath?: string;
  /** resolves the Deployment API token (Astro + Airflow APIs) */
  deploymentApiToken?: () => Promise<string | undefined>;
}

/** Builds the adapters for one job from its spec. Astro/Airflow clients exist only when configured. */
export async function createInfra(spec: SetupSpec, opts: InfraOptions = {}): Promise<Infra> {
  const explicitKubeconfig = opts.kubeconfigPath ?? spec.cluster.kubeconfig;
  // helm reads $KUBECONFIG itself too; the kube adapter resolves it (a list, ~/.kube/config, in-cluster) and
  // says what it looked at when there is none
  const kubeconfigPath = explicitKubeconfig ?? process.env.KUBECONFIG;
  const token = await opts.deploymentApiToken?.();
  // helm and the image tools never see the values behind the spec's { env: NAME } references
  const dropEnv = secretEnvNames(spec);
  const infra: Infra = {
    // loaded on first use: @kubernetes/client-node costs ~120 MB and ~1 s at start, and the bot idles most of its life
    kube: (await import('../infra/kube.ts')).sharedKubeAdapter({ kubeconfigPath: explicitKubeconfig, context: spec.cluster.kubeContext }),
    helm: createHelmAdapter({ kubeconfigPath, kubeContext: spec.cluster.kubeContext, secretEnvNames: dropEnv }),
    images: createImageAdapter({ secretEnvNames: dropEnv }),
    probeUrl,
  };
  if (token && spec.deployment.astroApiUrl !== undefined) {
    infra.astro = createAstroClient({ baseUrl: spec.deployment.astroApiUrl, token });
    infra.astroTokens = createAstroTokensClient({ baseUrl: spec.deployment.astroApiUrl, token });
    infra.astroDeploys = createAstroDeploysClient({ baseUrl: spec.deployment.astroApiUrl, token });
  }
  if (token && spec.deployment.airflowApiUrl) {
    infra.airflow = createAirflowClient({ baseUrl: spec.deployment.airflowApiUrl, token });
  }
  return infra;
}
