ALTER TABLE `approvals` ADD `reject_reason` text;--> statement-breakpoint
ALTER TABLE `approvals` ADD `review` text;--> statement-breakpoint
ALTER TABLE `slack_outbox` ADD `priority` integer DEFAULT 0 NOT NULL;