/**
 * Safety policy for a setup spec, on top of the schema: where the client image may be built from and pushed
 * to, which URLs may receive credentials, and which namespaces the agents may use. Every rule fails closed.
 *
 * Pure apart from resolving real paths (injectable). Works on a parsed SetupSpec and on raw wizard input
 * alike: each rule reads its field only when it is a string, so it can run before the schema accepts a spec.
 * Messages never quote a URL (it may carry a token): only the field, the host and what to do.
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep, basename } from 'node:path';
import type { SpecError } from './schema.ts';

export interface SpecPolicy {
  /** the client image's contextDir must resolve inside this directory (default: the working directory) */
  buildRoot?: string;
  /** RE_BOT_ALLOWED_NAMESPACES: globs (`*` matches anything); unset = any namespace but the reserved ones */
  allowedNamespaces?: string[];
  /** RE_BOT_ALLOWED_REGISTRIES: host[:port] globs; unset = any registry */
  allowedRegistries?: string[];
  /**
   * RE_BOT_ALLOWED_API_HOSTS: host globs the Deployment API token may be sent to (astroApiUrl, airflowApiUrl,
   * and openLineage.url when it uses that token); unset = DEFAULT_API_HOSTS. Loopback hosts are always allowed.
   */
  allowedApiHosts?: string[];
  /** where a relative contextDir is resolved, as the builder does (default: the working directory) */
  workDir?: string;
  /** tests; default fs.realpathSync */
  realpath?: (p: string) => string;
}

/**
 * Where Astronomer serves the Astro API and the Deployments' Airflow APIs. Step 1 reads the Deployment with
 * the token before any approval, so the hosts that may receive it are the admin's standing approval.
 */
export const DEFAULT_API_HOSTS = ['api.astronomer.io', '*.astronomer.run', '*.astronomer.io'];

/** the spec fields whose URL receives the Deployment API token */
const TOKEN_URL_FIELDS = ['deployment.astroApiUrl', 'deployment.airflowApiUrl'] as const;

function checkApiHosts(spec: unknown, policy: SpecPolicy): SpecError[] {
  const allowed = policy.allowedApiHosts?.length ? policy.allowedApiHosts : DEFAULT_API_HOSTS;
  if (allowed.includes('*')) return [];
  const fields: string[] = [...TOKEN_URL_FIELDS];
  // OpenLineage sends the Deployment API token unless the spec gives a key of its own
  if (get(spec, 'openLineage.enabled') === true && get(spec, 'openLineage.apiKey') == null) fields.push('openLineage.url');
  const errors: SpecError[] = [];
  for (const path of fields) {
    const v = get(spec, path);
    if (typeof v !== 'string' || !v.trim()) continue;
    let host: string;
    try {
      host = new URL(v.trim()).hostname.toLowerCase();
    } catch {
      continue; // not a URL: the schema and checkUrl report it
    }
    if (isLoopbackHost(host) || allowed.some((p) => globMatch(p, host))) continue;
    errors.push({
      path,
      message: `\`${path}\` would receive the Deployment API token at ${host}, which is not in ${policy.allowedApiHosts?.length ? `RE_BOT_ALLOWED_API_HOSTS (${allowed.join(', ')})` : `the default API hosts (${allowed.join(', ')}); the bot's admin can widen them with RE_BOT_ALLOWED_API_HOSTS`}: use Astronomer's API URL, or ask the bot's admin to allow the host`,
    });
  }
  return errors;
}

/** Never the agents' home, whatever RE_BOT_ALLOWED_NAMESPACES says. */
export const RESERVED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease', 'default'];

/**
 * Every field of a spec that holds a URL something connects to (or shows users). Git URLs are https only
 * (the schema refuses ssh), so `git@` gets no exception here either.
 */
export const URL_FIELDS = [
  'deployment.apiUrl',
  'deployment.airflowApiUrl',
  'deployment.astroApiUrl',
  'cluster.chart.repo',
  'secretsBackend.vaultUrl',
  'secretsBackend.url',
  'dagSource.repoUrl',
  'logging.taskLogUrlPattern',
  'openLineage.url',
] as const;

