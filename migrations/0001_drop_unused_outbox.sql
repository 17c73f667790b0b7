DROP TABLE `outbox`;--> statement-breakpoint
DROP TABLE `slack_messages`;