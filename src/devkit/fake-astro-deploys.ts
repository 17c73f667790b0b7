/**
 * The Deploys part of the Astro API stand-in (src/devkit/fake-astro.ts): `deployment-options`, and
 * `deploys` create / get / list / finalize under a Deployment, with the v1 field names. A finalized deploy
 * turns the Deployment's `status` to DEPLOYING, then HEALTHY after `healthyAfterMs`. Finalize checks that
 * `<imageRepository>:<imageTag>` was pushed when the stand-in is given a registry to look in.
 * Every event goes to `log`: create → push → finalize → HEALTHY, which the demo prints and tests read.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface FakeDeploysOptions {
  /** `runtimeReleases[].version` of deployment-options (default a few Runtime 3 releases) */
  runtimeReleases?: string[];
  /** how long the Deployment stays DEPLOYING after a finalize (default 1500 ms) */
  healthyAfterMs?: number;
  /** digest of repository:tag in the registry, null when absent; without it finalize does not check the push */
  imageDigest?: (repository: string, tag: string) => Promise<string | null>;
}

export interface FakeDeployLogEntry {
  event: 'create' | 'push' | 'finalize' | 'HEALTHY';
  deploymentId: string;
  deployId: string;
  detail: string;
  at: string;
}

interface StoredDeploy {
  id: string;
  deploymentId: string;
  imageRepository: string;
  imageTag: string;
  isDagDeployEnabled: boolean;
  status: 'INITIALIZED' | 'DEPLOYED' | 'FAILED';
  type: string;
  description?: string;
  createdAt: string;
  updatedAt: string;
  dagTarballVersion?: string;
  dagsUploadUrl?: string;
}

/** The fields of a Deployment the deploys routes read. */
export interface DeployableDeployment {
  id: string;
  organizationId: string;
  imageRepository?: unknown;
  isDagDeployEnabled?: unknown;
  [field: string]: unknown;
}

type Send = (status: number, payload: unknown) => void;
type Fail = (status: number, message: string) => void;

export const DEFAULT_RUNTIME_RELEASES = ['3.0-1', '3.0-10', '3.1-1', '3.1-2', '3.1-5', '3.2-1', '3.2-5'];
const DEPLOY_TYPES = ['IMAGE_AND_DAG', 'IMAGE_ONLY', 'DAG_ONLY'];

