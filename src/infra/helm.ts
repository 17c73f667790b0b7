/**
 * Helm adapter: runs the helm binary through execa with argv arrays (never a shell), each call with a
 * deadline and the caller's AbortSignal (the child is killed on abort). Values reach helm only through a
 * 0600 file in a fresh 0700 temp dir that is removed after the call, also on failure; argv never uses --set.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { MASK, RedactedError, redact } from '../redact.ts';
import { findTool } from './tools.ts';
import { childEnv } from './child-env.ts';
import { childSlot } from './child-limit.ts';
import { parseAllDocuments } from 'yaml';
import type { CallOptions, ChartRef, HelmAdapter, HelmDiff, HelmReleaseInfo, HelmUpgradeInput } from './types.ts';

export interface HelmAdapterOptions {
  helmPath?: string;
  kubeconfigPath?: string;
  kubeContext?: string;
  defaultTimeoutMs?: number;
  /** variables named by the spec's `{ env: NAME }` secret references: kept out of helm's environment */
  secretEnvNames?: string[];
}

/** Every argv helm was started with in this process (tests assert no secret ever reaches it). */
export const helmArgvLog: string[][] = [];
/** Every values directory created (tests assert each one is gone after the call). */
export const helmValuesDirLog: string[] = [];

export class HelmError extends RedactedError {
  constructor(message: string, readonly stderr: string, code = 'helm_failed') {
    super(message, code);
    this.name = 'HelmError';
  }
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Strip what helm may echo from Secret objects (helm#12176) before anything else sees it. */
export function scrubHelmOutput(text: string): string {
  const masked = text
    // JSON-ish or Go map renderings of data / stringData
    .replace(/("?(?:data|stringData)"?\s*:\s*)(\{[^{}]*\}|map\[(?:[^[\]]|\[[^\]]*\])*\])/g, '$1[REDACTED]')
    // YAML-ish: "data:" followed by "key: base64" lines, or a base64 blob on the same line
    .replace(/((?:^|\s)(?:data|stringData):)((?:\s*\n\s+[\w.-]+:\s*\S+)+)/g, (_m, head: string, body: string) =>
      head + body.replace(/(:\s*)\S+/g, '$1[REDACTED]'),
    )
    .replace(/((?:data|stringData)\S*\s*[:=]\s*)[A-Za-z0-9+/]{8,}={0,2}/g, '$1[REDACTED]');
  return redact(masked);
}

/** A short message for the user from helm's stderr: the `Error:` lines, scrubbed and capped. */
export function helmErrorMessage(action: string, stderr: string, exitCode?: number): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const errLines = lines.filter((l) => /^Error:|^error:/.test(l));
  const picked = (errLines.length ? errLines : lines.slice(-3)).join(' ').replace(/^Error:\s*/i, '');
  const text = scrubHelmOutput(picked || `exit code ${exitCode ?? '?'}`);
  return `helm ${action} failed: ${text.length > 600 ? text.slice(0, 600) + '…' : text}`;
}

function chartArgs(chart: ChartRef): string[] {
  if (chart.path) return [chart.path];
  if (!chart.chart) throw new RedactedError('chart: expected either chart.path or chart.chart (with chart.repo)', 'bad_input');
  const out = [chart.chart];
  if (chart.repo) out.push('--repo', chart.repo);
  if (chart.version) out.push('--version', chart.version);
  return out;
}

interface HistoryEntry {
  revision: number;
  updated?: string;
  status: string;
  chart: string;
  app_version?: string;
  description?: string;
}

function toInfo(h: HistoryEntry): HelmReleaseInfo {
  return { revision: h.revision, status: h.status, chart: h.chart, appVersion: h.app_version, description: h.description, updated: h.updated };
}

