/**
 * `re-bot retry <deployment|job-id>`: a new attempt of a failed or cancelled job from its first unfinished
 * step — the engine call `/re retry` makes in Slack. The job is queued; a running `re-bot start` (its worker)
 * runs it, or `re-bot run <spec.yaml>` with the same spec resumes it in this terminal.
 */
import { DeploymentLockedError, type JobView } from '../jobs/types.ts';
import { localActor } from './run.ts';
import { commandEngine, withJobRef } from './cancel.ts';
import { EXIT } from './status.ts';

const DONE = ['succeeded', 'warned', 'skipped'];

export function notRetryable(j: JobView): string {
  const label = `job ${j.id} (deployment ${j.deployment})`;
  if (j.state === 'succeeded') return `nothing to retry: ${label} already succeeded${j.finishedAt ? ` at ${j.finishedAt}` : ''}. To change the setup, run \`re-bot run <spec.yaml>\` with the new spec.`;
  return `${label} is ${j.state.replace(/_/g, ' ')}: only failed or cancelled jobs can be retried. Wait for it, or cancel it first with \`re-bot cancel ${j.deployment}\`.`;
}

export async function run(args: string[]): Promise<number> {
  return withJobRef('retry', args, async (_store, job, repo) => {
    if (job.state !== 'failed' && job.state !== 'cancelled') {
      process.stderr.write(`re-bot retry: ${notRetryable(job)}\n`);
      return EXIT.failed;
    }
    const actor = localActor();
    let v: JobView;
    try {
      v = await commandEngine(repo).retry(job.id, { id: actor });
    } catch (err) {
      if (err instanceof DeploymentLockedError) {
        process.stderr.write(`re-bot retry: ${err.message}\n`);
        return EXIT.failed;
      }
      throw err;
    }
    const next = v.steps.find((s) => !DONE.includes(s.state));
    const out = [`queued ${v.id} (deployment ${v.deployment}) for attempt ${v.attempt} as ${actor}${next ? `; it resumes at step ${next.number}. ${next.title}` : ''}.`];
    out.push(v.origin.kind === 'slack'
      ? 'The Slack bot (`re-bot start`) runs it and posts progress in the job\'s thread.'
      : 'A running `re-bot start` runs it; or run `re-bot run <spec.yaml>` with the same spec to resume it in this terminal.');
    out.push(`Deployment ${v.deployment} is locked by this job until it finishes; \`re-bot cancel ${v.deployment}\` releases it.`);
    process.stdout.write(out.join('\n') + '\n');
    return EXIT.ok;
  });
}
