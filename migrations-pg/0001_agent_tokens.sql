CREATE TABLE "agent_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"deployment" text NOT NULL,
	"name" text NOT NULL,
	"end_at" text,
	"job_id" text,
	"created_at" text NOT NULL,
	"deleted_at" text
);
--> statement-breakpoint
CREATE INDEX "agent_tokens_deployment" ON "agent_tokens" USING btree ("deployment");