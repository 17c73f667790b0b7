/**
 * Policy variables, read by `re-bot start` (with the Slack ones in src/slack/config.ts) and by `re-bot plan|run`:
 *
 * - RE_BOT_OPERATORS / RE_BOT_APPROVERS are required (fail closed): Slack user (U…) or user-group (S…) ids, or
 *   `*` for anyone. Unset, empty or only commas counts as not set.
 * - RE_BOT_ALLOWED_API_HOSTS (host globs that may receive the Deployment API token; default Astronomer's),
 * - RE_BOT_ALLOWED_NAMESPACES (globs), RE_BOT_ALLOWED_REGISTRIES (host[:port] globs), RE_BOT_BUILD_ROOT
 *   (directory the client image context must be inside; default the working directory) → SpecPolicy.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SpecPolicy } from './spec/safety.ts';

export interface EnvProblem {
  variable: string;
  message: string;
}

type Env = Record<string, string | undefined>;

const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);

const WHO = {
  RE_BOT_APPROVERS: 'who may approve Helm upgrades',
  RE_BOT_OPERATORS: 'who may start setups',
} as const;

/** RE_BOT_APPROVERS and RE_BOT_OPERATORS must be set: an unset list no longer means "everyone". */
export function accessListProblems(env: Env): EnvProblem[] {
  const problems: EnvProblem[] = [];
  for (const [variable, who] of Object.entries(WHO)) {
    const ids = list(env[variable]);
    if (ids.length === 0) {
      problems.push({ variable, message: `is not set: list the Slack user ids (U…) or user-group ids (S…) ${who}, or \`*\` to allow anyone (a conscious choice)` });
    } else if (ids.includes('*') && ids.length > 1) {
      problems.push({ variable, message: '`*` (anyone) cannot be combined with ids: give either `*` or the list of ids' });
    }
  }
  return problems;
}

const NAMESPACE_GLOB = /^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$/;
const API_HOST_GLOB = /^[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9*])?$/;
const REGISTRY_GLOB = /^[A-Za-z0-9*]([A-Za-z0-9.*-]*[A-Za-z0-9*])?(:\d{1,5})?$/;

/** The spec safety policy from the environment; problems name the variable (start: exit 2, plan/run: exit 2). */
export function specPolicyFromEnv(env: Env, cwd = process.cwd()): { policy: SpecPolicy; problems: EnvProblem[] } {
  const problems: EnvProblem[] = [];
  const policy: SpecPolicy = { workDir: cwd, buildRoot: cwd };

  const namespaces = list(env.RE_BOT_ALLOWED_NAMESPACES);
  const badNs = namespaces.filter((n) => !NAMESPACE_GLOB.test(n));
  if (badNs.length) problems.push({ variable: 'RE_BOT_ALLOWED_NAMESPACES', message: `expected comma-separated namespace names or globs like astro-*,team-a-agents; not valid: ${badNs.join(', ')}` });
  if (namespaces.length) policy.allowedNamespaces = namespaces;

  const registries = list(env.RE_BOT_ALLOWED_REGISTRIES);
  const badReg = registries.filter((r) => !REGISTRY_GLOB.test(r));
  if (badReg.length) problems.push({ variable: 'RE_BOT_ALLOWED_REGISTRIES', message: `expected comma-separated registry hosts[:port], \`*\` allowed, like 123456789012.dkr.ecr.*.amazonaws.com,registry.acme.internal:5000; not valid: ${badReg.join(', ')}` });
  if (registries.length) policy.allowedRegistries = registries;

  const apiHosts = list(env.RE_BOT_ALLOWED_API_HOSTS);
  const badApi = apiHosts.filter((h) => h !== '*' && !API_HOST_GLOB.test(h));
  if (badApi.length) problems.push({ variable: 'RE_BOT_ALLOWED_API_HOSTS', message: `expected comma-separated host names or globs (no scheme, port or path), \`*\` for any, like api.astronomer.io,*.astronomer.run; not valid: ${badApi.join(', ')}` });
  if (apiHosts.length) policy.allowedApiHosts = apiHosts;

  const root = env.RE_BOT_BUILD_ROOT?.trim();
  if (root) {
    const abs = resolve(cwd, root);
    let isDir = false;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) problems.push({ variable: 'RE_BOT_BUILD_ROOT', message: `${abs} is not a directory: give the directory client image builds may use (their contextDir must be inside it)` });
    policy.buildRoot = abs;
  }
  return { policy, problems };
}
