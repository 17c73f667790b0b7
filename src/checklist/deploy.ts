import type { StepContext, StepHandler, StepOutcome } from './types.ts';
import { StepFailure } from './types.ts';
import type { PodState } from '../infra/types.ts';
import { renderValues, valuesHash, type Values } from '../spec/values.ts';
import { redact } from '../redact.ts';
import { applyRelease, approvalHash, chartRefOf, expectedComponents, planRelease, sleep, waitForAgentPods } from './release.ts';
import { contextDigest } from './build-context.ts';
import { reviewOf, valuesDiff } from './review.ts';
import { errorMessage } from '../redact.ts';
import { deployServerImage, planServerImage } from './server-image.ts';

/** What the step 7 approval covered: the build (context digest, Dockerfile, destination) and the roll. */
interface ApprovedBuild {
  hash: string;
  approvedBy: string[];
  context: string;
  tag: string;
}

type ClientImage = NonNullable<StepContext['spec']['images']['client']>;

interface PushedImage {
  repository: string;
  tag: string;
  digest: string;
  /** false when the tag was already in the registry and re-bot did not build it */
  built: boolean;
}

/** `deploy-<UTC YYYY-MM-DDTHH-MM>`, the tag `astro remote deploy` uses. */
export function deployTag(now: Date): string {
  return `deploy-${now.toISOString().slice(0, 16).replace(':', '-')}`;
}

/** Sets every agent image key present in the values (top level, workers[], dagProcessor, triggerer); Sentinel and the logging sidecar keep theirs. */
export function withClientImage(values: Values, ref: string): Values {
  const out = structuredClone(values) as Values & { workers?: Array<Record<string, unknown>> };
  out.image = ref;
  for (const w of out.workers ?? []) if ('image' in w) w.image = ref;
  for (const k of ['dagProcessor', 'triggerer']) {
    const c = out[k] as Record<string, unknown> | undefined;
    if (c && 'image' in c) c.image = ref;
  }
  return out;
}

