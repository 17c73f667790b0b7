-- Before 0005 makes "one active job per deployment" a unique index: a DB where a deployment has more than one
-- queued/running/waiting_approval job (the engine's check-then-insert never allowed it, but a DB edited by hand
-- or written by a buggy build could) would fail that CREATE UNIQUE INDEX and never open again. Keep the oldest
-- active job of each deployment (the one `re-bot status` showed as the lock holder); fail the others, with a
-- message saying why, and supersede their pending approvals. Retrying a failed job later is refused while the
-- deployment is locked, as usual. No audit rows: the hash chain is written by the application, not by SQL.
UPDATE `approvals` SET `state` = 'superseded', `decided_at` = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
WHERE `state` = 'pending' AND `job_id` IN (
  SELECT j.`id` FROM `jobs` j
  WHERE j.`state` IN ('queued', 'running', 'waiting_approval')
    AND EXISTS (SELECT 1 FROM `jobs` o WHERE o.`deployment` = j.`deployment` AND o.`state` IN ('queued', 'running', 'waiting_approval')
      AND (o.`created_at` < j.`created_at` OR (o.`created_at` = j.`created_at` AND o.`rowid` < j.`rowid`)))
);--> statement-breakpoint
UPDATE `jobs` SET `state` = 'failed',
  `error` = 'failed by an upgrade of re-bot: another job of this deployment was already active (only one may be); retry it when that job is done',
  `finished_at` = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), `updated_at` = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
  `lease_owner` = NULL, `lease_expires_at` = NULL
WHERE `state` IN ('queued', 'running', 'waiting_approval')
  AND EXISTS (SELECT 1 FROM `jobs` o WHERE o.`deployment` = `jobs`.`deployment` AND o.`state` IN ('queued', 'running', 'waiting_approval')
    AND (o.`created_at` < `jobs`.`created_at` OR (o.`created_at` = `jobs`.`created_at` AND o.`rowid` < `jobs`.`rowid`)));
