/**
 * Finding the external binaries the bot runs: helm (RE_BOT_HELM, then the repo's `.tools/bin`, then PATH),
 * kubectl (same order with RE_BOT_KUBECTL), and the image tools buildah / docker / podman / skopeo on PATH.
 * The bundled helm and kubectl (`npm ci` extracts them) win over whatever the system has on PATH: they are
 * the versions the bot is tested with.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { childEnv } from './child-env.ts';

export type ToolName = 'helm' | 'kubectl' | 'buildah' | 'docker' | 'podman' | 'skopeo';

export const REPO_TOOLS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.tools', 'bin');

const ENV_OVERRIDE: Partial<Record<ToolName, string>> = { helm: 'RE_BOT_HELM', kubectl: 'RE_BOT_KUBECTL' };

function isExecutable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Tools `npm ci` extracts into `.tools/bin`. */
export const BUNDLED_TOOLS: readonly ToolName[] = ['helm', 'kubectl'];

/**
 * Absolute path of the tool, or null when it is not installed. Order: the env override (RE_BOT_HELM /
 * RE_BOT_KUBECTL; when set it is the only place looked at), then `toolsDir` (the repo's `.tools/bin`) for
 * helm and kubectl, then PATH.
 */
export function findTool(name: ToolName, env: NodeJS.ProcessEnv = process.env, toolsDir: string = REPO_TOOLS_DIR): string | null {
  const override = ENV_OVERRIDE[name];
  if (override && env[override]) return isExecutable(env[override]!) ? resolve(env[override]!) : null;
  if (BUNDLED_TOOLS.includes(name)) {
    const candidate = join(toolsDir, name);
    if (isExecutable(candidate)) return candidate;
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

const VERSION_ARGS: Record<ToolName, string[]> = {
  helm: ['version', '--short'],
  kubectl: ['version', '--client', '-o', 'json'],
  buildah: ['--version'],
  docker: ['--version'],
  podman: ['--version'],
  skopeo: ['--version'],
};

export interface ToolStatus {
  name: ToolName;
  path: string | null;
  version?: string;
  /** why the tool cannot be used (missing, or it failed to report a version) */
  reason?: string;
}

/** Locate the tool and ask it for its version (5 s deadline). */
export async function probeTool(name: ToolName, env: NodeJS.ProcessEnv = process.env, toolsDir: string = REPO_TOOLS_DIR): Promise<ToolStatus> {
  const path = findTool(name, env, toolsDir);
  if (!path) {
    const hint = ENV_OVERRIDE[name] ? ` (set ${ENV_OVERRIDE[name]} or put it on PATH)` : ' on PATH';
    return { name, path: null, reason: `${name} not found${hint}` };
  }
  try {
    const r = await execa(path, VERSION_ARGS[name], { timeout: 5_000, reject: false, extendEnv: false, env: childEnv({}, { source: env }) });
    if (r.exitCode !== 0) {
      const err = String(r.stderr || r.stdout).trim().split('\n')[0] ?? '';
      return { name, path, reason: `${name} --version failed: ${err || `exit ${r.exitCode}`}` };
    }
    return { name, path, version: parseVersion(name, String(r.stdout)) };
  } catch (err) {
    return { name, path, reason: `${name} could not be started: ${(err as Error).message.split('\n')[0]}` };
  }
}

function parseVersion(name: ToolName, out: string): string {
  if (name === 'kubectl') {
    try {
      return (JSON.parse(out) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion ?? out.trim();
    } catch {
      /* fall through */
    }
  }
  const m = out.match(/v?\d+\.\d+\.\d+[^\s,+]*/);
  return m ? m[0] : out.trim().split('\n')[0]!;
}
