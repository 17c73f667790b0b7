/** `re-bot status <deployment>`: the stored state of the deployment's latest job — the facts `/re status` shows. */
import { resolve } from 'node:path';
import { closestDeployments, statusReport, type StatusReport } from '../jobs/status.ts';
import { defaultDbPath, openStore } from '../store/db.ts';
import { formatDuration } from './progress.ts';

const ICON: Record<string, string> = { pending: '·', running: '▶', waiting_approval: '⏸', prepared: '◇', succeeded: '✔', warned: '⚠', skipped: '–', failed: '✖', cancelled: '■' };

export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  const j = r.job;
  out.push(`Deployment ${r.deployment}${j ? `: job ${j.id} ${j.state} (attempt ${j.attempt}), requested by ${j.requestedBy} at ${j.createdAt}` : ': no job yet'}`);
  if (j?.finishedAt) out.push(`  finished ${j.finishedAt}`);
  if (j?.error) out.push(`  error: ${j.error}`);
  out.push(`  chart ${r.chart ?? '—'} · Helm revision ${r.helmRevision ?? '—'} · client image ${r.clientImage ?? '—'}`);
  out.push(`  values hash ${r.valuesHash ?? '—'}`);
  for (const a of r.approvals) {
    const who = a.approvedBy.length ? ` by ${a.approvedBy.join(', ')}` : '';
    out.push(`  approval "${a.title}": ${a.state}${who}${a.rejectedBy ? ` (rejected by ${a.rejectedBy})` : ''} [${a.hash.slice(0, 12)}]`);
  }
  out.push(r.lock ? `  lock: held by job ${r.lock.jobId} (${r.lock.state}, requested by ${r.lock.requestedBy}, since ${r.lock.since})` : '  lock: free');
  for (const s of r.steps) {
    const dur = s.durationMs !== undefined ? ` (${formatDuration(s.durationMs)})` : '';
    out.push(`  ${ICON[s.state] ?? '?'} ${s.number}. ${s.title.padEnd(34)} ${s.state}${dur}${s.summary ? `  ${s.summary}` : ''}`);
  }
  return out.join('\n');
}

export async function run(args: string[]): Promise<number> {
  const name = args.find((a) => !a.startsWith('-'));
  if (!name) {
    process.stderr.write('usage: re-bot status <deployment>\n');
    return 2;
  }
  const store = openStore({ path: resolve(defaultDbPath()) });
  try {
    const r = statusReport(store, name);
    if (!r) {
      const near = closestDeployments(store, name);
      process.stderr.write(`unknown deployment "${name}".${near.length ? ` Closest known: ${near.join(', ')}` : ' No deployments are recorded in this database.'}\n`);
      return 1;
    }
    process.stdout.write(formatStatus(r) + '\n');
    return 0;
  } finally {
    store.close();
  }
}