/** object-storage URLs (s3://, gs://, abfs://) get the userinfo rule only: they are not http */
const STORAGE_URL_FIELDS = ['logging.remoteBaseLogFolder'] as const;

type Obj = Record<string, unknown>;

function get(o: unknown, path: string): unknown {
  return path.split('.').reduce<any>((x, k) => (x == null || typeof x !== 'object' ? undefined : x[k]), o);
}

/** `*` matches any run of characters; everything else literally; whole string. */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'i');
  return re.test(value);
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return !!m && Number(m[1]) === 127 && m.slice(2).every((x) => Number(x) <= 255);
}

function checkUrl(path: string, value: string, httpRule: boolean): SpecError[] {
  const errors: SpecError[] = [];
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    // not a URL at all: the schema reports it. Still refuse what looks like credentials before a host.
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) errors.push(userinfoError(path));
    return errors;
  }
  if (u.username !== '' || u.password !== '') errors.push(userinfoError(path));
  if (httpRule && u.protocol !== 'https:') {
    if (u.protocol === 'http:') {
      if (!isLoopbackHost(u.hostname)) {
        errors.push({ path, message: `\`${path}\` must use https (got http to ${u.hostname}); only loopback hosts (127.0.0.0/8, ::1, localhost) may use http` });
      }
    } else {
      errors.push({ path, message: `\`${path}\` must be an https URL (got a ${u.protocol.replace(/:$/, '')} URL)` });
    }
  }
  return errors;
}

const userinfoError = (path: string): SpecError => ({
  path,
  message: `\`${path}\` must not contain a user name or password (found userinfo before @); put credentials in a secret reference`,
});

/** realpath of the nearest existing ancestor, with the rest appended: a path that does not exist yet */
function realish(p: string, realpath: (p: string) => string): string {
  let cur = resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpath(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return join(cur, ...rest.reverse());
      rest.push(basename(cur));
      cur = up;
    }
  }
}

function inside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel === '' || (rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel));
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/** images.client (and images.server, the Astro project): a context inside the build root, a Dockerfile inside the context */
function checkBuild(spec: unknown, policy: SpecPolicy, which: 'client' | 'server' = 'client'): SpecError[] {
  const client = get(spec, `images.${which}`);
  if (!client || typeof client !== 'object') return [];
  const errors: SpecError[] = [];
  const c = client as Obj;
  const contextDir = typeof c.contextDir === 'string' && c.contextDir.trim() ? c.contextDir.trim() : '.';
  const dockerfile = typeof c.dockerfile === 'string' && c.dockerfile.trim() ? c.dockerfile.trim() : which === 'client' ? 'Dockerfile.client' : 'Dockerfile';
  const realpath = policy.realpath ?? realpathSync;
  const rootGiven = policy.buildRoot ?? process.cwd();
  const root = realish(rootGiven, realpath);

  if (which === 'server' && c.deploy !== true) return [];
  let contextOk = true;
  if (SCHEME.test(contextDir) || /^[^/\\]+@[^/\\]+:/.test(contextDir)) {
    contextOk = false;
    errors.push({ path: `images.${which}.contextDir`, message: `\`images.${which}.contextDir\` must be a directory inside the build root ${rootGiven}, not a URL: check the project out there and give its path` });
  }
  const context = realish(resolve(policy.workDir ?? process.cwd(), contextDir), realpath);
  if (contextOk && !inside(root, context)) {
    contextOk = false;
    errors.push({ path: `images.${which}.contextDir`, message: `\`images.${which}.contextDir\` must be inside the build root ${rootGiven} (it resolves to ${context}): give a directory under it (RE_BOT_BUILD_ROOT for the bot, the working directory for the CLI)` });
  }

  const fix = `give the Dockerfile as a relative path inside images.${which}.contextDir, e.g. ${which === 'client' ? 'Dockerfile.client' : 'Dockerfile'}`;
  if (SCHEME.test(dockerfile) || /^[^/\\]+@[^/\\]+:/.test(dockerfile)) {
    errors.push({ path: `images.${which}.dockerfile`, message: `\`images.${which}.dockerfile\` must not be a URL: ${fix}` });
  } else if (isAbsolute(dockerfile) || /^[a-z]:[\\/]/i.test(dockerfile) || dockerfile.startsWith('\\')) {
    errors.push({ path: `images.${which}.dockerfile`, message: `\`images.${which}.dockerfile\` must not be an absolute path: ${fix}` });
  } else if (dockerfile.split(/[\\/]/).includes('..')) {
    errors.push({ path: `images.${which}.dockerfile`, message: `\`images.${which}.dockerfile\` must not contain a '..' segment: ${fix}` });
  } else if (contextOk && !inside(context, realish(join(context, dockerfile), realpath))) {
    // a symlink out of the context
    errors.push({ path: `images.${which}.dockerfile`, message: `\`images.${which}.dockerfile\` resolves outside images.${which}.contextDir (a symbolic link?): ${fix}` });
  }

  const repository = c.repository;
  if (policy.allowedRegistries?.length && typeof repository === 'string' && repository) {
    const host = registryOf(repository);
    if (!registryAllowed(host, policy.allowedRegistries)) {
      errors.push({
        path: 'images.client.repository',
        message: `\`images.client.repository\` pushes to ${host}, which is not in RE_BOT_ALLOWED_REGISTRIES (${policy.allowedRegistries.join(', ')}): use a repository on an allowed registry, or ask the bot's admin to add it`,
      });
    }
  }
  return errors;
}

