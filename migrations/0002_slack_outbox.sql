CREATE TABLE `slack_outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`key` text NOT NULL,
	`kind` text NOT NULL,
	`channel` text NOT NULL,
	`ref` text,
	`args` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`ts` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`not_before` integer DEFAULT 0 NOT NULL,
	`dirty` integer DEFAULT 0 NOT NULL,
	`error` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `slack_outbox_key_unique` ON `slack_outbox` (`key`);--> statement-breakpoint
CREATE INDEX `slack_outbox_due` ON `slack_outbox` (`state`,`not_before`);