import { ConfigError } from '../config-error.ts';
/** `re-bot status <deployment>`: the stored state of the deployment's latest job — the facts `/re status` shows. */
import { statusReportOf, unknownDeploymentMessage, type StatusReport } from '../jobs/status.ts';
import { errorMessage } from '../redact.ts';
import { DbOpenError, openExistingStore, openStoreReadOnly, type Store } from '../store/db.ts';
import { sqliteRepository, type Repository } from '../store/repo.ts';
import { formatDuration } from './progress.ts';

const ICON: Record<string, string> = { pending: '·', running: '▶', waiting_approval: '⏸', prepared: '◇', succeeded: '✔', warned: '⚠', skipped: '–', failed: '✖', cancelled: '■' };

/** Exit codes of the DB-reading commands (same as `re-bot run`): 1 operation failed or refused, 2 usage/config error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  const j = r.job;
  out.push(`Deployment ${r.deployment}${j ? `: job ${j.id} ${j.state} (attempt ${j.attempt}), requested by ${j.requestedBy} at ${j.createdAt}` : ': no job yet'}`);
  if (j?.finishedAt) out.push(`  finished ${j.finishedAt}`);
  if (j?.error) out.push(`  error: ${j.error}`);
  out.push(`  chart ${r.chart ?? '—'} · Helm revision ${r.helmRevision ?? '—'} · client image ${r.clientImage ?? '—'}`);
  out.push(`  values hash ${r.valuesHash ?? '—'}`);
  if (r.agentToken) out.push(`  agent token ${r.agentToken.name} (${r.agentToken.id}): ${r.agentToken.expiry}${r.agentToken.warning ? `\n  WARNING: ${r.agentToken.warning}` : ''}`);
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

/**
 * Opens the existing DB (RE_BOT_DB, default ./data/re-bot.db) — read-only for `read`, never created —
 * runs `fn` with the store and the repository on it (the reads go through the repository), closes it. A DB that is missing or not re-bot's is a config error (exit 2); any other
 * error is reported in one line (exit 1). Never a stack trace.
 */
export async function withExistingDb(cmd: string, mode: 'read' | 'write', fn: (store: Store, repo: Repository) => number | Promise<number>): Promise<number> {
  let store: Store;
  try {
    store = mode === 'read' ? openStoreReadOnly() : openExistingStore();
  } catch (err) {
    process.stderr.write(`re-bot ${cmd}: ${errorMessage(err)}\n`);
    return err instanceof DbOpenError || err instanceof ConfigError ? EXIT.usage : EXIT.failed;
  }
  try {
    return await fn(store, sqliteRepository(store));
  } catch (err) {
    process.stderr.write(`re-bot ${cmd}: ${errorMessage(err)}\n`);
    return EXIT.failed;
  } finally {
    store.close();
  }
}

export async function run(args: string[]): Promise<number> {
  const names = args.filter((a) => !a.startsWith('-'));
  const unknownOpt = args.find((a) => a.startsWith('-'));
  if (names.length !== 1 || unknownOpt) {
    process.stderr.write(`${unknownOpt ? `unknown option ${unknownOpt}\n` : names.length > 1 ? `one deployment at a time (got ${names.join(', ')})\n` : ''}usage: re-bot status <deployment>\n`);
    return EXIT.usage;
  }
  const name = names[0];
  return withExistingDb('status', 'read', async (store, repo) => {
    const r = await statusReportOf(repo, name);
    if (!r) {
      // an unknown name is a usage error, like an unknown command
      process.stderr.write(`re-bot status: ${await unknownDeploymentMessage(repo, name, store.path)}\n`);
      return EXIT.usage;
    }
    process.stdout.write(`Database ${store.path}\n${formatStatus(r)}\n`);
    return EXIT.ok;
  });
}
