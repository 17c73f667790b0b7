/** re-bot command line. Each command lives in its own file and is loaded only when used. */

interface CommandInfo {
  usage: string;
  summary: string;
  load: () => Promise<{ run(args: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, CommandInfo> = {
  plan: {
    usage: 're-bot plan <spec.yaml> [--out DIR]',
    summary: 'validate a setup spec, write values.yaml + plan.json, print the checklist plan',
    load: () => import('./plan.ts'),
  },
  run: {
    usage: 're-bot run <spec.yaml> [--yes]',
    summary: 'run (or resume) the setup job with live progress in the terminal',
    load: () => import('./run.ts'),
  },
  status: {
    usage: 're-bot status <deployment>',
    summary: 'show the stored state of the latest setup job of a deployment',
    load: () => import('./status.ts'),
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
  const mod = await cmd.load();
  return mod.run(rest);
}
