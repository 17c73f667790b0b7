/**
 * `re-bot demo` (`npm run demo`): a complete setup of examples/demo.yaml with no Slack and no cluster.
 * Real helm, real SQLite, real buildah + docker-registry when installed; a fake Kubernetes API and local
 * stand-ins for the Astro and Airflow APIs, all on 127.0.0.1 and stopped at the end.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalSetup, type LocalSetup } from '../devkit/local-setup.ts';
import { errorMessage, registerSecret } from '../redact.ts';
import { loadSpecFile } from '../spec/load.ts';
import { exportAudit, openStore, verifyAuditChain } from '../store/index.ts';
import { displayPath } from './paths.ts';
import { runSetupJob } from './run.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DemoOptions {
  /** where the DB, values and audit log go; wiped at the start so a second run starts clean */
  workDir?: string;
  specPath?: string;
  out?: NodeJS.WriteStream;
}

/** Demo credentials: random per run, put only into this process's environment (the spec refers to them by name). */
function demoSecrets(): Record<string, string> {
  const r = () => randomBytes(12).toString('hex');
  return {
    RE_BOT_DEMO_API_TOKEN: `demo-api-token-${r()}`,
    RE_BOT_DEMO_AGENT_TOKEN: `demo-agent-token-${r()}`,
    RE_BOT_DEMO_GIT_USER: 'demo-bot',
    RE_BOT_DEMO_GIT_TOKEN: `demo-git-token-${r()}`,
  };
}

export async function runDemo(o: DemoOptions = {}): Promise<number> {
  const out = o.out ?? process.stdout;
  const say = (l = '') => out.write(l + '\n');
  const workDir = resolve(o.workDir ?? join(ROOT, '.demo'));
  await rm(workDir, { recursive: true, force: true });
  const specPath = o.specPath ?? join(ROOT, 'examples', 'demo.yaml');

  for (const [k, v] of Object.entries(demoSecrets())) {
    process.env[k] ??= v;
    registerSecret(process.env[k]);
  }
  const loaded = await loadSpecFile(specPath);
  if (!loaded.ok) {
    say(`${specPath}: ${loaded.errors.length} problem(s)`);
    for (const e of loaded.errors) say(`  ${e.path}: ${e.message}`);
    return 2;
  }
  const ref = loaded.spec.deployment.apiToken;
  const apiToken = 'env' in ref ? process.env[ref.env] ?? '' : '';

  say('re-bot demo — a complete Remote Execution setup against local stand-ins (no Slack, no cluster)');
  let local;
  try {
    local = await startLocalSetup(loaded.spec, {
      dir: workDir,
      root: ROOT,
      apiToken,
      // nodes set up as the checklist advises (singleProcessOOMKill: true); test/checklist/prerequisites.test.ts covers the advice
      kube: { nodes: [{ name: 'demo-node-1', singleProcessOOMKill: true }, { name: 'demo-node-2', singleProcessOOMKill: true }] },
    });
  } catch (err) {
    say(`demo failed while starting the local stand-ins: ${errorMessage(err)}`);
    return 1;
  }
  try {
    for (const n of local.notes) say(`  ${n}`);
    say('');
    const dbPath = join(workDir, 're-bot.db');
    // the terminal shows progress; JSON log lines (a registry lookup that failed, …) go to the log file
    const logFile = join(workDir, 're-bot.log');
    const r = await runSetupJob({ spec: local.spec, yes: true, dbPath, outDir: join(workDir, 'out'), out, pollMs: 100, logFile });
    const show = (p: string) => displayPath(p);
    await showServerDeploy(local, say);

    const store = openStore({ path: dbPath });
    const auditFile = join(workDir, 'audit.jsonl');
    try {
      await writeFile(auditFile, exportAudit(store).map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
      const chain = verifyAuditChain(store);
      say('');
      say(`Rendered values   ${show(r.valuesFile ?? '')}`);
      say(`Database          ${show(dbPath)}   (RE_BOT_DB=${show(dbPath)} npx re-bot status ${local.spec.deployment.name})`);
      say(`Audit log         ${show(auditFile)}   (${chain.ok ? `${chain.count} entries, hash chain intact` : `hash chain BROKEN at entry ${chain.brokenAtSeq}`})`);
    } finally {
      store.close();
    }
    if (r.exitCode !== 0) {
      const failed = r.job?.steps.find((s) => s.state === 'failed');
      say(`\ndemo FAILED${failed ? ` at step ${failed.number} (${failed.title}): ${failed.error}` : r.job?.error ? `: ${r.job.error}` : ''}`);
    } else say('\ndemo finished: each step above ran for real against the local stand-ins (skipped steps say why).');
    return r.exitCode;
  } catch (err) {
    say(`demo failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    await local.stop();
  }
}

/** What the Astro API stand-in saw of the server image deploy (create → push → finalize → HEALTHY), and what the registry holds. */
async function showServerDeploy(local: LocalSetup, say: (l?: string) => void): Promise<void> {
  const log = local.astro.deploys.log;
  if (!log.length) return;
  say('');
  say('Astro API stand-in, server image deploy:');
  for (const e of log) say(`  ${e.event.padEnd(8)} ${e.detail}`);
  const done = [...local.astro.deploys.deploys.values()].filter((d) => d.status === 'DEPLOYED').pop();
  if (done && local.astroRegistry) {
    const digest = await local.astroRegistry.manifestDigest(done.imageRepository.slice(local.astroRegistry.host.length + 1), done.imageTag).catch(() => null);
    say(`  registry ${digest ? `holds ${done.imageRepository}:${done.imageTag} (${digest})` : `does NOT hold ${done.imageRepository}:${done.imageTag}`}`);
  }
}

export async function run(args: string[]): Promise<number> {
  const spec = args.find((a) => !a.startsWith('-'));
  if (spec && !existsSync(spec)) {
    process.stderr.write(`re-bot demo: ${spec} not found\n`);
    return 2;
  }
  return runDemo({ specPath: spec });
}
