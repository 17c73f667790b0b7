/**
 * The environment of every child process the bot starts (helm, buildah/docker/podman/skopeo, version
 * probes): an allow-list, not the bot's whole environment. The bot's own environment holds SLACK_BOT_TOKEN,
 * SLACK_APP_TOKEN, RE_BOT_SECRET_KEY and the values behind the spec's `{ env: NAME }` secret references;
 * none of them is any business of helm or a kubeconfig exec plugin.
 *
 * Passed through: what the tools and the credential plugins a kubeconfig may run (aws, gke-gcloud-auth-plugin,
 * kubelogin) need to find the cluster, the proxy and their own configuration. Then every variable named by a
 * secret reference of the spec is removed, even when it is on the allow-list (a spec may keep its agent token
 * in a variable called AWS_SESSION_TOKEN; helm must still not see it).
 *
 * Use with execa `{ extendEnv: false, env: childEnv(...) }`: execa merges `env` into process.env otherwise.
 */

/** exact names passed through */
const ALLOWED = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TMP', 'TEMP',
  'KUBECONFIG', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'KUBERNETES_SERVICE_PORT_HTTPS',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'ALL_PROXY', 'all_proxy',
  'SSL_CERT_FILE', 'SSL_CERT_DIR',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'STORAGE_DRIVER', 'REGISTRY_AUTH_FILE', 'DOCKER_CONFIG', 'DOCKER_HOST', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY',
  'XDG_RUNTIME_DIR', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'XDG_DATA_HOME',
]);

/** prefixes passed through: locale, helm's own settings, cloud CLIs used by kubeconfig exec plugins, container tools */
const ALLOWED_PREFIXES = ['LC_', 'HELM_', 'AWS_', 'AZURE_', 'CLOUDSDK_', 'BUILDAH_', 'CONTAINERS_'];

export function isAllowedChildVariable(name: string): boolean {
  return ALLOWED.has(name) || ALLOWED_PREFIXES.some((p) => name.startsWith(p));
}

export interface ChildEnvOptions {
  /** variables named by the spec's `{ env: NAME }` secret references: always removed */
  drop?: Iterable<string>;
  /** default process.env */
  source?: NodeJS.ProcessEnv;
}

/** The allow-listed part of `source`, plus `extra` (set by the caller, e.g. HELM_DEBUG), minus `drop`. */
export function childEnv(extra: Record<string, string | undefined> = {}, o: ChildEnvOptions = {}): Record<string, string> {
  const source = o.source ?? process.env;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined && isAllowedChildVariable(k)) out[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  for (const k of o.drop ?? []) delete out[k];
  return out;
}

/**
 * The environment of the `re-bot worker` child. Unlike helm it runs the setup jobs, so it needs RE_BOT_*
 * (store path, RE_BOT_SECRET_KEY to open sealed secrets, approver policy), LOG_LEVEL, node's own settings and
 * the variables `{ env: NAME }` secret references name — which can be any name and belong to specs submitted
 * after the worker starts, so here only the Slack credentials are withheld: the worker never talks to Slack
 * (its events go to the parent over IPC).
 */
export function workerEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (v !== undefined && !k.startsWith('SLACK_')) out[k] = v;
  return out;
}

/** Every NAME of a `{ env: NAME }` secret reference anywhere in a spec (or any JSON-able value). */
export function secretEnvNames(spec: unknown): string[] {
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const keys = Object.keys(v);
    const env = (v as { env?: unknown }).env;
    if (keys.length === 1 && typeof env === 'string') names.add(env);
    else for (const child of Object.values(v)) walk(child);
  };
  walk(spec);
  return [...names];
}
