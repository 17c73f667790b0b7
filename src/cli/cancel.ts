/**
 * `re-bot cancel <deployment|job-id>`: cancels the deployment's active job (or the given job) and so
 * releases the deployment's lock — e.g. a job left waiting for approval by `re-bot run` without a TTY,
 * so that a changed spec can run. Same engine call and audit record as `/re cancel` in Slack.
 */
import { createJobEngine } from '../jobs/engine.ts';
import { isActive, resolveJobRef } from '../jobs/status.ts';
import type { JobView } from '../jobs/types.ts';
import type { Store } from '../store/db.ts';
import type { Repository } from '../store/repo.ts';
import { localActor } from './run.ts';
import { EXIT, withExistingDb } from './status.ts';

/** An engine for one cancel/retry: it never starts, so it never claims or runs a step in this process. */
export function commandEngine(repo: Repository) {
  return createJobEngine({
    repo,
    handlers: [],
    policy: { approvers: [], required: 1, allowSelfApproval: false, expiresInMs: 24 * 3600_000 },
    buildContext: () => { throw new Error('this process does not run steps'); },
  });
}

export function parseRef(cmd: string, args: string[]): { ref?: string; error?: string } {
  const opt = args.find((a) => a.startsWith('-'));
  const refs = args.filter((a) => !a.startsWith('-'));
  const usage = `usage: re-bot ${cmd} <deployment|job-id>`;
  if (opt) return { error: `unknown option ${opt}\n${usage}` };
  if (refs.length === 0) return { error: `missing deployment name or job id\n${usage}` };
  if (refs.length > 1) return { error: `one deployment or job at a time (got ${refs.join(', ')})\n${usage}` };
  return { ref: refs[0] };
}

/**
 * The shared frame of `cancel` and `retry`: parse the one argument, open the existing DB (never creating
 * it), resolve the deployment or job id, then hand the job to `fn`. Usage and unknown-ref errors exit 2.
 */
export async function withJobRef(cmd: string, args: string[], fn: (store: Store, job: JobView, repo: Repository) => number | Promise<number>): Promise<number> {
  const p = parseRef(cmd, args);
  if (p.error) {
    process.stderr.write(`${p.error}\n`);
    return EXIT.usage;
  }
  return withExistingDb(cmd, 'write', async (store, repo) => {
    const r = await resolveJobRef(repo, p.ref!, store.path);
    if (!r.ok) {
      process.stderr.write(`re-bot ${cmd}: ${r.message}\n`);
      return r.reason === 'no_jobs' ? EXIT.failed : EXIT.usage;
    }
    return fn(store, r.job, repo);
  });
}

const label = (j: JobView) => `job ${j.id} (deployment ${j.deployment})`;
const at = (t?: string) => (t ? ` at ${t}` : '');

export function nothingToCancel(j: JobView): string {
  switch (j.state) {
    case 'succeeded':
      return `nothing to cancel: ${label(j)} already succeeded${at(j.finishedAt)}; it holds no lock.`;
    case 'failed':
      return `nothing to cancel: ${label(j)} already failed${at(j.finishedAt)}; it holds no lock. \`re-bot retry ${j.deployment}\` runs it again from the failed step.`;
    default:
      return `nothing to cancel: ${label(j)} is already ${j.state}${j.error ? ` (${j.error}${at(j.finishedAt)})` : at(j.finishedAt)}; it holds no lock.`;
  }
}

export async function run(args: string[]): Promise<number> {
  return withJobRef('cancel', args, async (store, before, repo) => {
    if (!isActive(before.state)) {
      process.stderr.write(`re-bot cancel: ${nothingToCancel(before)}\n`);
      return EXIT.failed;
    }
    const actor = localActor();
    const after = await commandEngine(repo).cancel(before.id, { id: actor });
    if (after.state !== 'cancelled') {
      // it finished between our read and the cancel
      process.stderr.write(`re-bot cancel: ${nothingToCancel(after)}\n`);
      return EXIT.failed;
    }
    const out = [`cancelled ${label(after)} as ${actor}; it was ${before.state.replace(/_/g, ' ')} (attempt ${after.attempt}, requested by ${after.requestedBy}).`];
    if (before.state === 'running') out.push('The process running it stops its current step (a running helm or buildah is stopped).');
    const holder = await repo.jobs.activeFor(after.deployment);
    out.push(holder
      ? `Deployment ${after.deployment} is still locked by job ${holder.id} (${holder.state}).`
      : `Deployment ${after.deployment} is unlocked: \`re-bot run <spec.yaml>\` starts a new job; \`re-bot retry ${after.id}\` resumes this one.`);
    process.stdout.write(out.join('\n') + '\n');
    return EXIT.ok;
  });
}
