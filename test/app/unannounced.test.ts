/**
 * An approval whose Slack message died with a killed worker (the request committed, its event never rendered)
 * is announced by the next worker: the message is queued once, and a second check queues nothing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { announceUnannounced } from '../../src/app/unannounced.ts';
import { createRuntime, type Runtime } from '../../src/app/wire.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { OutboxWriter } from '../../src/slack/outbox.ts';
import { approvalKey, attachProgress } from '../../src/slack/progress.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';

let rt: Runtime | undefined;
afterAll(() => rt?.close());

const handlers: StepHandler[] = STEP_IDS.map((id) => ({
  id,
  async run(ctx) {
    if (id === 'agents') await ctx.requireApproval({ title: 'helm upgrade --install', hash: `h-${ctx.plan.valuesHash}`, diffText: '+ image: x', changedKeys: ['image'], facts: {} });
    return { status: 'succeeded', summary: `${id} ok` };
  },
}));

it('queues the approval message a killed worker never wrote, once', async () => {
  rt = await createRuntime({ dbPath: join(mkdtempSync(join(tmpdir(), 're-bot-unannounced-')), 'db.sqlite'), handlers, infraFor: async () => ({}) as never, pollMs: 20, policy: { approvers: ['U0APPROVER'] } });
  const outbox = new OutboxWriter(rt.repo.outbox);
  const detach = attachProgress(rt.engine, outbox);
  const loaded = await loadSpecFile(join(import.meta.dirname, '..', '..', 'examples', 'aws-minimal.yaml'));
  if (!loaded.ok) throw new Error('example spec does not parse');
  rt.engine.start();
  const job = await rt.engine.submit({ spec: loaded.spec, requestedBy: { id: 'U0REQ' }, origin: { kind: 'slack', channel: 'C0UNANN' } });
  const waiting = await rt.engine.settled(job.id);
  expect(waiting.state).toBe('waiting_approval');
  await detach();
  const key = approvalKey(job.id, waiting.approvals[0]!.id);
  expect(await outbox.has(key)).toBe(true);
  expect(await announceUnannounced(rt.repo, rt.engine, (k) => outbox.has(k))).toBe(0);

  // the worker died between committing the request and rendering its message
  rt.db!.prepare('DELETE FROM slack_outbox WHERE key = ?').run(key);
  const next = new OutboxWriter(rt.repo.outbox);
  const detachNext = attachProgress(rt.engine, next);
  expect(await announceUnannounced(rt.repo, rt.engine, (k) => next.has(k))).toBe(1);
  await detachNext();
  const row = rt.db!.prepare('SELECT kind, args FROM slack_outbox WHERE key = ?').get(key) as { kind: string; args: string };
  expect(row.kind).toBe('post');
  expect(row.args).toContain('re_approve');
  expect(await announceUnannounced(rt.repo, rt.engine, (k) => next.has(k))).toBe(0);
}, 30_000);
