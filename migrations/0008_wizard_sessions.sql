CREATE TABLE `wizard_sessions` (
	`key` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`channel` text NOT NULL,
	`created_at` text NOT NULL,
	`expires_at` integer NOT NULL,
	`session` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `wizard_sessions_expires_at` ON `wizard_sessions` (`expires_at`);