/**
 * Step 7, server image: what `astro deploy` does for a Remote Execution Deployment, through the Astro
 * Deploys API and the image builder step 7 uses for the client image. Plan (reads only) → the step's
 * approval → build (dags/ excluded, linux/amd64) → runtime check → create deploy → push to
 * `<imageRepository>:<imageTag>` as user `cli` with the API token → finalize → wait for HEALTHY.
 * Every sub-step is checkpointed under `server.*`, so a re-run after kill -9 reuses the deploy it created.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepContext } from './types.ts';
import { StepFailure } from './types.ts';
import { contextDigest } from './build-context.ts';
import { sleep } from './release.ts';
import { errorMessage } from '../redact.ts';
import { finalizeBody, registryHostOf, type AstroDeploy, type AstroDeploysClient, type DeployTarget } from '../infra/astro-deploys.ts';

export const RUNTIME_LABEL = 'io.astronomer.docker.runtime.version';
export const SERVER_PLATFORM = 'linux/amd64';
/** left out of the server image: on Remote Execution the agents run the DAGs, as `astro deploy` does */
export const SERVER_EXCLUDE = ['dags'];

type ServerSpec = NonNullable<StepContext['spec']['images']['server']>;

export interface ServerPlan {
  lines: string[];
  review: { deploymentId: string; build: string; push: string };
  /** what the approval hash covers besides the lines: the context digest */
  contextDigest: string;
  facts: Record<string, string>;
  tokenUrls: string[];
  target: DeployTarget;
}

export interface ServerDeployed {
  deployId: string;
  image: string;
  digest: string;
  runtime: string;
}

