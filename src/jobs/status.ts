import { asc, eq } from 'drizzle-orm';
import type { Store } from '../store/db.ts';
import { deployments } from '../store/schema.ts';
import type { JobState } from './types.ts';
import { reportFromJob, type StatusReport } from './report.ts';

export { reportFromJob, type StatusReport } from './report.ts';
import { activeJobFor, jobView, latestJobId } from './views.ts';


/** Everything `/re status` and `re-bot status` show, read from the DB only. */
export function statusReport(store: Store, deploymentName: string): StatusReport | undefined {
  const id = latestJobId(store, deploymentName);
  const known = id ?? store.db.select({ name: deployments.name }).from(deployments).where(eq(deployments.name, deploymentName)).get();
  if (!known) return undefined;
  const v = id ? jobView(store, id) : undefined;
  const holder = activeJobFor(store, deploymentName);
  const lock = holder && { jobId: holder.id, requestedBy: holder.requestedBy, since: holder.startedAt ?? holder.createdAt, state: holder.state as JobState };
  return v ? { ...reportFromJob(v), lock } : { deployment: deploymentName, steps: [], approvals: [], lock };
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** Up to `limit` known deployment names closest to `name` (for "did you mean"). */
export function closestDeployments(store: Store, name: string, limit = 3): string[] {
  const names = store.db.select({ name: deployments.name }).from(deployments).orderBy(asc(deployments.name)).all().map((r) => r.name);
  return names.map((n) => ({ n, d: editDistance(name, n) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((x, y) => x.d - y.d || x.n.localeCompare(y.n)).slice(0, limit).map((x) => x.n);
}
