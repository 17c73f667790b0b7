/**
 * The job worker renders Slack progress through an enqueue-only `OutboxWriter` on its own connection to the
 * store; the Slack process's `Outbox` (another connection to the same SQLite file) is the only sender.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryOutboxStore, OutboxWriter, SqliteOutboxStore } from '../../src/slack/outbox.ts';
import { openStore, type Store } from '../../src/store/db.ts';
import { scratchDir } from '../e2e/support.ts';
import { at, fakeOutbox, useStartedOutboxes } from './outbox-fakes.ts';

const started = useStartedOutboxes();
let opened: Store[] = [];
afterEach(() => {
  for (const s of opened) s.close();
  opened = [];
});

/** two connections to one database file, as the Slack process and the job worker have */
function twoProcesses(pollMs: number) {
  const path = join(scratchDir('outbox-writer'), 'bot.db');
  const a = openStore({ path });
  const b = openStore({ path });
  opened.push(a, b);
  let nudges = 0;
  const writer = new OutboxWriter(new SqliteOutboxStore(b.sqlite), () => nudges++);
  const sender = started(fakeOutbox({ store: new SqliteOutboxStore(a.sqlite), pacingMs: 100, pollMs }));
  return { writer, ...sender, nudges: () => nudges };
}

describe('enqueue-only outbox writer (job worker) and the one sender (Slack process)', () => {
  it('sends nothing itself; the sender sends its rows when woken, without waiting for its poll', async () => {
    const { writer, outbox, slack, nudges } = twoProcesses(60_000);
    await at(10); // the sender's start-up look: nothing yet
    writer.post('job:1:parent', 'C1', { text: 'checklist' });
    writer.post('job:1:a1:step:prerequisites', 'C1', { text: '1. Prerequisites done' }, 'job:1:parent');
    writer.update('job:1:parent', 'C1', { text: 'checklist, step 1 done' });
    await writer.flushed();
    expect(nudges()).toBe(3); // one per write, once it is stored; the worker coalesces them into few IPC messages
    await at(50);
    expect(slack.calls).toEqual([]); // the poll is a minute away, and the writer never sends
    outbox.wake();
    await at(60);
    expect(slack.texts('C1')).toEqual(['checklist']);
    expect(slack.to('chat.update').map((c) => c.args.text)).toEqual(['checklist, step 1 done']);
    await at(160); // paced: the reply may go 100 ms after the parent; it waits for a wake or a poll
    expect(slack.texts('C1')).toEqual(['checklist']);
    outbox.wake();
    await at(170); // threaded under the parent
    expect(slack.texts('C1')).toEqual(['checklist', '1. Prerequisites done']);
    expect(slack.to('chat.postMessage')[1].args.thread_ts).toBe(slack.to('chat.postMessage')[0].ts);
  });

  it('a key written by both processes is posted once', async () => {
    const { writer, outbox, slack } = twoProcesses(20);
    outbox.post('job:1:parent', 'C1', { text: 'posted by the Slack process at submit' });
    writer.post('job:1:parent', 'C1', { text: 'the worker, on the job starting' });
    expect(await writer.has('job:1:parent')).toBe(true);
    await at(500);
    writer.post('job:1:parent', 'C1', { text: 'again, after it was sent' });
    writer.post('job:1:a1:final', 'C1', { text: 'final' }, 'job:1:parent');
    writer.post('job:1:a1:final', 'C1', { text: 'final again' }, 'job:1:parent');
    await at(1000);
    expect(slack.texts('C1')).toEqual(['posted by the Slack process at submit', 'final']);
  });

  it('an update the worker writes while the sender has that update in flight is sent after it, newest args', async () => {
    const { writer, slack } = twoProcesses(20);
    writer.post('job:1:parent', 'C1', { text: 'v0' });
    await at(100);
    const release = slack.hold('chat.update');
    writer.update('job:1:parent', 'C1', { text: 'v1' });
    await at(200);
    expect(slack.to('chat.update').map((c) => c.args.text)).toEqual(['v1']); // in flight
    writer.update('job:1:parent', 'C1', { text: 'v2' });
    writer.update('job:1:parent', 'C1', { text: 'v3' });
    release();
    await at(600);
    expect(slack.to('chat.update').map((c) => c.args.text)).toEqual(['v1', 'v3']);
  });

  it('a writer with no one to nudge still enqueues (the sender finds the rows at its next poll)', async () => {
    const store = new MemoryOutboxStore();
    const writer = new OutboxWriter(store);
    writer.post('job:2:parent', 'C2', { text: 'checklist' });
    writer.update('job:2:parent', 'C2', { text: 'checklist, step 1 done' });
    expect(await writer.has('job:2:parent')).toBe(true);
    expect(await writer.argsOf('job:2:parent')).toEqual({ text: 'checklist, step 1 done' });
  });
});
