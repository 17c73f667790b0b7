/**
 * `re-bot worker`: runs setup jobs for a `re-bot start` process that forked it (src/app/job-worker.ts).
 * Same store, same approver policy (from the same environment). It renders its jobs' Slack progress into the
 * shared outbox (enqueue-only: the Slack process sends), tells the Slack process when it wrote rows, and
 * reports a lean copy of each state event over IPC.
 */
import { resolve } from 'node:path';
import { createRuntime } from '../app/wire.ts';
import { ACTIVE_JOBS_SQL, outboxNudger, relayedEvent, workerIdleSecondsFromEnv, type FromWorker, type ToWorker } from '../app/job-worker.ts';
import { logger } from '../log.ts';
import { errorMessage } from '../redact.ts';
import { approvalPolicyFrom, loadSlackConfig } from '../slack/config.ts';
import { defaultDbPath } from '../store/db.ts';
import { OutboxWriter } from '../slack/outbox.ts';
import { attachProgress } from '../slack/progress.ts';
import { announceUnannounced } from '../app/unannounced.ts';

export async function run(_args: string[]): Promise<number> {
  if (!process.send) {
    process.stderr.write('re-bot worker runs under `re-bot start`, which starts it; it is not a command to run by hand\n');
    return 2;
  }
  const log = logger().child({ component: 'job-worker' });
  const concurrency = Number(process.env.RE_BOT_CONCURRENCY ?? 2);
  const idleSeconds = workerIdleSecondsFromEnv(process.env);
  // the worker is not given the Slack credentials (src/infra/child-env.ts workerEnv); the approval policy is
  // read from the RE_BOT_* variables alone, the Slack ones stand in only to satisfy the shared parser
  const policyEnv = { ...process.env, RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-not-given-to-the-worker', SLACK_SIGNING_SECRET: 'not-given-to-the-worker' };
  const config = loadSlackConfig(policyEnv);
  const rt = await createRuntime({ dbPath: resolve(defaultDbPath()), databaseUrl: process.env.RE_BOT_DATABASE_URL?.trim() || undefined, policy: approvalPolicyFrom(config), concurrency });
  const tell = (m: FromWorker) => {
    if (process.connected) process.send!(m);
  };
  // Slack progress is rendered here, where the events happen; the Slack process only sends the rows
  const nudge = outboxNudger(() => tell({ type: 'outbox' }));
  const outbox = new OutboxWriter(rt.repo.outbox, nudge, log);
  const detachProgress = attachProgress(rt.engine, outbox, log, { approvers: config.approvers });
  rt.engine.on((event) => {
    const lean = relayedEvent(event);
    if (lean) tell({ type: 'event', event: lean });
  });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      try {
        await rt.engine.stop(); // aborts running steps; their jobs stay resumable
        await detachProgress(); // after the last event: writes the checklist updates still coalescing
        tell({ type: 'outbox' });
        await rt.close();
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'job worker: stopping failed');
      }
    })());
  await new Promise<void>((done) => {
    process.on('message', (m: ToWorker) => {
      if (m.type === 'kick') void rt.engine.tick();
      else if (m.type === 'cancel') rt.engine.interrupt(m.jobId);
      else if (m.type === 'stop') void stop().then(done);
    });
    // the Slack process died: stop cleanly rather than run on unobserved
    process.on('disconnect', () => void stop().then(done));
    process.once('SIGTERM', () => void stop().then(done));
    process.once('SIGINT', () => void stop().then(done));
    rt.engine.start();
    tell({ type: 'ready', pid: process.pid });
    const announce = () =>
      void (stopping ? Promise.resolve(0) : announceUnannounced(rt.repo, rt.engine, (key) => outbox.has(key)))
        .then((n) => n && log.warn({ approvals: n }, 'announced approvals whose Slack message was lost with a killed worker'))
        .catch((err) => log.error({ err: errorMessage(err) }, 'could not check for unannounced approvals'));
    announce();
    const announcer = setInterval(announce, 30_000);
    announcer.unref();
    // no queued, running or waiting job for the idle period: exit (the Slack process forks a new worker on
    // the next decision that gives it work); waiting approvals keep it up, it expires them
    const active = rt.db?.prepare(ACTIVE_JOBS_SQL);
    const idleMs = idleSeconds * 1000;
    let idleSince = Date.now();
    let asking = false;
    const idleTimer = setInterval(async () => {
      if (stopping || asking) return;
      let busy = true;
      asking = true;
      try {
        busy = active ? Boolean((active.get() as { active: number }).active) : await rt.repo.metrics.hasActiveJobs();
      } catch {
        /* DB busy or unreachable: ask again next time */
      } finally {
        asking = false;
      }
      if (stopping) return;
      if (busy) idleSince = Date.now();
      else if (Date.now() - idleSince >= idleMs) {
        clearInterval(idleTimer);
        log.info({ idleSeconds }, 'job worker idle: exiting');
        tell({ type: 'idle' });
        void stop().then(done);
      }
    }, Math.max(50, Math.min(5000, idleMs / 4)));
    idleTimer.unref();
  });
  // the IPC channel would keep this process alive
  if (process.connected) process.disconnect();
  return 0;
}
