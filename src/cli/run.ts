/**
 * `re-bot run <spec.yaml> [--yes]`: the setup job with terminal progress. Resumes the deployment's
 * unfinished job when there is one (after a kill -9, a restart); asks for approval at each Helm upgrade
 * (interactive prompt, or `--yes`, which approves as the local user and says so in the audit log).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { ConfigError } from '../config-error.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from '../app/wire.ts';
import type { ApprovalView, JobView } from '../jobs/types.ts';
import { ACTIVE_STATES } from '../jobs/views.ts';
import { logToFile } from '../log.ts';
import { errorMessage, redact } from '../redact.ts';
import { loadSpecFile } from '../spec/load.ts';
import { refuseUnsafeSpec } from './spec-policy.ts';
import { buildPlan } from '../spec/plan.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { renderValues, valuesYaml } from '../spec/values.ts';
import { defaultDbPath } from '../store/db.ts';
import { displayPath } from './paths.ts';
import { checklistText, createProgressPrinter } from './progress.ts';
import { formatStatus } from './status.ts';

const USAGE = 'usage: re-bot run <spec.yaml> [--yes] [--out DIR]';

export const EXIT = { ok: 0, failed: 1, usage: 2, waitingApproval: 3, interrupted: 130 } as const;

export interface RunSetupOptions extends Omit<RuntimeOptions, 'dbPath'> {
  spec: SetupSpec;
  dbPath?: string;
  /** approve every request as the local user */
  yes?: boolean;
  /** where values.yaml is written (no secret values are in it) */
  outDir?: string;
  out?: NodeJS.WriteStream;
  /** interactive approval prompt; default: readline on stdin when it is a TTY */
  ask?: (question: string) => Promise<string>;
  /** write the JSON log lines to this file instead of stderr, and name it in the summary (CLI run, demo) */
  logFile?: string;
  /** called once the runtime exists (the demo reads the DB path, tests kill at chosen moments) */
  onRuntime?: (rt: Runtime, jobId: string) => void;
  /** the job kind (default setup), e.g. rotate-token */
  kind?: string;
}

export interface RunSetupResult {
  exitCode: number;
  job?: JobView;
  valuesFile?: string;
  dbPath: string;
  logFile?: string;
}

/** The CLI's log file: beside the database, so `re-bot status` and the log are found together. */
export function defaultLogFile(dbPath: string): string {
  return join(dirname(resolve(dbPath)), 're-bot.log');
}

export function localActor(): string {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    name = process.env.USER ?? 'unknown';
  }
  return `cli:${name}`;
}