export function createHelmAdapter(options: HelmAdapterOptions = {}): HelmAdapter {
  const defaultTimeout = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;

  function helmPath(): string {
    const p = options.helmPath ?? findTool('helm');
    if (!p) throw new RedactedError('helm not found: set RE_BOT_HELM or put helm on PATH (re-bot doctor shows what is missing)', 'helm_missing');
    return p;
  }

  function clusterArgs(kubeContext?: string): string[] {
    const out: string[] = [];
    const ctx = kubeContext ?? options.kubeContext;
    if (ctx) out.push('--kube-context', ctx);
    if (options.kubeconfigPath) out.push('--kubeconfig', options.kubeconfigPath);
    return out;
  }

  async function run(action: string, args: string[], opts: CallOptions = {}): Promise<string> {
    const bin = helmPath();
    helmArgvLog.push([bin, ...args]);
    if (opts.signal?.aborted) throw new HelmError(`helm ${action} cancelled`, '', 'cancelled');
    const timeoutMs = opts.timeoutMs ?? defaultTimeout;
    const release = await childSlot(`helm ${action}`, { signal: opts.signal, timeoutMs });
    const child = execa(bin, args, {
      timeout: timeoutMs,
      cancelSignal: opts.signal,
      forceKillAfterDelay: 2_000,
      reject: false,
      stdin: 'ignore',
      // an allow-listed environment: no Slack tokens, no RE_BOT_SECRET_KEY, no secret-reference values
      extendEnv: false,
      env: childEnv({ HELM_DEBUG: 'false' }, { drop: options.secretEnvNames }),
      maxBuffer: 64 * 1024 * 1024,
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    const r = await child.finally(release);
    if (r.isCanceled) throw new HelmError(`helm ${action} cancelled`, '', 'cancelled');
    if (r.timedOut) throw new HelmError(`helm ${action} timed out after ${Math.round(timeoutMs / 1000)}s`, '', 'timeout');
    if (r.exitCode !== 0) {
      const stderr = String(r.stderr ?? '');
      const code = /release: not found/i.test(stderr) ? 'not_found' : 'helm_failed';
      throw new HelmError(helmErrorMessage(action, stderr, r.exitCode), scrubHelmOutput(stderr), code);
    }
    return String(r.stdout ?? '');
  }

  /** Write values to a 0600 file inside a fresh 0700 dir, run fn, always remove the dir. */
  async function withValuesFile<T>(values: unknown, fn: (file: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 're-bot-values-')); // mkdtemp creates 0700
    helmValuesDirLog.push(dir);
    try {
      const file = join(dir, 'values.json'); // JSON is valid YAML
      await writeFile(file, JSON.stringify(values ?? {}), { mode: 0o600, flag: 'wx' });
      return await fn(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  function releaseArgs(input: HelmUpgradeInput, file: string): string[] {
    return [input.release, ...chartArgs(input.chart), '-n', input.namespace, '-f', file];
  }

  /** [] when the release does not exist */
  async function history(release: string, namespace: string, opts?: CallOptions): Promise<HelmReleaseInfo[]> {
    let out: string;
    try {
      out = await run('history', ['history', release, '-n', namespace, '-o', 'json', ...clusterArgs()], opts);
    } catch (err) {
      if (err instanceof HelmError && err.code === 'not_found') return [];
      throw err;
    }
    const parsed = JSON.parse(out || '[]') as HistoryEntry[];
    return parsed.map(toInfo).sort((a, b) => a.revision - b.revision);
  }

  async function template(input: HelmUpgradeInput, opts?: CallOptions, isUpgrade = false): Promise<string> {
    return withValuesFile(input.values, (file) => {
      // renders offline (no cluster flags); --is-upgrade mirrors what an upgrade would render
      const args = ['template', ...releaseArgs(input, file)];
      if (isUpgrade) args.push('--is-upgrade');
      return run('template', args, opts);
    });
  }

  return {
    async version(opts) {
      return (await run('version', ['version', '--short'], opts)).trim();
    },

    template: (input, opts) => template(input, opts),

    async upgradeInstall(input, opts) {
      await withValuesFile(input.values, (file) => {
        const args = ['upgrade', '--install', ...releaseArgs(input, file), ...clusterArgs(input.kubeContext)];
        if (input.description) args.push('--description', input.description);
        if (input.timeoutSeconds) args.push('--timeout', `${input.timeoutSeconds}s`);
        const timeoutMs = Math.max(opts?.timeoutMs ?? defaultTimeout, (input.timeoutSeconds ?? 0) * 1000 + 30_000);
        return run('upgrade --install', args, { ...opts, timeoutMs });
      });
      const h = await history(input.release, input.namespace, { ...opts, onSpawn: undefined });
      const last = h[h.length - 1];
      if (!last) throw new HelmError(`helm upgrade --install of ${input.release} reported success but the release has no history`, '');
      return last;
    },

    async diff(input, opts): Promise<HelmDiff> {
      let current = '';
      let firstInstall = false;
      try {
        current = await run('get manifest', ['get', 'manifest', input.release, '-n', input.namespace, ...clusterArgs(input.kubeContext)], opts);
      } catch (err) {
        if (!(err instanceof HelmError) || err.code !== 'not_found') throw err;
        firstInstall = true;
      }
      const next = await template(input, opts, !firstInstall);
      return { ...manifestDiff(current, next), firstInstall };
    },

    history,

    async chartMetadata(chart, opts) {
      const out = await run('show chart', ['show', 'chart', ...chartArgs(chart)], opts);
      const meta = (parseAllDocuments(out)[0]?.toJS() ?? {}) as { name?: string; version?: string };
      if (!meta.name) throw new HelmError('helm show chart printed no chart name', '');
      return { name: meta.name, version: String(meta.version ?? '') };
    },

    async getValues(release, namespace, opts) {
      const out = await run('get values', ['get', 'values', release, '-n', namespace, '-o', 'json', ...clusterArgs()], opts);
      return JSON.parse(out || 'null') ?? {};
    },

    async rollback(release, namespace, revision, opts) {
      if (!Number.isInteger(revision) || revision < 1) throw new RedactedError(`revision: expected a positive integer, got ${revision}`, 'bad_input');
      await run('rollback', ['rollback', release, String(revision), '-n', namespace, ...clusterArgs()], opts);
    },

    async uninstall(release, namespace, opts) {
      await run('uninstall', ['uninstall', release, '-n', namespace, '--ignore-not-found', ...clusterArgs()], opts);
    },
  };
}

// ---------- diff between the release's manifest and a new render ----------

interface ManifestDoc {
  id: string;
  text: string;
  flat: Map<string, string>;
}

const MASKED_VALUE = MASK;

/** Secret data/stringData values replaced (keys kept, so added/removed keys still show). */
function maskSecret(obj: Record<string, unknown>): Record<string, unknown> {
  if (obj.kind !== 'Secret') return obj;
  const out = { ...obj };
  for (const field of ['data', 'stringData']) {
    const v = out[field];
    if (v && typeof v === 'object') {
      out[field] = Object.fromEntries(Object.keys(v).map((k) => [k, MASKED_VALUE]));
    }
  }
  return out;
}

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v] as const) : Object.entries(value).map(([k, v]) => [prefix ? `.${k}` : k, v] as const);
    if (entries.length === 0) out.set(prefix, Array.isArray(value) ? '[]' : '{}');
    for (const [k, v] of entries) flatten(v, prefix + k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
}

function parseManifest(text: string): Map<string, ManifestDoc> {
  const docs = new Map<string, ManifestDoc>();
  for (const doc of parseAllDocuments(text)) {
    const obj = doc.toJS() as Record<string, unknown> | null;
    if (!obj || typeof obj !== 'object' || !obj.kind) continue;
    const masked = maskSecret(obj);
    const meta = (masked.metadata ?? {}) as { name?: string; namespace?: string };
    const id = `${masked.kind}/${meta.namespace ? meta.namespace + '/' : ''}${meta.name ?? '?'}`;
    const flat = new Map<string, string>();
    flatten(masked, '', flat);
    docs.set(id, { id, text: toYamlLines(masked), flat });
  }
  return docs;
}

function toYamlLines(obj: unknown): string {
  // stable, readable: one "path: value" per line in document order
  const flat = new Map<string, string>();
  flatten(obj, '', flat);
  return [...flat].map(([k, v]) => `${k}: ${v}`).join('\n');
}

/** Line diff (LCS) with 2 lines of context; inputs are single resources, so small. */
export function lineDiff(a: string[], b: string[], context = 2): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: Array<[' ' | '-' | '+', string]> = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push([' ', a[i]!]); i++; j++; }
    else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) { ops.push(['-', a[i]!]); i++; }
    else { ops.push(['+', b[j]!]); j++; }
  }
  const keep = ops.map((op, k) => op[0] !== ' ' || ops.slice(Math.max(0, k - context), k + context + 1).some((o) => o[0] !== ' '));
  const out: string[] = [];
  let skipped = false;
  ops.forEach((op, k) => {
    if (keep[k]) { out.push(`${op[0]} ${op[1]}`); skipped = false; }
    else if (!skipped) { out.push('  …'); skipped = true; }
  });
  return out;
}

export function manifestDiff(currentManifest: string, newManifest: string): { text: string; changedKeys: string[] } {
  const before = parseManifest(currentManifest);
  const after = parseManifest(newManifest);
  const ids = [...new Set([...before.keys(), ...after.keys()])].sort();
  const changedKeys: string[] = [];
  const sections: string[] = [];
  for (const id of ids) {
    const a = before.get(id);
    const b = after.get(id);
    if (!a && b) {
      changedKeys.push(`${id} (added)`);
      sections.push(`+++ ${id} (new)\n` + b.text.split('\n').map((l) => `+ ${l}`).join('\n'));
      continue;
    }
    if (a && !b) {
      changedKeys.push(`${id} (removed)`);
      sections.push(`--- ${id} (removed)`);
      continue;
    }
    const paths = [...new Set([...a!.flat.keys(), ...b!.flat.keys()])].filter((p) => a!.flat.get(p) !== b!.flat.get(p));
    if (!paths.length) continue;
    for (const p of paths) changedKeys.push(`${id}: ${p}`);
    sections.push(`~~~ ${id}\n` + lineDiff(a!.text.split('\n'), b!.text.split('\n')).join('\n'));
  }
  return { text: redact(sections.join('\n\n')) || 'no changes', changedKeys };
}
