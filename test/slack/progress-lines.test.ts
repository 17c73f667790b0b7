/**
 * A step that prints a burst of progress lines (helm's output) shows its newest line in the thread's parent
 * message, without one Block Kit rendering and outbox write per line (Slack shows an update of the parent once
 * per pacing interval at most, so the lines in between were never seen anyway).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/wire.ts';
import type { StepHandler } from '../../src/checklist/types.ts';
import { OutboxWriter } from '../../src/slack/outbox.ts';
import { attachProgress, parentKey } from '../../src/slack/progress.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';

let rt: Runtime | undefined;
afterAll(() => rt?.close());

let release: () => void = () => {};
const held = new Promise<void>((r) => (release = r));
const handlers: StepHandler[] = STEP_IDS.map((id) => ({
  id,
  async run(ctx) {
    if (id === 'prerequisites') {
      // as helm prints them: a line every few milliseconds, each in its own turn of the event loop
      for (let i = 0; i < 200; i++) {
        ctx.progress(`helm output line ${i}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      await held;
    }
    return { status: 'succeeded', summary: `${id} ok` };
  },
}));

it("a burst of 200 progress lines: the parent shows the newest, rendered a few times per second, not once per line", async () => {
  rt = await createRuntime({ dbPath: join(mkdtempSync(join(tmpdir(), 're-bot-lines-')), 'db.sqlite'), handlers, infraFor: async () => ({}) as never, pollMs: 20 });
  const outbox = new OutboxWriter(rt.repo.outbox);
  const parentWrites: string[] = [];
  const update = outbox.update.bind(outbox);
  outbox.update = (key, channel, args) => {
    if (key.endsWith(':parent')) parentWrites.push(JSON.stringify(args));
    update(key, channel, args);
  };
  const detach = attachProgress(rt.engine, outbox);
  const loaded = await loadSpecFile(join(import.meta.dirname, '..', '..', 'examples', 'aws-minimal.yaml'));
  if (!loaded.ok) throw new Error('example spec does not parse');
  rt.engine.start();
  const started = Date.now();
  const job = await rt.engine.submit({ spec: loaded.spec, requestedBy: { id: 'U0REQ' }, origin: { kind: 'slack', channel: 'C0LINES' } });
  const parentArgs = async () => JSON.stringify((await outbox.argsOf(parentKey(job.id))) ?? {});
  const deadline = Date.now() + 10_000;
  while (!(await parentArgs()).includes('helm output line 199') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  expect(await parentArgs()).toContain('helm output line 199');
  expect(parentWrites.filter((w) => w.includes('helm output line')).length).toBeLessThanOrEqual(Math.ceil((Date.now() - started) / 250) + 2);
  release();
  expect((await rt.engine.settled(job.id)).state).toBe('succeeded');
  await detach();
}, 30_000);

it('the finished checklist is written before the final reply: a kill between them cannot leave the parent showing a running step', async () => {
  const rt2 = await createRuntime({ dbPath: join(mkdtempSync(join(tmpdir(), 're-bot-final-')), 'db.sqlite'), handlers, infraFor: async () => ({}) as never, pollMs: 20 });
  try {
    release();
    const outbox = new OutboxWriter(rt2.repo.outbox);
    let lastParent = '';
    let parentAtFinal: string | undefined;
    const update = outbox.update.bind(outbox);
    outbox.update = (key, channel, args) => {
      if (key.endsWith(':parent')) lastParent = ((args.blocks as any[]) ?? []).find((b) => b.block_id === 'steps')?.text?.text ?? '';
      update(key, channel, args);
    };
    const post = outbox.post.bind(outbox);
    outbox.post = (key, ...rest) => {
      if (key.endsWith(':final')) parentAtFinal = lastParent;
      post(key, ...rest);
    };
    const detach = attachProgress(rt2.engine, outbox);
    const loaded = await loadSpecFile(join(import.meta.dirname, '..', '..', 'examples', 'aws-minimal.yaml'));
    if (!loaded.ok) throw new Error('example spec does not parse');
    rt2.engine.start();
    const job = await rt2.engine.submit({ spec: loaded.spec, requestedBy: { id: 'U0REQ' }, origin: { kind: 'slack', channel: 'C0FINAL' } });
    expect((await rt2.engine.settled(job.id)).state).toBe('succeeded');
    await detach();
    const lines = (parentAtFinal ?? '').split('\n').filter(Boolean);
    expect(lines).toHaveLength(8);
    for (const line of lines) expect(line).toMatch(/— (succeeded|warned|skipped)\b/);
  } finally {
    await rt2.close();
  }
}, 30_000);
