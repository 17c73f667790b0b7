/** re-bot command line. Each command lives in its own file and is loaded only when used. */

import { ConfigError } from '../config-error.ts';
import { errorMessage } from '../redact.ts';

interface CommandInfo {
  usage: string;
  summary: string;
  load: () => Promise<{ run(args: string[]): Promise<number> }>;
  /** settings checked before the command starts; throws ConfigError (exit 2) */
  checkEnv?: () => Promise<void>;
}

/** `run` and `demo` approve at the terminal, but a malformed approval or key variable is still an error, not ignored. */
async function checkLocalRunEnv(): Promise<void> {
  (await import('../slack/config.ts')).approvalSettingsFromEnv(process.env);
  (await import('../store/crypto.ts')).secretKeyFromEnv(process.env);
}

const COMMANDS: Record<string, CommandInfo> = {
  plan: {
    usage: 're-bot plan <spec.yaml> [--out DIR]',
    summary: 'validate a setup spec, write values.yaml + plan.json, print the checklist plan',
    load: () => import('./plan.ts'),
  },
  run: {
    usage: 're-bot run <spec.yaml> [--yes] [--out DIR]',
    summary: 'run (or resume) the setup job with live progress in the terminal',
    load: () => import('./run.ts'),
    checkEnv: checkLocalRunEnv,
  },
  'rotate-token': { usage: 're-bot rotate-token <spec.yaml> [--yes]', summary: 'replace the agent token re-bot created with a new one (one approval; the old one is deleted last)', load: () => import('./rotate-token.ts'), checkEnv: checkLocalRunEnv },
  status: {
    usage: 're-bot status <deployment>',
    summary: 'show the stored state of the latest setup job of a deployment (reads the DB only)',
    load: () => import('./status.ts'),
  },
  history: {
    usage: 're-bot history <deployment> [--limit N]',
    summary: 'list the deployment\'s jobs, newest first, with their approval decisions (reads the DB only)',
    load: () => import('./history.ts'),
  },
  cancel: {
    usage: 're-bot cancel <deployment|job-id>',
    summary: 'cancel the deployment\'s active job (or the given job) and release its lock',
    load: () => import('./cancel.ts'),
  },
  retry: {
    usage: 're-bot retry <deployment|job-id>',
    summary: 'queue a new attempt of a failed or cancelled job, from its failed step',
    load: () => import('./retry.ts'),
  },
  doctor: {
    usage: 're-bot doctor [spec.yaml]',
    summary: 'check the tools and the cluster access a spec needs (helm, image builder, kubeconfig, API server)',
    load: () => import('./doctor.ts'),
  },
  demo: {
    usage: 're-bot demo',
    summary: 'run a complete setup of examples/demo.yaml against a local fake Kubernetes API',
    load: () => import('./demo.ts'),
    checkEnv: checkLocalRunEnv,
  },
  worker: {
    usage: 're-bot worker',
    summary: 'internal: runs the setup jobs of a `re-bot start` process (started by it)',
    load: () => import('./worker.ts'),
  },
  start: {
    usage: 're-bot start',
    summary: 'start the Slack bot (Socket Mode by default; RE_BOT_SLACK_MODE=http for HTTP)',
    load: () => import('./start.ts'),
  },
};

export function helpText(): string {
  const width = Math.max(...Object.values(COMMANDS).map((c) => c.usage.length));
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`);
  return [
    're-bot — sets up Astronomer Remote Execution agents (Airflow 3) in your Kubernetes cluster',
    '',
    'Usage:',
    ...lines,
    '',
    'A job id may be shortened to a unique prefix (at least 4 characters after job_).',
    'Exit codes: 0 ok, 1 failed/cancelled/refused, 2 usage/spec/config error (incl. unknown deployment), 3 waiting for approval, 130 interrupted.',
    'Environment: RE_BOT_DB (default ./data/re-bot.db), RE_BOT_HELM, LOG_LEVEL; see README.md.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(helpText() + '\n');
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`re-bot: unknown command "${name}"\n\n${helpText()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`Usage: ${cmd.usage}\n  ${cmd.summary}\n`);
    return 0;
  }
  try {
    await cmd.checkEnv?.();
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (err) {
    // configuration errors are the user's to fix: the message says how; no stack trace
    if (err instanceof ConfigError) {
      process.stderr.write(`re-bot ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`re-bot ${name}: ${errorMessage(err)}\n`);
    if (process.env.LOG_LEVEL === 'debug' && err instanceof Error && err.stack) process.stderr.write(`${errorMessage(err.stack)}\n`);
    return 1;
  }
}
