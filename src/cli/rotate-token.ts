/** `re-bot rotate-token <spec.yaml> [--yes]`: the rotate-token job (src/spec/rotate-plan.ts) with live progress, one approval. */
import { errorMessage } from '../redact.ts';
import { loadSpecFile } from '../spec/load.ts';
import { ROTATE_TOKEN } from '../spec/rotate-plan.ts';
import { defaultDbPath } from '../store/db.ts';
import { defaultLogFile, runSetupJob } from './run.ts';
import { refuseUnsafeSpec } from './spec-policy.ts';
import { EXIT } from './status.ts';

const USAGE = 'usage: re-bot rotate-token <spec.yaml> [--yes]';

export async function run(args: string[]): Promise<number> {
  const yes = args.includes('--yes') || args.includes('-y');
  const unknown = args.find((a) => a.startsWith('-') && a !== '--yes' && a !== '-y');
  const files = args.filter((a) => !a.startsWith('-'));
  if (unknown || files.length !== 1) {
    process.stderr.write(`${unknown ? `unknown option ${unknown}` : files.length ? `unexpected argument ${files[1]}` : 'missing spec file'}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const loaded = await loadSpecFile(files[0]);
  if (!loaded.ok) {
    process.stderr.write(`${files[0]}: ${loaded.errors.length} problem(s)\n`);
    for (const e of loaded.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
    return EXIT.usage;
  }
  if (refuseUnsafeSpec(files[0], loaded.spec)) return EXIT.usage;
  if (!('create' in loaded.spec.agent.token)) {
    process.stderr.write(`${files[0]}: agent.token is a secret reference (a pasted token); re-bot rotates only tokens it creates: set agent.token: { create: { expiresInDays: 90 } } and run the setup once\n`);
    return EXIT.usage;
  }
  try {
    const r = await runSetupJob({ spec: loaded.spec, yes, kind: ROTATE_TOKEN, logFile: defaultLogFile(defaultDbPath()) });
    return r.exitCode;
  } catch (err) {
    process.stderr.write(`re-bot rotate-token: ${errorMessage(err)}\n`);
    return EXIT.failed;
  }
}
