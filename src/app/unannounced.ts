/**
 * An approval requested just before its worker was killed (kill -9, a pod gone) may have no Slack message: the
 * request is committed with the job's state, but the event that renders its message died with the process, and
 * nothing would ever ask for it again (the job waits until the approval expires). A starting worker, and every
 * `everyMs` after, announces each pending approval whose message is not in the outbox by relaying its
 * `approval.requested` event to the progress renderer. The outbox key makes a second post of it a no-op.
 */
import type { LocalJobEngine } from '../jobs/engine.ts';
import type { Repository } from '../store/repo.ts';
import { approvalKey } from '../slack/progress.ts';

/** returns how many approvals it announced */
export async function announceUnannounced(repo: Repository, engine: LocalJobEngine, has: (key: string) => Promise<boolean>): Promise<number> {
  let n = 0;
  for (const name of await repo.deployments.names()) {
    const row = await repo.jobs.activeFor(name);
    if (row?.state !== 'waiting_approval') continue;
    const job = await engine.job(row.id);
    if (!job || job.origin.kind !== 'slack') continue;
    for (const approval of job.approvals) {
      if (approval.state !== 'pending' || (await has(approvalKey(job.id, approval.id)))) continue;
      engine.relay({ type: 'approval.requested', job, approval });
      n++;
    }
  }
  return n;
}
