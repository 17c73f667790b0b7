/** `re-bot history <deployment> [--limit N]`: the deployment's jobs, newest first, with their approval decisions. Read-only. */
import { deploymentExists, jobHistory, unknownDeploymentMessage } from '../jobs/status.ts';
import type { JobView } from '../jobs/types.ts';
import { EXIT, withExistingDb } from './status.ts';

const USAGE = 'usage: re-bot history <deployment> [--limit N]';

/** First line of an error, clipped: history is one screen, `re-bot status` shows the rest. */
function oneLine(text: string, max = 160): string {
  const first = text.split('\n')[0].trim();
  return first.length > max ? `${first.slice(0, max - 1)}…` : first;
}

export function formatJob(j: JobView): string[] {
  const out = [`${j.id}  ${j.state}  attempt ${j.attempt}  requested by ${j.requestedBy}  created ${j.createdAt}${j.finishedAt ? `  finished ${j.finishedAt}` : ''}`];
  if (j.error) out.push(`    error: ${oneLine(j.error)}`);
  for (const a of j.approvals) {
    const votes = a.approvals.map((v) => `${v.user} at ${v.at}`);
    const detail = a.state === 'rejected' ? ` by ${a.rejectedBy ?? '?'}`
      : a.state === 'pending' ? ` (${a.approvals.length}/${a.required} approval(s), expires ${a.expiresAt})`
      : a.state === 'expired' ? ` at ${a.expiresAt}`
      : votes.length ? ` by ${votes.join(', ')}` : '';
    out.push(`    approval "${oneLine(a.title, 100)}": ${a.state}${detail} [${a.hash.slice(0, 12)}]`);
  }
  return out;
}

function parseArgs(args: string[]): { name?: string; limit: number; error?: string } {
  let name: string | undefined;
  let limit = 20;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--limit' || a === '-n') {
      limit = Number(args[++i]);
      if (!Number.isInteger(limit) || limit < 1) return { limit, error: `${a} needs a positive whole number` };
    } else if (a.startsWith('-')) return { limit, error: `unknown option ${a}` };
    else if (!name) name = a;
    else return { limit, error: `unexpected argument ${a}` };
  }
  if (!name) return { limit, error: 'missing deployment name' };
  return { name, limit };
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args);
  if (p.error) {
    process.stderr.write(`${p.error}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const name = p.name!;
  return withExistingDb('history', 'read', async (store, repo) => {
    const h = await jobHistory(repo, name, p.limit);
    if (!h.total && !(await deploymentExists(repo, name))) {
      process.stderr.write(`re-bot history: ${await unknownDeploymentMessage(repo, name, store.path)}\n`);
      return EXIT.usage;
    }
    const out = [`Database ${store.path}`];
    out.push(h.total ? `Deployment ${name}: ${h.total} job(s), newest first${h.total > h.jobs.length ? ` (showing ${h.jobs.length}; --limit ${h.total} for all)` : ''}` : `Deployment ${name}: no jobs yet`);
    for (const j of h.jobs) out.push(...formatJob(j).map((l) => `  ${l}`));
    process.stdout.write(out.join('\n') + '\n');
    return EXIT.ok;
  });
}
