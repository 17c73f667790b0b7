import { sql } from 'drizzle-orm';
import { sqliteTable, text, integer, index, uniqueIndex } from 'drizzle-orm/sqlite-core';

const json = (name: string) => text(name, { mode: 'json' });

export const deployments = sqliteTable('deployments', {
  name: text('name').primaryKey(),
  astroId: text('astro_id'),
  lastSpec: json('last_spec'),
  updatedAt: text('updated_at').notNull(),
});

export const jobs = sqliteTable('jobs', {
  id: text('id').primaryKey(),
  deployment: text('deployment').notNull(),
  state: text('state').notNull(),
  attempt: integer('attempt').notNull().default(1),
  requestedBy: text('requested_by').notNull(),
  origin: json('origin').notNull(),
  spec: json('spec').notNull(),
  plan: json('plan').notNull(),
  valuesHash: text('values_hash').notNull(),
  chart: text('chart').notNull(),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: integer('lease_expires_at'),
  cancelRequested: integer('cancel_requested', { mode: 'boolean' }).notNull().default(false),
  error: text('error'),
  createdAt: text('created_at').notNull(),
  startedAt: text('started_at'),
  finishedAt: text('finished_at'),
  updatedAt: text('updated_at').notNull(),
}, (t) => [
  index('jobs_deployment_created').on(t.deployment, t.createdAt),
  index('jobs_state').on(t.state),
  // the per-deployment lock: at most one active job (ACTIVE_STATES in src/jobs/views.ts) per deployment
  uniqueIndex('jobs_one_active_per_deployment').on(t.deployment).where(sql`state in ('queued', 'running', 'waiting_approval')`),
]);

export const jobSteps = sqliteTable('job_steps', {
  jobId: text('job_id').notNull().references(() => jobs.id),
  stepId: text('step_id').notNull(),
  number: integer('number').notNull(),
  title: text('title').notNull(),
  execOrder: integer('exec_order').notNull(),
  state: text('state').notNull(),
  attempt: integer('attempt').notNull().default(0),
  startedAt: text('started_at'),
  finishedAt: text('finished_at'),
  durationMs: integer('duration_ms'),
  summary: text('summary'),
  warnings: json('warnings'),
  output: json('output'),
  checkpoint: json('checkpoint'),
  error: text('error'),
}, (t) => [uniqueIndex('job_steps_job_step').on(t.jobId, t.stepId), index('job_steps_job').on(t.jobId)]);

export const approvals = sqliteTable('approvals', {
  id: text('id').primaryKey(),
  jobId: text('job_id').notNull().references(() => jobs.id),
  stepId: text('step_id').notNull(),
  hash: text('hash').notNull(),
  title: text('title').notNull(),
  facts: json('facts').notNull(),
  changedKeys: json('changed_keys').notNull(),
  diffText: text('diff_text').notNull(),
  state: text('state').notNull(),
  required: integer('required').notNull(),
  policy: json('policy').notNull(),
  requestedAt: text('requested_at').notNull(),
  expiresAt: text('expires_at').notNull(),
  decidedAt: text('decided_at'),
  rejectedBy: text('rejected_by'),
  /** the reason typed in the Reject modal (shown in the thread, written to the audit log) */
  rejectReason: text('reject_reason'),
  /** structured, redacted review of the change (ApprovalReview); null for requests without one */
  review: json('review'),
}, (t) => [index('approvals_job_step').on(t.jobId, t.stepId), index('approvals_state').on(t.state)]);

export const approvalVotes = sqliteTable('approval_votes', {
  approvalId: text('approval_id').notNull().references(() => approvals.id),
  user: text('user').notNull(),
  decision: text('decision').notNull(),
  at: text('at').notNull(),
}, (t) => [uniqueIndex('approval_votes_unique').on(t.approvalId, t.user)]);

/**
 * The Slack outbox: one row per logical message (`key` is its idempotency key). Once sent, a row keeps the
 * message's channel and ts, and `ref` names the thread parent's key: these are the stored Slack message
 * references a restart continues from.
 */
export const slackOutbox = sqliteTable('slack_outbox', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  key: text('key').notNull().unique(),
  kind: text('kind').notNull(),
  channel: text('channel').notNull(),
  ref: text('ref'),
  args: text('args').notNull(),
  state: text('state').notNull().default('pending'),
  ts: text('ts'),
  attempts: integer('attempts').notNull().default(0),
  notBefore: integer('not_before').notNull().default(0),
  dirty: integer('dirty').notNull().default(0),
  error: text('error'),
  /** ms since epoch when the row last became pending (outbox age metric) */
  enqueuedAt: integer('enqueued_at').notNull().default(0),
  /** posts of a higher priority go before earlier-queued posts of the same channel (approval requests) */
  priority: integer('priority').notNull().default(0),
  /** 1: a post whose sender died mid-request (row left `sending`): look for it in Slack (metadata key) before posting */
  verify: integer('verify').notNull().default(0),
}, (t) => [index('slack_outbox_due').on(t.state, t.notBefore)]);

export const auditEvents = sqliteTable('audit_events', {
  seq: integer('seq').primaryKey({ autoIncrement: true }),
  at: text('at').notNull(),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  jobId: text('job_id'),
  deployment: text('deployment'),
  valuesHash: text('values_hash'),
  decision: text('decision'),
  result: text('result'),
  details: json('details'),
  prevHash: text('prev_hash').notNull(),
  hash: text('hash').notNull(),
}, (t) => [index('audit_job').on(t.jobId)]);

export const sealedSecrets = sqliteTable('sealed_secrets', {
  id: text('id').primaryKey(),
  ciphertext: text('ciphertext'),
  iv: text('iv'),
  tag: text('tag'),
  createdAt: text('created_at').notNull(),
  purpose: text('purpose').notNull(),
  erasedAt: text('erased_at'),
});

/** Agent tokens re-bot created through the Astro API (ids and expiry, never values): `/re status` shows the live one's expiry. */
export const agentTokens = sqliteTable('agent_tokens', {
  /** the Astro token id */
  id: text('id').primaryKey(),
  deployment: text('deployment').notNull(),
  name: text('name').notNull(),
  endAt: text('end_at'),
  jobId: text('job_id'),
  createdAt: text('created_at').notNull(),
  deletedAt: text('deleted_at'),
}, (t) => [index('agent_tokens_deployment').on(t.deployment)]);

/**
 * Setup-wizard sessions between pages (src/slack/wizard.ts), so that any replica, or the bot after a restart,
 * answers the next page. `session` is JSON text holding sealed-secret ids and env/file ref names, never a typed secret.
 */
export const wizardSessions = sqliteTable('wizard_sessions', {
  /** the random UUID in the modal's private_metadata */
  key: text('key').primaryKey(),
  userId: text('user_id').notNull(),
  channel: text('channel').notNull(),
  createdAt: text('created_at').notNull(),
  /** ms since epoch */
  expiresAt: integer('expires_at').notNull(),
  session: text('session').notNull(),
}, (t) => [index('wizard_sessions_expires_at').on(t.expiresAt)]);
