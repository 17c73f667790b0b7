/**
 * The PostgreSQL twin of src/store/schema.ts: the same tables, columns, indexes and unique constraints, so one
 * repository layer can sit above both dialects. Types map as follows:
 *  - SQLite `text({ mode: 'json' })` → `json`, not `jsonb`: `json` keeps the text as written, key order included,
 *    as SQLite does; jsonb reorders keys, and the audit chain hashes `JSON.stringify(details)` of rows read back;
 *  - ms-since-epoch integers (leases, outbox pacing) → `bigint` in number mode (they overflow int4);
 *  - ISO-8601 timestamps stay `text`, written in the same `…T…Z` form, so rows compare equal across dialects;
 *  - SQLite autoincrement keys → identity columns.
 * test/store/pg.test.ts checks that the migrations of both dialects give the same tables and columns.
 *
 * One table has no SQLite twin: `slack_channel_leases`, the per-channel outbox sender lease (src/store/pg/claim.ts).
 * A single SQLite process is the only sender there, so it needs no lease.
 */
import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, json, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';

const ms = (name: string) => bigint(name, { mode: 'number' });

export const deployments = pgTable('deployments', {
  name: text('name').primaryKey(),
  astroId: text('astro_id'),
  lastSpec: json('last_spec'),
  updatedAt: text('updated_at').notNull(),
});

export const jobs = pgTable('jobs', {
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
  leaseExpiresAt: ms('lease_expires_at'),
  cancelRequested: boolean('cancel_requested').notNull().default(false),
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

export const jobSteps = pgTable('job_steps', {
  jobId: text('job_id').notNull().references(() => jobs.id),
  stepId: text('step_id').notNull(),
  number: integer('number').notNull(),
  title: text('title').notNull(),
  execOrder: integer('exec_order').notNull(),
  state: text('state').notNull(),
  attempt: integer('attempt').notNull().default(0),
  startedAt: text('started_at'),
  finishedAt: text('finished_at'),
  durationMs: ms('duration_ms'),
  summary: text('summary'),
  warnings: json('warnings'),
  output: json('output'),
  checkpoint: json('checkpoint'),
  error: text('error'),
}, (t) => [uniqueIndex('job_steps_job_step').on(t.jobId, t.stepId), index('job_steps_job').on(t.jobId)]);

export const approvals = pgTable('approvals', {
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
  rejectReason: text('reject_reason'),
  review: json('review'),
}, (t) => [index('approvals_job_step').on(t.jobId, t.stepId), index('approvals_state').on(t.state)]);

/** One vote per user per approval: two replicas receiving the same click insert one row (the other conflicts). */
export const approvalVotes = pgTable('approval_votes', {
  approvalId: text('approval_id').notNull().references(() => approvals.id),
  user: text('user').notNull(),
  decision: text('decision').notNull(),
  at: text('at').notNull(),
}, (t) => [uniqueIndex('approval_votes_unique').on(t.approvalId, t.user)]);

/** The Slack outbox (see src/store/schema.ts): `key` is the message's idempotency key. */
export const slackOutbox = pgTable('slack_outbox', {
  id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
  key: text('key').notNull().unique(),
  kind: text('kind').notNull(),
  channel: text('channel').notNull(),
  ref: text('ref'),
  args: text('args').notNull(),
  state: text('state').notNull().default('pending'),
  ts: text('ts'),
  attempts: integer('attempts').notNull().default(0),
  notBefore: ms('not_before').notNull().default(0),
  dirty: integer('dirty').notNull().default(0),
  error: text('error'),
  enqueuedAt: ms('enqueued_at').notNull().default(0),
  priority: integer('priority').notNull().default(0),
  /** 1: a post whose sender died mid-request (row left `sending`): look for it in Slack (metadata key) before posting */
  verify: integer('verify').notNull().default(0),
}, (t) => [index('slack_outbox_due').on(t.state, t.notBefore)]);

export const auditEvents = pgTable('audit_events', {
  seq: integer('seq').primaryKey().generatedByDefaultAsIdentity(),
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

export const sealedSecrets = pgTable('sealed_secrets', {
  id: text('id').primaryKey(),
  ciphertext: text('ciphertext'),
  iv: text('iv'),
  tag: text('tag'),
  createdAt: text('created_at').notNull(),
  purpose: text('purpose').notNull(),
  erasedAt: text('erased_at'),
});

/** Agent tokens re-bot created through the Astro API: ids, names, expiry, never values. */
export const agentTokens = pgTable('agent_tokens', {
  id: text('id').primaryKey(),
  deployment: text('deployment').notNull(),
  name: text('name').notNull(),
  endAt: text('end_at'),
  jobId: text('job_id'),
  createdAt: text('created_at').notNull(),
  deletedAt: text('deleted_at'),
}, (t) => [index('agent_tokens_deployment').on(t.deployment)]);

/**
 * Who sends a channel's outbox rows right now: one row per channel, taken when free or expired and renewed by
 * its holder (src/store/pg/claim.ts). Pacing (≤ 1 message/s/channel) holds across replicas because only the
 * holder posts to the channel.
 */
export const slackChannelLeases = pgTable('slack_channel_leases', {
  channel: text('channel').primaryKey(),
  owner: text('owner').notNull(),
  expiresAt: ms('expires_at').notNull(),
});

/** Setup-wizard sessions between pages: the same as SQLite's (sealed ids and ref names, never a typed secret). */
export const wizardSessions = pgTable('wizard_sessions', {
  key: text('key').primaryKey(),
  userId: text('user_id').notNull(),
  channel: text('channel').notNull(),
  createdAt: text('created_at').notNull(),
  expiresAt: ms('expires_at').notNull(),
  session: text('session').notNull(),
}, (t) => [index('wizard_sessions_expires_at').on(t.expiresAt)]);