/** Runs (or resumes) the setup job for `spec` until it succeeds, fails, or waits for an approval nobody gives. */
export async function runSetupJob(o: RunSetupOptions): Promise<RunSetupResult> {
  const out = o.out ?? process.stdout;
  const say = (line: string) => out.write(line + '\n');
  const dbPath = resolve(o.dbPath ?? defaultDbPath());
  const actor = localActor();
  const logFile = o.logFile ? resolve(o.logFile) : undefined;
  const restoreLogger = logFile ? logToFile(logFile) : undefined;
  let rt: Runtime;
  try {
    rt = await createRuntime({
    ...o,
    dbPath,
      // A local run is approved at this terminal by the person who started it.
      policy: { approvers: [], required: 1, allowSelfApproval: true, ...o.policy },
    });
  } catch (err) {
    restoreLogger?.();
    throw err;
  }
  const printer = createProgressPrinter(out);
  const off = rt.engine.on((e) => printer.onEvent(e));
  let jobId: string | undefined;
  let interrupted = false;
  const onSigint = () => {
    if (!jobId || interrupted) return;
    interrupted = true;
    say('\ninterrupted: cancelling the job (a running helm or buildah is stopped)…');
    void rt.engine.cancel(jobId, { id: actor });
  };
  process.on('SIGINT', onSigint);
  try {
    const outDir = resolve(o.outDir ?? join('out', o.spec.deployment.name));
    await mkdir(outDir, { recursive: true });
    const valuesFile = join(outDir, 'values.yaml');
    await writeFile(valuesFile, valuesYaml(renderValues(o.spec)), { mode: 0o644 });

    const job = await resumeOrSubmit(rt, o.spec, actor, say, o.kind);
    jobId = job.id;
    o.onRuntime?.(rt, job.id);
    rt.engine.start();
    for (;;) {
      const v = await rt.engine.settled(job.id);
      if (v.state !== 'waiting_approval') {
        printer.close();
        say('');
        say(checklistText(v));
        say('');
        say(formatStatus((await rt.status(v.deployment))!));
        if (logFile) say(`log: ${displayPath(logFile)}`);
        const code = v.state === 'succeeded' ? EXIT.ok : interrupted ? EXIT.interrupted : EXIT.failed;
        return { exitCode: code, job: v, valuesFile, dbPath, logFile };
      }
      const pending = v.approvals.find((a) => a.state === 'pending');
      if (!pending) {
        // decided in another process (Slack) a moment ago: wait for the engine to pick it up
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const decision = await askApproval(pending, o, say);
      if (decision === 'later') {
        say(`job ${v.id} is waiting for approval ${pending.id}; run this command again (or with --yes) to decide.`);
        if (logFile) say(`log: ${displayPath(logFile)}`);
        return { exitCode: EXIT.waitingApproval, job: v, valuesFile, dbPath, logFile };
      }
      const r = await rt.engine.decide(pending.id, { by: { id: actor, display: o.yes ? `${actor} (--yes)` : actor }, decision, hash: pending.hash });
      if (!r.ok) say(`approval not recorded: ${r.message}`);
    }
  } finally {
    process.off('SIGINT', onSigint);
    off();
    printer.close();
    await rt.close();
    restoreLogger?.();
  }
}

/** The deployment's unfinished job with the same spec is resumed; one with another spec holds the lock. */
async function resumeOrSubmit(rt: Runtime, spec: SetupSpec, actor: string, say: (l: string) => void, kind?: string): Promise<JobView> {
  const latest = await rt.engine.latestJobFor(spec.deployment.name);
  if (latest && ACTIVE_STATES.includes(latest.state)) {
    const stored = await rt.repo.jobs.get(latest.id);
    if (JSON.stringify(stored?.spec) === JSON.stringify(spec) && ((stored?.plan as { kind?: string } | undefined)?.kind ?? 'setup') === (kind ?? 'setup')) {
      say(`resuming job ${latest.id} (${latest.state}, attempt ${latest.attempt}) for ${spec.deployment.name}`);
      return latest;
    }
  }
  // submit() refuses with the lock holder when another job is active
  const plan = buildPlan(spec);
  say(`deployment ${spec.deployment.name}: release ${plan.release} in ${plan.namespace}, chart ${plan.chart}`);
  return rt.engine.submit({ spec, requestedBy: { id: actor }, origin: { kind: 'cli' }, ...(kind ? { kind } : {}) });
}

async function askApproval(a: ApprovalView, o: RunSetupOptions, say: (l: string) => void): Promise<'approve' | 'reject' | 'later'> {
  const diff = redact(a.diffText).split('\n');
  say(`    diff (Secret data masked):`);
  for (const line of diff.slice(0, 40)) say(`    │ ${line}`);
  if (diff.length > 40) say(`    │ … ${diff.length - 40} more line(s)`);
  if (o.yes) {
    say(`    auto-approving as ${localActor()} (--yes; the audit log records it)`);
    return 'approve';
  }
  const ask = o.ask ?? (process.stdin.isTTY ? promptTty : undefined);
  if (!ask) return 'later';
  const answer = (await ask('Approve this Helm upgrade? [y/N] ')).trim().toLowerCase();
  return answer === 'y' || answer === 'yes' ? 'approve' : 'reject';
}

async function promptTty(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

function parseArgs(args: string[]): { file?: string; yes: boolean; out?: string; error?: string } {
  let file: string | undefined;
  let out: string | undefined;
  let yes = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--yes' || a === '-y') yes = true;
    else if (a === '--out') {
      out = args[++i];
      if (!out) return { yes, error: '--out needs a directory' };
    } else if (a.startsWith('-')) return { yes, error: `unknown option ${a}` };
    else if (!file) file = a;
    else return { yes, error: `unexpected argument ${a}` };
  }
  if (!file) return { yes, error: 'missing spec file' };
  return { file, yes, out };
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args);
  if (p.error) {
    process.stderr.write(`${p.error}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const loaded = await loadSpecFile(p.file!);
  if (!loaded.ok) {
    process.stderr.write(`${p.file}: ${loaded.errors.length} problem(s)\n`);
    for (const e of loaded.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
    return EXIT.usage;
  }
  if (refuseUnsafeSpec(p.file!, loaded.spec)) return EXIT.usage;
  try {
    // progress on the terminal, JSON log lines in a file beside the DB (named at the end)
    const r = await runSetupJob({ spec: loaded.spec, yes: p.yes, outDir: p.out, logFile: defaultLogFile(defaultDbPath()) });
    return r.exitCode;
  } catch (err) {
    if (err instanceof ConfigError) throw err; // the CLI prints it and exits 2, as for every setting
    process.stderr.write(`re-bot run: ${errorMessage(err)}\n`);
    return EXIT.failed;
  }
}