/** "3.1-2" < "3.1-10" < "3.2-1"; "12.0.0" style too. Non-numeric parts compare as 0. */
export function compareRuntime(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** The Runtime part of an agent image tag: `…:3.1-1-python-3.12-astro-agent-1.1.0` → `3.1-1`. */
export function runtimeOfAgentImage(ref: string): string | undefined {
  const tag = /:([^/:@]+)(?:@.*)?$/.exec(ref)?.[1];
  return tag ? /^(\d+\.\d+(?:\.\d+)?(?:-\d+)?)-python/.exec(tag)?.[1] : undefined;
}

/** The client image's Runtime: its Dockerfile's agent base image, else the agent image the spec runs. */
export function clientRuntime(spec: StepContext['spec']): { runtime: string; from: string } | undefined {
  const c = spec.images.client;
  if (c) {
    try {
      const text = readFileSync(join(c.contextDir, c.dockerfile), 'utf8');
      for (const m of text.matchAll(/^\s*FROM\s+(?:--\S+\s+)*(\S+)/gim)) {
        const r = runtimeOfAgentImage(m[1]!);
        if (r) return { runtime: r, from: `${c.contextDir}/${c.dockerfile} (FROM ${m[1]})` };
      }
    } catch {
      /* unreadable Dockerfile: the client build reports it */
    }
  }
  const r = runtimeOfAgentImage(spec.agent.image);
  return r ? { runtime: r, from: `agent.image ${spec.agent.image}` } : undefined;
}

/**
 * The rules `astro deploy` enforces before a push (label present, no downgrade, a release Astro offers),
 * plus the client rule of `astro remote deploy` (client Runtime not newer than the Deployment's).
 * Returns the problems; empty when the deploy may go ahead.
 */
export function runtimeProblems(input: { image?: string; deployment?: string; releases: string[]; client?: { runtime: string; from: string }; deploymentId: string }): string[] {
  const out: string[] = [];
  const { image, deployment, releases, client, deploymentId } = input;
  if (!image) out.push(`the server image has no ${RUNTIME_LABEL} label, so it is not based on Astro Runtime: start the Dockerfile FROM an Astro Runtime image`);
  else if (deployment && compareRuntime(image, deployment) < 0) {
    out.push(`the server image's Astro Runtime ${image} is older than Deployment ${deploymentId}'s Runtime ${deployment}: a deploy cannot downgrade; use Runtime ${deployment} or later in the Dockerfile`);
  } else if (deployment && !releases.includes(image)) {
    out.push(`the server image's Astro Runtime ${image} is not a Runtime release Astro offers (Deployment ${deploymentId} runs ${deployment}; deployment-options lists ${releases.slice(-5).join(', ') || 'none'}…): use one of those in the Dockerfile`);
  }
  if (client && deployment && compareRuntime(client.runtime, deployment) > 0) {
    out.push(`the client image's Astro Runtime ${client.runtime} (${client.from}) is newer than Deployment ${deploymentId}'s Runtime ${deployment}: upgrade the Deployment first, or use an agent image for Runtime ${deployment}`);
  }
  return out;
}

function client(ctx: StepContext): AstroDeploysClient {
  const c = ctx.infra.astroDeploys;
  if (!c) throw new StepFailure('images.server.deploy is true, but no Astro API client is configured: set deployment.apiToken (a Deployment, Workspace or Organization API token)', { field: 'deployment.apiToken' });
  return c;
}

function readContext(s: ServerSpec) {
  try {
    return contextDigest(s.contextDir, s.dockerfile, SERVER_EXCLUDE.map((d) => `/${d}/`));
  } catch (err) {
    throw new StepFailure(`cannot read the Astro project for the server image: ${errorMessage(err)}`, { field: 'images.server.contextDir' });
  }
}

async function target(ctx: StepContext): Promise<DeployTarget> {
  const { deployment } = ctx.spec;
  const t = await client(ctx).getDeployTarget(deployment.organizationId, deployment.id, { signal: ctx.signal }).catch((err: Error) => {
    throw new StepFailure(`cannot read Astro Deployment ${deployment.id} for the server image deploy: ${errorMessage(err)}`);
  });
  if (!t.remoteExecutionEnabled) {
    throw new StepFailure(`Astro Deployment ${deployment.id} does not have Remote Execution enabled (remoteExecution.enabled is not true): re-bot deploys server images only to Remote Execution Deployments`, { field: 'deployment.id' });
  }
  registryHostOf(t.imageRepository);
  return t;
}

/** What the step 7 approval lists for the server image. Reads only: the Deployment (as step 1 does) and the project files. */
export async function planServerImage(ctx: StepContext): Promise<ServerPlan> {
  const s = ctx.spec.images.server!;
  const t = await target(ctx);
  const builder = await ctx.infra.images.available(s.builder);
  if (!builder.ok) {
    throw new StepFailure(`${s.builder} is not available on the re-bot host (${builder.reason ?? 'not found'}): the server image cannot be built`, { field: 'images.server.builder' });
  }
  const context = readContext(s);
  const host = registryHostOf(t.imageRepository);
  const id = ctx.spec.deployment.id;
  const body = JSON.stringify(finalizeBody(t.isDagDeployEnabled));
  const lines = [
    `build the server image ${s.contextDir}/${s.dockerfile} with ${s.builder} for ${SERVER_PLATFORM}, dags/ excluded (context sha256:${context.digest.slice(0, 16)}, ${context.files} files)`,
    `check its Astro Runtime (label ${RUNTIME_LABEL}) against Deployment ${id}'s Runtime ${t.runtimeVersion ?? '(none)'} and the Runtime releases Astro offers; the client image's Runtime must not be newer`,
    `create a deploy (IMAGE_AND_DAG) on Astro Deployment ${id}, push ${t.imageRepository}:<the tag the deploy assigns> (registry ${host}, user cli, deployment.apiToken${s.insecureRegistry ? ', TLS verification off' : ''})`,
    `finalize the deploy (${body}) and wait up to ${s.waitTimeoutSeconds}s for Deployment ${id} to be HEALTHY`,
  ];
  return {
    lines,
    review: { deploymentId: id, build: `${s.contextDir}/${s.dockerfile} with ${s.builder} for ${SERVER_PLATFORM} (dags/ excluded, context sha256:${context.digest.slice(0, 12)})`, push: `${t.imageRepository}:<deploy tag>` },
    contextDigest: context.digest,
    target: t,
    facts: { 'server image': `${t.imageRepository}:<deploy tag> (Deployment ${id}, Runtime ${t.runtimeVersion ?? 'not set'})` },
    tokenUrls: [`${ctx.spec.deployment.astroApiUrl} (deploys of ${id}: deployment.apiToken as Bearer)`, `${host} (registry login as cli: deployment.apiToken)`],
  };
}

/** The deploy this job created: from the checkpoint, from the Deployment's deploys (a crash before the checkpoint), or created now. */
async function ensureDeploy(ctx: StepContext, description: string): Promise<AstroDeploy> {
  const saved = ctx.checkpoint.get<AstroDeploy>('server.deploy');
  if (saved) return saved;
  const api = client(ctx);
  const { organizationId: org, id } = ctx.spec.deployment;
  const opts = { signal: ctx.signal };
  if (ctx.checkpoint.get('server.creating')) {
    const mine = (await api.listDeploys(org, id, opts)).find((d) => d.description === description && d.status === 'INITIALIZED');
    if (mine) {
      ctx.checkpoint.set('server.deploy', mine);
      return mine;
    }
  }
  ctx.checkpoint.set('server.creating', true);
  ctx.progress(`creating a deploy on Astro Deployment ${id}`);
  const d = await api.createDeploy(org, id, { type: 'IMAGE_AND_DAG', description }, opts);
  ctx.checkpoint.set('server.deploy', d);
  ctx.audit?.('astro deploy created', { deploymentId: id, deployId: d.id, image: `${d.imageRepository}:${d.imageTag}` });
  return d;
}

/** After the approval: build, check, create, push, finalize, wait. Safe to re-run at any point. */
export async function deployServerImage(ctx: StepContext, approvedContext: string, maxPollMs = 10_000): Promise<ServerDeployed> {
  const s = ctx.spec.images.server!;
  const { organizationId: org, id } = ctx.spec.deployment;
  const opts = { signal: ctx.signal };
  const api = client(ctx);
  const done = ctx.checkpoint.get<ServerDeployed>('server.done');
  if (done) return done;

  const t = await ctx.checkpoint.once('server.target', () => target(ctx));
  const local = `localhost/re-bot/server-${id}:${ctx.jobId.toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}`;
  const build = async () => {
    if (readContext(s).digest !== approvedContext) {
      // the files changed between the approval and the build: what would be deployed is not what was approved
      ctx.checkpoint.set('server.approved', undefined);
      ctx.checkpoint.set('roll.approved', undefined);
      throw new StepFailure(`the Astro project ${s.contextDir} changed after the approval; retry the job to plan and approve the new build`, { field: 'images.server.contextDir' });
    }
    ctx.progress(`building the server image ${s.contextDir}/${s.dockerfile} with ${s.builder} for ${SERVER_PLATFORM} (dags/ excluded)`);
    const r = await ctx.infra.images.build({ builder: s.builder, contextDir: s.contextDir, dockerfile: s.dockerfile, image: local, platform: SERVER_PLATFORM, exclude: SERVER_EXCLUDE }, opts);
    return { image: r.image, runtime: r.labels[RUNTIME_LABEL] ?? '' };
  };
  const built = await ctx.checkpoint.once('server.built', build);

  await ctx.checkpoint.once('server.runtimeChecked', async () => {
    const releases = await api.runtimeReleases(org, opts);
    const problems = runtimeProblems({ image: built.runtime || undefined, deployment: t.runtimeVersion, releases, client: clientRuntime(ctx.spec), deploymentId: id });
    if (problems.length) {
      throw new StepFailure(`Astro Runtime mismatch, nothing was pushed or deployed: ${problems.join('; ')}`, { field: 'images.server.contextDir' });
    }
    return true;
  });

  const deploy = await ensureDeploy(ctx, `re-bot job ${ctx.jobId}: server image from ${s.contextDir}`);
  const ref = `${deploy.imageRepository}:${deploy.imageTag}`;

  const digest = await ctx.checkpoint.once('server.pushed', async () => {
    if (!(await ctx.infra.images.hasLocal(s.builder, built.image, opts))) {
      // the local image went away (another host, a cleaned store): rebuild the approved context, same Runtime
      const again = await build();
      if (again.runtime !== built.runtime) throw new StepFailure(`the rebuilt server image has Astro Runtime ${again.runtime || '(none)'}, not the checked ${built.runtime}; retry the job`);
    }
    const token = await ctx.resolveSecret(ctx.spec.deployment.apiToken);
    ctx.progress(`pushing the server image to ${ref}`);
    const r = await ctx.infra.images.push(
      { builder: s.builder, image: built.image, destination: ref, tlsVerify: !s.insecureRegistry, auth: { registry: registryHostOf(deploy.imageRepository), username: 'cli', password: token } },
      opts,
    ).catch((err: Error) => {
      throw new StepFailure(`pushing the server image to ${ref} failed: ${errorMessage(err)}`, { hint: `the registry ${registryHostOf(deploy.imageRepository)} takes user cli with an API token that may deploy to Deployment ${id}; retry the job (it reuses deploy ${deploy.id})` });
    });
    return r.digest;
  });
  // the local copy is not needed once pushed (a Runtime image is large); a failure here only leaves it behind
  if (!ctx.checkpoint.get('server.localRemoved')) {
    await ctx.infra.images.removeLocal(s.builder, built.image, opts).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not remove the local server image'));
    ctx.checkpoint.set('server.localRemoved', true);
  }

  await ctx.checkpoint.once('server.finalized', async () => {
    const current = await api.getDeploy(org, id, deploy.id, opts);
    if (current.status === 'DEPLOYED') return true; // finalized by a run that died before its checkpoint
    ctx.progress(`finalizing deploy ${deploy.id}`);
    await api.finalizeDeploy(org, id, deploy.id, finalizeBody(t.isDagDeployEnabled), opts).catch((err: Error) => {
      throw new StepFailure(`finalizing deploy ${deploy.id} of Deployment ${id} failed: ${errorMessage(err)}`, { hint: 'retry the job: it finalizes the same deploy without pushing again' });
    });
    return true;
  });

  const deadline = Date.now() + s.waitTimeoutSeconds * 1000;
  // a short first wait (a local or quick deploy), then backing off to every maxPollMs like the CLI's --wait
  let pollMs = 250;
  for (;;) {
    if (ctx.signal.aborted) throw new StepFailure('cancelled while waiting for the Deployment to be HEALTHY');
    const now = await api.getDeployTarget(org, id, opts);
    // the CLI's --wait also stops at HIBERNATING: a hibernating Deployment runs the new image when it wakes
    if (now.status === 'HEALTHY' || now.status === 'HIBERNATING') break;
    const d = await api.getDeploy(org, id, deploy.id, opts);
    if (d.status === 'FAILED') throw new StepFailure(`Astro reports deploy ${deploy.id} of ${ref} as FAILED`, { hint: 'see the Deployment in the Astro UI; fix the image and retry the job' });
    ctx.progress(`Deployment ${id} is ${now.status ?? 'in an unknown state'} after deploy ${deploy.id}; waiting for HEALTHY`);
    if (Date.now() > deadline) {
      throw new StepFailure(`Deployment ${id} is still ${now.status ?? 'not HEALTHY'} ${s.waitTimeoutSeconds}s after deploy ${deploy.id} (${ref})`, { hint: 'check the Deployment in the Astro UI; retry the job to wait again (the deploy is not repeated)', field: 'images.server.waitTimeoutSeconds' });
    }
    await sleep(pollMs, ctx.signal);
    pollMs = Math.min(pollMs * 2, maxPollMs);
  }
  const result: ServerDeployed = { deployId: deploy.id, image: ref, digest, runtime: built.runtime };
  ctx.checkpoint.set('server.done', result);
  return result;
}