/** the registry a repository reference pushes to (Docker's rule: a first segment with '.' or ':' or localhost) */
export function registryOf(repository: string): string {
  const first = repository.split('/')[0];
  if (repository.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first.toLowerCase();
  return 'docker.io';
}

/** a pattern with a port matches host:port; without one, the host on any port */
export function registryAllowed(hostPort: string, patterns: string[]): boolean {
  const host = hostPort.replace(/:\d+$/, '');
  return patterns.some((p) => (/:\d+$/.test(p) ? globMatch(p, hostPort) : globMatch(p, host)));
}

function checkNamespace(spec: unknown, policy: SpecPolicy): SpecError[] {
  const ns = get(spec, 'cluster.namespace');
  if (typeof ns !== 'string' || !ns) return [];
  if (RESERVED_NAMESPACES.includes(ns)) {
    return [{ path: 'cluster.namespace', message: `\`cluster.namespace\` must not be ${ns} (reserved: ${RESERVED_NAMESPACES.join(', ')}): choose a namespace of its own for the agents, e.g. astro-agents` }];
  }
  if (policy.allowedNamespaces?.length && !policy.allowedNamespaces.some((p) => globMatch(p, ns))) {
    return [{ path: 'cluster.namespace', message: `\`cluster.namespace\` ${ns} is not allowed by RE_BOT_ALLOWED_NAMESPACES (${policy.allowedNamespaces.join(', ')}): choose a namespace matching one of them, or ask the bot's admin to add it` }];
  }
  return [];
}

/** Every safety problem of a spec (parsed or raw), each with its field path. Empty = safe to plan and run. */
export function checkSpecSafety(spec: unknown, policy: SpecPolicy = {}): SpecError[] {
  if (!spec || typeof spec !== 'object') return [];
  const errors: SpecError[] = [];
  for (const path of URL_FIELDS) {
    const v = get(spec, path);
    if (typeof v === 'string' && v.trim()) errors.push(...checkUrl(path, v.trim(), true));
  }
  for (const path of STORAGE_URL_FIELDS) {
    const v = get(spec, path);
    if (typeof v === 'string' && v.trim()) errors.push(...checkUrl(path, v.trim(), false));
  }
  errors.push(...checkApiHosts(spec, policy));
  errors.push(...checkNamespace(spec, policy));
  errors.push(...checkBuild(spec, policy));
  errors.push(...checkBuild(spec, policy, 'server'));
  return errors;
}
