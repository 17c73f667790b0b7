/**
 * How re-bot marks what it creates, and tells its own objects from anyone else's. Secrets and the namespace
 * carry the managed-by label plus an annotation naming the deployment; a Helm release carries it in the
 * per-revision description (`helm history` shows it).
 */
import { createHash } from 'node:crypto';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 're-bot';
export const DEPLOYMENT_ANNOTATION = 're-bot.astronomer.io/deployment';

export interface ObjectMeta {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** Labels and annotations re-bot puts on a namespace or Secret it creates for `deployment`. */
export function ownerMeta(deployment: string): ObjectMeta {
  return { labels: { [MANAGED_BY_LABEL]: MANAGED_BY }, annotations: { [DEPLOYMENT_ANNOTATION]: deployment } };
}

/**
 * 'ours' when re-bot created the object for this deployment; 'other-deployment' when re-bot created it for
 * another one; 'foreign' when re-bot did not create it. (A re-bot label without the annotation is from a
 * re-bot version that did not annotate yet: ours.)
 */
export function ownerOf(meta: Partial<ObjectMeta> | undefined, deployment: string): 'ours' | 'other-deployment' | 'foreign' {
  if (meta?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) return 'foreign';
  const d = meta.annotations?.[DEPLOYMENT_ANNOTATION];
  return d === undefined || d === deployment ? 'ours' : 'other-deployment';
}

/** Helm `--description` of a re-bot revision; the job and values hash let a resumed step find its own upgrade. */
export function releaseDescription(deployment: string, jobId: string, valuesHash: string): string {
  return `re-bot job ${jobId} values ${valuesHash.slice(0, 16)} deployment ${deployment}`;
}

/** The deployment a revision description names, '' for a re-bot revision from before deployments were recorded, undefined when not re-bot's. */
export function releaseDescriptionDeployment(description: string | undefined): string | undefined {
  const m = /^re-bot job \S+ values \S+(?: deployment (\S+))?$/.exec(description ?? '');
  return m ? (m[1] ?? '') : undefined;
}

/**
 * Short content fingerprint of a Secret: sha256 over its type and sorted data, first 12 hex digits. Shown in
 * plans and approvals so a change is visible without ever showing a value.
 */
export function secretContentHash(type: string, stringData: Record<string, string>): string {
  const sorted = Object.keys(stringData).sort().map((k) => [k, stringData[k]]);
  return createHash('sha256').update(JSON.stringify([type, sorted])).digest('hex').slice(0, 12);
}