export function imageRepositoryOf(d: DeployableDeployment): string {
  return typeof d.imageRepository === 'string' ? d.imageRepository : `fake-cluster.registry.astronomer.run/${d.organizationId}/${d.id}`;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

export function createFakeDeploys(options: FakeDeploysOptions = {}) {
  const deploys = new Map<string, StoredDeploy>();
  const log: FakeDeployLogEntry[] = [];
  /** deployment id → when its last finalize happened */
  const finalizedAt = new Map<string, number>();
  const healthyLogged = new Set<string>();
  const lastDeploy = new Map<string, string>();
  const healthyAfterMs = options.healthyAfterMs ?? 1500;
  const note = (e: Omit<FakeDeployLogEntry, 'at'>) => log.push({ ...e, at: new Date().toISOString() });

  /** The Deployment fields the deploys change: `status`, and `imageTag` of the most recent deploy. */
  function deploymentFields(d: DeployableDeployment): Record<string, unknown> {
    const out: Record<string, unknown> = { imageRepository: imageRepositoryOf(d) };
    const at = finalizedAt.get(d.id);
    const last = lastDeploy.get(d.id);
    if (last) out.imageTag = deploys.get(last)!.imageTag;
    if (at === undefined) return out;
    if (Date.now() - at < healthyAfterMs) return { ...out, status: 'DEPLOYING' };
    if (!healthyLogged.has(`${d.id}@${at}`)) {
      healthyLogged.add(`${d.id}@${at}`);
      note({ event: 'HEALTHY', deploymentId: d.id, deployId: last ?? '', detail: `Deployment ${d.id} is HEALTHY on ${imageRepositoryOf(d)}:${last ? deploys.get(last)!.imageTag : '?'}` });
    }
    return { ...out, status: 'HEALTHY' };
  }

  /**
   * Handles the path if it is a deploys or deployment-options route (true), otherwise leaves it (false).
   * `find` returns the Deployment or answers the 404/403 itself (undefined).
   */
  function handle(req: IncomingMessage, path: string, send: Send, fail: Fail, find: (org: string, id: string) => DeployableDeployment | undefined): boolean {
    const options_ = /^\/v1\/organizations\/([^/]+)\/deployment-options$/.exec(path);
    if (options_) {
      if (req.method !== 'GET') fail(405, 'Method Not Allowed');
      else send(200, { runtimeReleases: (options.runtimeReleases ?? DEFAULT_RUNTIME_RELEASES).map((version) => ({ version, airflowVersion: version.startsWith('3.') ? '3.1.0' : '2.10.5', channel: 'STABLE', releaseDate: '2026-01-01T00:00:00Z', airflowDatabaseMigration: false })), executors: ['ASTRO', 'CELERY', 'KUBERNETES'] });
      return true;
    }
    const m = /^\/v1\/organizations\/([^/]+)\/deployments\/([^/]+)\/deploys(?:\/([^/]+)(\/finalize)?)?$/.exec(path);
    if (!m) return false;
    const [org, depId] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
    const deployId = m[3] ? decodeURIComponent(m[3]) : undefined;
    const finalize = !!m[4];
    const dep = find(org, depId);
    if (!dep) return true;
    void (async () => {
      let body: Record<string, unknown> = {};
      if (req.method === 'POST') {
        try {
          const b = await readJson(req);
          if (!b || typeof b !== 'object' || Array.isArray(b)) return fail(400, 'request body must be a JSON object');
          body = b as Record<string, unknown>;
        } catch {
          return fail(400, 'request body is not valid JSON');
        }
      }
      if (!deployId) {
        if (req.method === 'GET') {
          const list = [...deploys.values()].filter((d) => d.deploymentId === depId).reverse();
          return send(200, { deploys: list, limit: 20, offset: 0, totalCount: list.length });
        }
        if (req.method !== 'POST') return fail(405, 'Method Not Allowed');
        if (typeof body.type !== 'string' || !DEPLOY_TYPES.includes(body.type)) return fail(400, `type: expected one of ${DEPLOY_TYPES.join(', ')}`);
        const now = new Date().toISOString();
        const dagDeploy = dep.isDagDeployEnabled !== false;
        const d: StoredDeploy = {
          id: `cldeploy${randomBytes(8).toString('hex')}`,
          deploymentId: depId,
          imageRepository: imageRepositoryOf(dep),
          imageTag: `deploy-${now.slice(0, 19).replace(/[:T]/g, '-')}-${randomBytes(3).toString('hex')}`,
          isDagDeployEnabled: dagDeploy,
          status: 'INITIALIZED',
          type: body.type,
          createdAt: now,
          updatedAt: now,
          ...(typeof body.description === 'string' ? { description: body.description } : {}),
          ...(dagDeploy ? { dagsUploadUrl: `https://fakeblob.blob.core.windows.net/${depId}/dags?sv=fake` } : {}),
        };
        deploys.set(d.id, d);
        note({ event: 'create', deploymentId: depId, deployId: d.id, detail: `create deploy ${d.id} (${d.type}) for ${d.imageRepository}:${d.imageTag}` });
        return send(200, d);
      }
      const d = deploys.get(deployId);
      if (!d || d.deploymentId !== depId) return fail(404, `Deploy ${deployId} not found`);
      if (!finalize) return req.method === 'GET' ? send(200, d) : fail(405, 'Method Not Allowed');
      if (req.method !== 'POST') return fail(405, 'Method Not Allowed');
      if (d.status === 'DEPLOYED') return send(200, d); // finalizing twice changes nothing
      if (d.isDagDeployEnabled && d.type !== 'IMAGE_ONLY' && typeof body.dagTarballVersion !== 'string') {
        return fail(400, 'dagTarballVersion is required when DAG deploys are enabled on the Deployment and the deploy type is IMAGE_AND_DAG or DAG_ONLY');
      }
      if (options.imageDigest) {
        const digest = await options.imageDigest(d.imageRepository, d.imageTag).catch(() => null);
        if (!digest) return fail(400, `image ${d.imageRepository}:${d.imageTag} was not found in the registry; push it before finalizing`);
        note({ event: 'push', deploymentId: depId, deployId: d.id, detail: `push seen: ${d.imageRepository}:${d.imageTag} (${digest})` });
      }
      d.status = 'DEPLOYED';
      d.updatedAt = new Date().toISOString();
      if (typeof body.dagTarballVersion === 'string') d.dagTarballVersion = body.dagTarballVersion;
      finalizedAt.set(depId, Date.now());
      lastDeploy.set(depId, d.id);
      note({ event: 'finalize', deploymentId: depId, deployId: d.id, detail: `finalize deploy ${d.id} ${JSON.stringify(body)}: Deployment ${depId} DEPLOYING` });
      return send(200, d);
    })().catch((err: Error) => fail(500, `stand-in error: ${err.message} (${randomUUID()})`));
    return true;
  }

  return { handle, deploymentFields, log, deploys };
}

export type FakeDeploys = ReturnType<typeof createFakeDeploys>;
