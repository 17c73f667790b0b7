import { existsSync, readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { FakeEngine } from '../support/fake-engine.ts';
import { startHarness, wizardPages, APPROVER, CHANNEL, REQUESTER, SECRETS, until, type Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('no secret typed in the wizard reaches a Slack payload, an ack, the DB in plaintext, or the logs', async () => {
  const engine = new FakeEngine({ approvers: ['S0APPROVERS'], required: 1, allowSelfApproval: false, expiresInMs: 3600_000 });
  engine.failOnce.add('verify');
  h = await startHarness({ engine, deployments: () => ['sales-prod'] });
  const pages = wizardPages();
  // a page that fails validation with the secrets typed: the errors must not echo them
  const bad = await h.wizard(REQUESTER, [{ ...pages[0], 'cluster.namespace': `ns-${SECRETS.apiToken}` }]);
  expect(bad.response_action).toBe('errors');
  for (const p of pages) await h.page(REQUESTER, p);
  const job = await until(async () => (await engine.latestJobFor('sales-prod')), 3000, 'job');
  await engine.settled(job.id);
  await h.rt.outbox.idle();
  const approval = h.emu.replies(CHANNEL, h.parentTs(job.id)!).find((m) => JSON.stringify(m.blocks).includes('re_approve'))!;
  await h.press(APPROVER, approval.ts, 're_approve');
  await until(async () => (await engine.job(job.id))!.state === 'failed', 3000, 'failure');
  await h.command(REQUESTER, `retry ${job.id}`);
  await until(async () => (await engine.job(job.id))!.state === 'succeeded', 3000, 'success');
  await h.rt.outbox.idle();
  await h.command(REQUESTER, 'status sales-prod');

  // sealed with the real AES-256-GCM box, referenced by id in the spec
  expect([...h.vault.values.values()].sort()).toEqual(Object.values(SECRETS).sort());
  const spec = JSON.stringify(engine.submitted[0]);
  for (const id of h.vault.values.keys()) expect(spec).toContain(id);
  const sealed = h.store.sqlite.prepare('SELECT id, ciphertext FROM sealed_secrets').all() as Array<{ id: string; ciphertext: string }>;
  expect(sealed.map((r) => r.id).sort()).toEqual([...h.vault.values.keys()].sort());

  const payloads = h.emu.allPayloadText() + h.acks.join('\n') + JSON.stringify([...h.emu.views.values()].map((v) => v.view));
  const logs = h.logs.join('\n');
  h.store.sqlite.pragma('wal_checkpoint(PASSIVE)');
  const dbBytes = [h.dbPath, `${h.dbPath}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f, 'latin1')).join('');
  expect(dbBytes).toContain('job:'); // the outbox rows really are in these files
  expect(payloads).toContain('Git token/password: set');
  for (const s of Object.values(SECRETS)) {
    expect(payloads).not.toContain(s);
    expect(logs).not.toContain(s);
    expect(dbBytes).not.toContain(s);
    expect(dbBytes).not.toContain(Buffer.from(s).toString('base64'));
  }
});