/** Step 7: deploy the server image (server-image.ts), build and push the client image, then roll the agents onto it; one approval covers all of it. */
export const deploy: StepHandler = {
  id: 'deploy',
  async run(ctx): Promise<StepOutcome> {
    const { spec } = ctx;
    const c = spec.images.client;
    const warnings: string[] = [];
    const serverOn = !!spec.images.server?.deploy;
    // plan for the server image (reads only), unless an earlier run of this step already had it approved
    const serverPlan = serverOn && !ctx.checkpoint.get('server.approved') ? await planServerImage(ctx) : undefined;

    let clientSkip: string | undefined;
    let tag = '';
    if (!c) clientSkip = `images.client is not set: the agents keep running ${spec.agent.image}`;
    else if (!c.push) {
      // the image adapter builds and pushes in one call; building without pushing would leave nothing the agents can use
      warnings.push('images.client.push is false: the agents can only run an image pushed to a registry the cluster pulls from, so nothing was built or rolled');
      clientSkip = `images.client.push is false: ${c.repository} not built, the agents keep running ${spec.agent.image}`;
    } else {
      tag = await ctx.checkpoint.once('tag', () => c.tag ?? deployTag(new Date()));
      if (!ctx.checkpoint.get('roll.approved')) {
        const builder = await ctx.infra.images.available(c.builder);
        if (!builder.ok) clientSkip = `${c.builder} is not available on the re-bot host (${builder.reason ?? 'not found'}): ${c.repository}:${tag} not built, the agents keep running ${spec.agent.image}`;
      }
    }

    if (clientSkip || !c) {
      if (!serverOn) return { status: 'skipped', summary: clientSkip ?? '', warnings };
      if (serverPlan) {
        // the server image alone: its own approval
        const hash = approvalHash('server-image', { path: spec.deployment.id }, '', [...serverPlan.lines, serverPlan.contextDigest]);
        const grant = await ctx.requireApproval({
          title: `deploy the server image to Astro Deployment ${spec.deployment.id}`,
          hash,
          diffText: serverPlan.lines.join('\n'),
          changedKeys: [],
          facts: serverPlan.facts,
        });
        ctx.checkpoint.set('server.approved', { hash: grant.hash, approvedBy: grant.approvedBy, context: serverPlan.contextDigest });
      }
      const server = await deployServerImage(ctx, ctx.checkpoint.get<{ context: string }>('server.approved')!.context);
      if (clientSkip && c?.push) warnings.push(clientSkip); // the builder is missing: the client image was wanted
      return {
        status: warnings.length ? 'warned' : 'succeeded',
        summary: `deployed the server image ${server.image} (deploy ${server.deployId}, Runtime ${server.runtime}); ${clientSkip ?? ''}`.replace(/; $/, ''),
        warnings,
        output: { server },
      };
    }

    let approved = ctx.checkpoint.get<ApprovedBuild>('roll.approved');
    if (!approved) {
      // plan: nothing is built, pushed or looked up in the registry before the approval
      const context = readContext(c);
      const placeholder = `${c.repository}:${tag}`;
      const planValues = withClientImage(renderValues(spec, { clientImage: placeholder }), placeholder);
      const rel = await planRelease(ctx, { key: 'roll', values: planValues, valuesHash: valuesHash(planValues, spec.cluster.chart) });
      const lines = [
        ...(serverPlan?.lines ?? []),
        `build ${c.contextDir}/${c.dockerfile} with ${c.builder}${c.platform ? ` for ${c.platform}` : ''} (context sha256:${context.digest.slice(0, 16)}, ${context.files} files; Dockerfile sha256:${context.dockerfileDigest.slice(0, 16)})`,
        `push ${c.repository}:${tag}${c.insecureRegistry ? ' (TLS verification off)' : ''}`,
        ...rel.lines,
        `the agents run ${c.repository}@<digest of the pushed image> (pinned by digest)`,
      ];
      const hash = approvalHash(valuesHash(planValues, spec.cluster.chart), chartRefOf(spec.cluster.chart), rel.diffText, [...lines, context.digest, ...(serverPlan ? [serverPlan.contextDigest] : [])]);
      const review = reviewOf(spec, rel, false, [], valuesDiff(await ctx.infra.helm.getValues(spec.cluster.release, spec.cluster.namespace, { signal: ctx.signal }).catch(() => undefined), planValues), []);
      const grant = await ctx.requireApproval({
        title: `${serverPlan ? `deploy the server image to Astro Deployment ${spec.deployment.id}, ` : ''}build and push ${c.repository}:${tag}, then helm upgrade ${spec.cluster.release}: roll the agents onto it`,
        hash,
        diffText: [...lines, '', `helm diff (${rel.chartLabel}; the image is pinned to the pushed digest):`, rel.diffText].join('\n'),
        changedKeys: rel.changedKeys,
        review: {
          ...review,
          image: { build: `${c.contextDir}/${c.dockerfile} with ${c.builder}${c.platform ? ` for ${c.platform}` : ''}`, push: `${c.repository}:${tag}`, previous: spec.agent.image },
          ...(serverPlan ? { server: serverPlan.review } : {}),
          tokenUrls: [...review.tokenUrls, ...(serverPlan?.tokenUrls ?? [])],
        },
        facts: {
          ...(serverPlan?.facts ?? {}),
          image: `${c.repository}:${tag}`,
          build: `${c.contextDir}/${c.dockerfile} (context sha256:${context.digest.slice(0, 12)})`,
          'previous image': spec.agent.image,
          chart: rel.chartLabel,
          release: `${spec.cluster.release} in ${spec.cluster.namespace}`,
          namespace: spec.cluster.namespace,
        },
      });
      approved = { hash: grant.hash, approvedBy: grant.approvedBy, context: context.digest, tag };
      if (serverPlan) ctx.checkpoint.set('server.approved', { hash: grant.hash, approvedBy: grant.approvedBy, context: serverPlan.contextDigest });
      ctx.checkpoint.set('roll.approved', approved);
    }

    // the server image first, as `astro deploy` comes before the client images: its runtime check fails before any push
    const server = serverOn ? await deployServerImage(ctx, ctx.checkpoint.get<{ context: string }>('server.approved')!.context) : undefined;

    const image = await ensurePushed(ctx, c, tag, warnings, approved.context);

    const ref = `${image.repository}@${image.digest}`;
    const values = withClientImage(renderValues(spec, { clientImage: ref }), ref);
    const hash = valuesHash(values, spec.cluster.chart);
    const before = await ctx.checkpoint.once('podsBefore', async () =>
      (await ctx.infra.kube.listPods(spec.cluster.namespace, undefined, { signal: ctx.signal })).map(generation));

    const result = await applyRelease(ctx, { key: 'roll', values, valuesHash: hash }, approved);

    const timeoutMs = spec.agent.readyTimeoutSeconds * 1000;
    if (result.changed) {
      ctx.progress(`waiting for agent pods on ${image.repository}:${image.tag}`);
      await waitForNewPods(ctx, new Set(before), ref, timeoutMs);
    }
    const pods = await waitForAgentPods(ctx, timeoutMs);

    const short = image.digest.replace(/^sha256:/, '').slice(0, 12);
    const what = image.built ? 'pushed' : 'reused';
    const rolled = result.changed ? 'agents on the new image' : 'already running this image';
    return {
      status: warnings.length ? 'warned' : 'succeeded',
      summary: `${server ? `deployed the server image ${server.image} (deploy ${server.deployId}); ` : ''}${what} ${image.repository}:${image.tag} (${short}); ${spec.cluster.release} revision ${result.revision}, ${rolled}`,
      warnings,
      output: {
        ...(server ? { server } : {}),
        image: ref,
        repository: image.repository,
        tag: image.tag,
        digest: image.digest,
        built: image.built,
        helmRevision: result.revision,
        valuesHash: hash,
        approvalHash: result.approvalHash,
        approvedBy: result.approvedBy,
        pods: pods.components,
      },
    };
  },
};

