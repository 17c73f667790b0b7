CREATE TABLE `approval_votes` (
	`approval_id` text NOT NULL,
	`user` text NOT NULL,
	`decision` text NOT NULL,
	`at` text NOT NULL,
	FOREIGN KEY (`approval_id`) REFERENCES `approvals`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `approval_votes_unique` ON `approval_votes` (`approval_id`,`user`);--> statement-breakpoint
CREATE TABLE `approvals` (
	`id` text PRIMARY KEY NOT NULL,
	`job_id` text NOT NULL,
	`step_id` text NOT NULL,
	`hash` text NOT NULL,
	`title` text NOT NULL,
	`facts` text NOT NULL,
	`changed_keys` text NOT NULL,
	`diff_text` text NOT NULL,
	`state` text NOT NULL,
	`required` integer NOT NULL,
	`policy` text NOT NULL,
	`requested_at` text NOT NULL,
	`expires_at` text NOT NULL,
	`decided_at` text,
	`rejected_by` text,
	FOREIGN KEY (`job_id`) REFERENCES `jobs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `approvals_job_step` ON `approvals` (`job_id`,`step_id`);--> statement-breakpoint
CREATE INDEX `approvals_state` ON `approvals` (`state`);--> statement-breakpoint
CREATE TABLE `audit_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` text NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`job_id` text,
	`deployment` text,
	`values_hash` text,
	`decision` text,
	`result` text,
	`details` text,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_job` ON `audit_events` (`job_id`);--> statement-breakpoint
CREATE TABLE `deployments` (
	`name` text PRIMARY KEY NOT NULL,
	`astro_id` text,
	`last_spec` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `job_steps` (
	`job_id` text NOT NULL,
	`step_id` text NOT NULL,
	`number` integer NOT NULL,
	`title` text NOT NULL,
	`exec_order` integer NOT NULL,
	`state` text NOT NULL,
	`attempt` integer DEFAULT 0 NOT NULL,
	`started_at` text,
	`finished_at` text,
	`duration_ms` integer,
	`summary` text,
	`warnings` text,
	`output` text,
	`checkpoint` text,
	`error` text,
	FOREIGN KEY (`job_id`) REFERENCES `jobs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `job_steps_job_step` ON `job_steps` (`job_id`,`step_id`);--> statement-breakpoint
CREATE INDEX `job_steps_job` ON `job_steps` (`job_id`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`deployment` text NOT NULL,
	`state` text NOT NULL,
	`attempt` integer DEFAULT 1 NOT NULL,
	`requested_by` text NOT NULL,
	`origin` text NOT NULL,
	`spec` text NOT NULL,
	`plan` text NOT NULL,
	`values_hash` text NOT NULL,
	`chart` text NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`error` text,
	`created_at` text NOT NULL,
	`started_at` text,
	`finished_at` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `jobs_deployment_created` ON `jobs` (`deployment`,`created_at`);--> statement-breakpoint
CREATE INDEX `jobs_state` ON `jobs` (`state`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`idempotency_key` text NOT NULL,
	`channel` text NOT NULL,
	`kind` text NOT NULL,
	`target_key` text,
	`payload` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`not_before` integer DEFAULT 0 NOT NULL,
	`created_at` text NOT NULL,
	`sent_ts` text,
	`last_error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `outbox_idempotency_key_unique` ON `outbox` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `outbox_state_not_before` ON `outbox` (`state`,`not_before`);--> statement-breakpoint
CREATE TABLE `sealed_secrets` (
	`id` text PRIMARY KEY NOT NULL,
	`ciphertext` text,
	`iv` text,
	`tag` text,
	`created_at` text NOT NULL,
	`purpose` text NOT NULL,
	`erased_at` text
);
--> statement-breakpoint
CREATE TABLE `slack_messages` (
	`job_id` text NOT NULL,
	`kind` text NOT NULL,
	`key` text NOT NULL,
	`channel` text NOT NULL,
	`thread_ts` text,
	`message_ts` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `slack_messages_key` ON `slack_messages` (`key`);--> statement-breakpoint
CREATE INDEX `slack_messages_job` ON `slack_messages` (`job_id`);