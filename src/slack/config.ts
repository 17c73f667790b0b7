import { z } from 'zod';
import { ConfigError } from '../config-error.ts';
import { accessListProblems } from '../policy-env.ts';

export { ConfigError };

const ids = z
  .string()
  .optional()
  .transform((s) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean))
  .pipe(z.array(z.string().regex(/^([US][A-Z0-9]+|\*)$/, 'expected comma-separated Slack user ids (U…) or user-group ids (S…), or `*` for anyone')));

const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'], { message: 'expected true or false' })
    .optional()
    .transform((v) => (v === undefined ? def : v === 'true' || v === '1'));

/** A value shown in an error: short plain values only (these variables hold counts and flags, never secrets). */
const shown = (v: string) => (/^[\w .,:-]{0,32}$/.test(v) ? `"${v}"` : `a ${v.length}-character value`);

const positiveInt = (what: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const n = Number(v.trim());
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${shown(v)}` });
        return z.NEVER;
      }
      return n;
    });

const positiveNumber = (what: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const n = Number(v.trim());
      if (!Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${shown(v)}` });
        return z.NEVER;
      }
      return n;
    });

/** The approval variables, shared by the Slack app and the CLI (`re-bot run` / `demo` check them too). */
const approvalFields = {
  RE_BOT_APPROVERS: ids,
  RE_BOT_REQUIRED_APPROVALS: positiveInt('a positive integer (the number of distinct approvals needed)').transform((n) => n ?? 1),
  RE_BOT_ALLOW_SELF_APPROVAL: bool(false),
  RE_BOT_APPROVAL_TTL_HOURS: positiveNumber('a positive number of hours').transform((n) => n ?? 24),
};

const EnvSchema = z
  .object({
    RE_BOT_SLACK_MODE: z.enum(['socket', 'http'], { message: 'expected "socket" or "http"' }).default('socket'),
    SLACK_BOT_TOKEN: z.string({ message: 'is required' }).regex(/^xoxb-/, 'expected a bot token starting with xoxb-'),
    SLACK_APP_TOKEN: z.string().regex(/^xapp-/, 'expected an app-level token starting with xapp-').optional(),
    SLACK_SIGNING_SECRET: z.string().min(8, 'expected the app signing secret').optional(),
    SLACK_API_URL: z.string().url('expected a URL like https://slack.com/api/').optional(),
    PORT: z.coerce.number({ message: 'expected a port number' }).int().min(0).max(65535).default(3000),
    RE_BOT_OPERATORS: ids,
    ...approvalFields,
  })
  .superRefine((env, ctx) => {
    if (env.RE_BOT_SLACK_MODE === 'socket' && !env.SLACK_APP_TOKEN)
      ctx.addIssue({ code: 'custom', path: ['SLACK_APP_TOKEN'], message: 'is required in Socket Mode (RE_BOT_SLACK_MODE=socket, the default)' });
    if (env.RE_BOT_SLACK_MODE === 'http' && !env.SLACK_SIGNING_SECRET)
      ctx.addIssue({ code: 'custom', path: ['SLACK_SIGNING_SECRET'], message: 'is required in HTTP mode (RE_BOT_SLACK_MODE=http)' });
  });

const ApprovalEnvSchema = z.object(approvalFields);

const problemsOf = (e: z.ZodError) => e.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message }));

export interface ApprovalSettings {
  approvers: string[];
  requiredApprovals: number;
  allowSelfApproval: boolean;
  approvalTtlMs: number;
}

/**
 * Parses only the approval variables (RE_BOT_APPROVERS, RE_BOT_REQUIRED_APPROVALS, RE_BOT_ALLOW_SELF_APPROVAL,
 * RE_BOT_APPROVAL_TTL_HOURS). Throws ConfigError naming each malformed one, so no command ignores them.
 */
export function approvalSettingsFromEnv(env: Record<string, string | undefined> = process.env): ApprovalSettings {
  const r = ApprovalEnvSchema.safeParse(env);
  if (!r.success) throw new ConfigError(problemsOf(r.error));
  return {
    approvers: r.data.RE_BOT_APPROVERS,
    requiredApprovals: r.data.RE_BOT_REQUIRED_APPROVALS,
    allowSelfApproval: r.data.RE_BOT_ALLOW_SELF_APPROVAL,
    approvalTtlMs: r.data.RE_BOT_APPROVAL_TTL_HOURS * 3600_000,
  };
}

export interface SlackConfig {
  mode: 'socket' | 'http';
  botToken: string;
  appToken?: string;
  signingSecret?: string;
  apiUrl?: string;
  port: number;
  /** Slack user/user-group ids; `['*']` = anyone. Never empty (loadSlackConfig refuses that). */
  operators: string[];
  /** Slack user/user-group ids; `['*']` = anyone but (by default) the requester. Never empty. */
  approvers: string[];
  requiredApprovals: number;
  allowSelfApproval: boolean;
  approvalTtlMs: number;
}

export function loadSlackConfig(env: Record<string, string | undefined> = process.env): SlackConfig {
  const r = EnvSchema.safeParse(env);
  // fail closed: RE_BOT_OPERATORS and RE_BOT_APPROVERS must be set (`*` = anyone, on purpose)
  const access = accessListProblems(env);
  if (!r.success || access.length) {
    throw new ConfigError([...(r.success ? [] : problemsOf(r.error)), ...access], 'invalid Slack configuration');
  }
  const e = r.data;
  return {
    mode: e.RE_BOT_SLACK_MODE,
    botToken: e.SLACK_BOT_TOKEN,
    appToken: e.SLACK_APP_TOKEN,
    signingSecret: e.SLACK_SIGNING_SECRET,
    apiUrl: e.SLACK_API_URL,
    port: e.PORT,
    operators: e.RE_BOT_OPERATORS,
    approvers: e.RE_BOT_APPROVERS,
    requiredApprovals: e.RE_BOT_REQUIRED_APPROVALS,
    allowSelfApproval: e.RE_BOT_ALLOW_SELF_APPROVAL,
    approvalTtlMs: e.RE_BOT_APPROVAL_TTL_HOURS * 3600_000,
  };
}

/** The engine's approval policy from the same variables the Slack app checks clicks against. */
export function approvalPolicyFrom(c: SlackConfig): import('../jobs/types.ts').ApprovalPolicy {
  // the engine's "anyone" is an empty list; an empty config list (never from loadSlackConfig) lets nobody approve
  const approvers = c.approvers.includes('*') ? [] : c.approvers.length ? c.approvers : ['(nobody)'];
  return { approvers, required: c.requiredApprovals, allowSelfApproval: c.allowSelfApproval, expiresInMs: c.approvalTtlMs };
}