function readContext(c: ClientImage) {
  try {
    return contextDigest(c.contextDir, c.dockerfile);
  } catch (err) {
    throw new StepFailure(`cannot read the build context: ${errorMessage(err)}`, { field: 'images.client.contextDir' });
  }
}

/** The pushed image for this job, after the approval: from the checkpoint, from the registry when the tag already exists, or built now. */
async function ensurePushed(ctx: StepContext, c: ClientImage, tag: string, warnings: string[], approvedContext: string): Promise<PushedImage> {
  const done = ctx.checkpoint.get<PushedImage>('image');
  if (done) return done;
  const tlsVerify = !c.insecureRegistry;
  const opts = { signal: ctx.signal };

  ctx.progress(`looking for ${c.repository}:${tag} in the registry`);
  const existing = await ctx.infra.images.remoteDigest(c.repository, tag, { ...opts, tlsVerify }).catch((err: Error) => {
    // an unreachable registry also fails the push below, with the push's own error
    ctx.log.warn({ err: err.message }, 'registry lookup failed; building');
    return null;
  });
  let image: PushedImage;
  if (existing) {
    // pushed by an earlier run of this step that crashed before its checkpoint — or by someone else
    if (!ctx.checkpoint.get('buildStarted')) {
      warnings.push(`${c.repository}:${tag} already existed in the registry, so re-bot did not rebuild it: the agents will run that existing image (use a new images.client.tag to deploy changed code)`);
    }
    image = { repository: c.repository, tag, digest: existing, built: !!ctx.checkpoint.get('buildStarted') };
  } else {
    if (!ctx.checkpoint.get('buildStarted') && readContext(c).digest !== approvedContext) {
      // the files changed between the approval and the build: what would be built is not what was approved
      ctx.checkpoint.set('roll.approved', undefined);
      throw new StepFailure(`the build context ${c.contextDir} changed after the approval; retry the job to plan and approve the new build`, { field: 'images.client.contextDir' });
    }
    ctx.checkpoint.set('buildStarted', true);
    ctx.progress(`building ${c.contextDir}/${c.dockerfile} with ${c.builder} and pushing ${c.repository}:${tag}`);
    const r = await ctx.infra.images.buildAndPush(
      { builder: c.builder, contextDir: c.contextDir, dockerfile: c.dockerfile, repository: c.repository, tag, tlsVerify, platform: c.platform },
      opts,
    );
    image = { repository: c.repository, tag, digest: r.digest, built: true };
  }
  ctx.checkpoint.set('image', image);
  return image;
}

/** A pod's ReplicaSet generation; a changed pod template gets a new pod-template-hash. */
function generation(p: PodState): string {
  return p.labels['pod-template-hash'] ?? p.name;
}

/**
 * waitForAgentPods counts any Ready pod, including the old ones a rolling update keeps until the new ones
 * are Ready; this waits until every component has a Ready pod of a generation that was not there before.
 */
async function waitForNewPods(ctx: StepContext, before: Set<string>, ref: string, timeoutMs: number, pollMs = 1000): Promise<void> {
  const ns = ctx.spec.cluster.namespace;
  // Sentinel keeps its own image and does not roll
  const sentinel = `${ctx.spec.cluster.resourceNamePrefix}-sentinel`;
  const components = expectedComponents(ctx.spec).filter((c) => c !== sentinel).sort((a, b) => b.length - a.length);
  const componentOf = (p: PodState) => components.find((c) => p.name.startsWith(`${c}-`));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ctx.signal.aborted) throw new StepFailure('cancelled while waiting for the agents to roll');
    const fresh = (await ctx.infra.kube.listPods(ns, undefined, { signal: ctx.signal })).filter((p) => !before.has(generation(p)) && componentOf(p));
    for (const p of fresh) {
      if (p.waitingReason && /ImagePullBackOff|InvalidImageName/.test(p.waitingReason)) {
        throw new StepFailure(`${componentOf(p)}: pod ${p.name} cannot pull ${ref} (${p.waitingReason}${p.message ? `: ${p.message}` : ''})`, {
          hint: `the cluster's nodes need pull access to ${ref.split('/')[0]}; the chart's imagePullSecretName only covers images.astronomer.cloud`,
        });
      }
      if (p.waitingReason === 'CrashLoopBackOff' && p.restarts >= 3) {
        const tail = await ctx.infra.kube.podLogTail(ns, p.name, 20, { signal: ctx.signal }).catch((e: Error) => `(log unavailable: ${e.message})`);
        throw new StepFailure(`${componentOf(p)}: pod ${p.name} on the new image is in CrashLoopBackOff, ${p.restarts} restart(s)`, { logTail: redact(tail) });
      }
    }
    const waiting = components.filter((c) => !fresh.some((p) => p.ready && componentOf(p) === c));
    ctx.progress(`agents on the new image: ${components.length - waiting.length}/${components.length}`);
    if (!waiting.length) return;
    if (Date.now() > deadline) throw new StepFailure(`after ${Math.round(timeoutMs / 1000)}s ${waiting.join(', ')} still run the previous image (no Ready pod of the new revision)`);
    await sleep(pollMs, ctx.signal);
  }
}
