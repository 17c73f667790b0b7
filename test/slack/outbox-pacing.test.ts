/**
 * Pacing, measured on a fake clock: Slack allows about one chat.postMessage per second per channel, so the
 * outbox spaces a channel's posts by `pacingMs` (default 1000 ms, counted from when Slack *answered* the
 * previous one), keeps each channel's order and threads, and never lets one channel, an update or an
 * ephemeral wait on another's pacing.
 */
import { describe, expect, it, vi } from 'vitest';
import { STORES, at, fakeOutbox, settle, stopNow, useStartedOutboxes } from './outbox-fakes.ts';
import { WebAPIHTTPError } from '@slack/web-api';

const started = useStartedOutboxes();

describe('outbox pacing (fake clock)', () => {
  it('posts to one channel go out exactly 1 s apart by default, in the order they were queued', async () => {
    const { outbox, slack } = started(fakeOutbox());
    for (const t of ['one', 'two', 'three']) outbox.post(t, 'C1', { text: t });
    await at(999);
    expect(slack.texts('C1')).toEqual(['one']);
    await at(5000);
    expect(slack.posted('C1').map((c) => [c.args.text, c.at])).toEqual([['one', 0], ['two', 1000], ['three', 2000]]);
  });

  it('a post waiting for its slot goes out on the next poll (every 200 ms, or pollMs) after the slot opens', async () => {
    const dflt = started(fakeOutbox());
    await at(130);
    dflt.outbox.post('a', 'C1', { text: 'a' });
    dflt.outbox.post('b', 'C1', { text: 'b' });
    await at(3000);
    // a at once (enqueueing wakes the outbox), b 1 s after a: 1130 is not a poll, 1200 is
    expect(dflt.slack.posted().map((c) => c.at)).toEqual([130, 1200]);
    await stopNow(dflt.outbox);

    const custom = started(fakeOutbox({ pollMs: 50 }));
    const t = Date.now();
    custom.outbox.post('a', 'C1', { text: 'a' });
    custom.outbox.post('b', 'C1', { text: 'b' });
    await vi.advanceTimersByTimeAsync(3000);
    expect(custom.slack.posted().map((c) => c.at + 1_800_000_000_000 - t)).toEqual([0, 1000]);
  });

  it('writes in quick succession share a poll: with minPollGapMs 25, ephemerals queued every 5 ms go out in batches 25 ms apart', async () => {
    const { outbox, slack } = started(fakeOutbox({ minPollGapMs: 25, pollMs: 10_000 }));
    await at(100);
    for (let i = 0; i < 6; i++) {
      outbox.ephemeral(`e${i}`, 'C1', 'U1', { text: `e${i}` });
      await at(100 + 5 * (i + 1));
    }
    await at(300);
    const sentAt = slack.to('chat.postEphemeral').map((c) => c.at);
    expect(sentAt).toHaveLength(6);
    // the first at once (no poll for a while), the rest on polls at least 25 ms apart, not one poll per write
    expect(sentAt[0]).toBe(100);
    expect(new Set(sentAt).size).toBeLessThan(6);
    const polls = [...new Set(sentAt)];
    for (let i = 1; i < polls.length; i++) expect(polls[i] - polls[i - 1]).toBeGreaterThanOrEqual(25);
  });

  it('a short pacing polls at the pacing: pacingMs 30 posts every 30 ms', async () => {
    const { outbox, slack } = started(fakeOutbox({ pacingMs: 30 }));
    for (let i = 0; i < 4; i++) outbox.post(`p${i}`, 'C1', { text: `p${i}` });
    await at(1000);
    expect(slack.posted().map((c) => c.at)).toEqual([0, 30, 60, 90]);
  });

  it('counts the pacing from Slack’s answer: a slow post (1.5 s) is followed 1 s after it was answered', async () => {
    const { outbox, slack } = started(fakeOutbox({ pollMs: 100 }));
    slack.latencyMs['chat.postMessage'] = 1500;
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('b', 'C1', { text: 'b' });
    await at(2400);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0]); // b neither during a's request nor 1 s after it started
    await at(6000);
    expect(slack.to('chat.postMessage').map((c) => [c.args.text, c.at, c.doneAt])).toEqual([['a', 0, 1500], ['b', 2500, 4000]]);
  });

  it('channels are paced independently: two channels’ posts are in flight at the same time', async () => {
    const { outbox, slack } = started(fakeOutbox({ pollMs: 100 }));
    slack.latencyMs['chat.postMessage'] = 500;
    outbox.post('a1', 'C1', { text: 'a1' });
    outbox.post('b1', 'C2', { text: 'b1' });
    outbox.post('a2', 'C1', { text: 'a2' });
    outbox.post('b2', 'C2', { text: 'b2' });
    await at(4000);
    const times = (ch: string) => slack.posted(ch).map((c) => c.at);
    expect(times('C1')).toEqual([0, 1500]);
    expect(times('C2')).toEqual([0, 1500]);
  });

  it('an update is not held by a post of its channel in flight or waiting for its slot', async () => {
    const { outbox, slack } = started(fakeOutbox({ pollMs: 100 }));
    outbox.post('p', 'C1', { text: 'status' });
    await at(10);
    slack.latencyMs['chat.postMessage'] = 2000;
    outbox.post('q', 'C1', { text: 'next' }); // waits for the 1 s slot, then 2 s in flight
    await at(1100);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 1000]);
    outbox.update('p', 'C1', { text: 'status: edited' });
    await at(1100);
    expect(slack.to('chat.update').map((c) => [c.args.text, c.at, c.args.ts])).toEqual([['status: edited', 1100, slack.posted('C1')[0].ts]]);
  });

  it('an update or an ephemeral answered in a channel does not restart that channel’s post pacing', async () => {
    const { outbox, slack } = started(fakeOutbox({ pollMs: 10 }));
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('b', 'C1', { text: 'b' });
    await at(500);
    slack.latencyMs['chat.update'] = 300;
    slack.latencyMs['chat.postEphemeral'] = 400;
    outbox.update('a', 'C1', { text: 'a edited' });
    outbox.ephemeral('e', 'C1', 'U1', { text: 'psst' });
    await at(2000);
    expect(slack.to('chat.update').map((c) => c.doneAt)).toEqual([800]);
    expect(slack.to('chat.postEphemeral').map((c) => c.doneAt)).toEqual([900]);
    expect(slack.posted('C1').map((c) => c.at)).toEqual([0, 1000]);
  });

  it('updates of one message are coalesced and spaced by updateIntervalMs (default: the post pacing)', async () => {
    const dflt = started(fakeOutbox({ pollMs: 10 }));
    dflt.outbox.post('p', 'C1', { text: 'v0' });
    await at(10);
    dflt.outbox.update('p', 'C1', { text: 'v1' });
    await at(20);
    for (let i = 2; i <= 5; i++) dflt.outbox.update('p', 'C1', { text: `v${i}` });
    await at(5000);
    expect(dflt.slack.to('chat.update').map((c) => [c.args.text, c.at])).toEqual([['v1', 10], ['v5', 1010]]);
    await stopNow(dflt.outbox);

    const fast = started(fakeOutbox({ updateIntervalMs: 300, pollMs: 50 }));
    fast.outbox.post('p', 'C1', { text: 'v0' });
    await vi.advanceTimersByTimeAsync(50);
    const t = Date.now() - 1_800_000_000_000;
    fast.outbox.update('p', 'C1', { text: 'v1' });
    await settle();
    fast.outbox.update('p', 'C1', { text: 'v2' });
    await vi.advanceTimersByTimeAsync(2000);
    expect(fast.slack.to('chat.update').map((c) => [c.args.text, c.at - t])).toEqual([['v1', 0], ['v2', 300]]);
  });

  it('updates of different messages do not wait for each other', async () => {
    const { outbox, slack } = started(fakeOutbox({ pollMs: 100 }));
    outbox.post('p1', 'C1', { text: 'one' });
    outbox.post('p2', 'C2', { text: 'two' });
    await at(10);
    slack.latencyMs['chat.update'] = 400;
    outbox.update('p1', 'C1', { text: 'one edited' });
    outbox.update('p2', 'C2', { text: 'two edited' });
    outbox.update('p1', 'C1', { text: 'one edited again' });
    await at(2000);
    expect(slack.to('chat.update').map((c) => [c.args.text, c.at])).toEqual([['one edited again', 10], ['two edited', 10]]);
  });

  it('at most 4 ephemerals are in flight; the next goes out the moment one is answered', async () => {
    const { outbox, slack } = started(fakeOutbox());
    slack.latencyMs['chat.postEphemeral'] = 1050;
    for (let i = 1; i <= 6; i++) outbox.ephemeral(`e${i}`, 'C1', `U${i}`, { text: `only for U${i}` });
    outbox.post('p', 'C1', { text: 'progress' });
    await at(1000);
    expect(slack.to('chat.postEphemeral').map((c) => c.at)).toEqual([0, 0, 0, 0]);
    expect(slack.texts('C1')).toEqual(['progress']); // ephemerals never hold up a channel's posts
    await at(5000);
    expect(slack.to('chat.postEphemeral').map((c) => [c.args.user, c.args.channel, c.at])).toEqual([
      ['U1', 'C1', 0], ['U2', 'C1', 0], ['U3', 'C1', 0], ['U4', 'C1', 0], ['U5', 'C1', 1051], ['U6', 'C1', 1051],
    ]); // (the fake clock runs a callback queued inside a timer 1 ms later; the next poll would be at 1200)
    expect(slack.to('chat.postEphemeral').every((c) => c.args.text === `only for ${c.args.user}`)).toBe(true);
  });
});

for (const [name, make] of STORES) {
  describe(`outbox order per channel (${name} store, fake clock)`, () => {
    it('replies go out after their parent, threaded under its ts, in the order queued', async () => {
      const { outbox, slack } = started(fakeOutbox({ store: make(), pacingMs: 100, pollMs: 10 }));
      slack.latencyMs['chat.postMessage'] = 30;
      outbox.post('p', 'C1', { text: 'job started' });
      for (let i = 1; i <= 3; i++) outbox.post(`r${i}`, 'C1', { text: `step ${i}` }, 'p');
      outbox.post('x', 'C2', { text: 'other job' });
      await at(2000);
      const [parent, ...replies] = slack.posted('C1');
      // every post carries its outbox key in the message metadata (looked up after a crash)
      expect(parent.args).toEqual({ text: 'job started', channel: 'C1', metadata: { event_type: 're_bot_outbox', event_payload: { key: 'p' } } });
      expect(replies.map((c) => [c.args.text, c.args.thread_ts])).toEqual([['step 1', parent.ts], ['step 2', parent.ts], ['step 3', parent.ts]]);
      expect(replies.map((c) => c.at)).toEqual([130, 260, 390]);
      expect(slack.posted('C2').map((c) => [c.args.text, c.at, c.args.thread_ts])).toEqual([['other job', 0, undefined]]);
      expect(await outbox.tsOf('r3')).toBe(replies[2].ts);
    });

    it('a priority post waits for its thread parent, then overtakes replies queued before it', async () => {
      const { outbox, slack } = started(fakeOutbox({ store: make(), pacingMs: 100, pollMs: 10 }));
      outbox.post('p', 'C1', { text: 'parent' });
      outbox.post('r1', 'C1', { text: 'step 1' }, 'p');
      outbox.post('low', 'C1', { text: 'note' }, 'p', 1);
      outbox.post('high', 'C1', { text: 'approve?' }, 'p', 2);
      outbox.post('r2', 'C1', { text: 'step 2' }, 'p');
      await at(2000);
      expect(slack.texts('C1')).toEqual(['parent', 'approve?', 'note', 'step 1', 'step 2']);
    });

    it('a post retried after a 503 keeps its place: later posts of the channel wait for it', async () => {
      const { outbox, slack } = started(fakeOutbox({ store: make(), pacingMs: 100, pollMs: 10 }));
      slack.fail('chat.postMessage', httpError(503));
      outbox.post('p', 'C1', { text: 'first' });
      outbox.post('q', 'C1', { text: 'second' });
      await at(3000);
      expect(slack.to('chat.postMessage').map((c) => [c.args.text, c.at])).toEqual([['first', 0], ['first', 500], ['second', 600]]);
    });

    it('after a restart, a post still in back-off keeps its channel’s later posts waiting', async () => {
      const store = make();
      await store.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'parent' } });
      await store.upsert({ key: 'r', kind: 'post', channel: 'C1', ref: 'p', args: { text: 'reply' } });
      await store.upsert({ key: 'q', kind: 'post', channel: 'C1', args: { text: 'later' } });
      await store.markSending((await store.get('p'))!.id, 'me');
      await store.markRetry((await store.get('p'))!.id, Date.now() + 2000, 'http 503', 'me');
      const { outbox, slack } = started(fakeOutbox({ store, pacingMs: 100, pollMs: 10 }));
      await at(1990);
      expect(slack.calls).toEqual([]);
      await at(3000);
      expect(slack.texts('C1')).toEqual(['parent', 'reply', 'later']);
    });
  });
}

function httpError(status: number) {
  return new WebAPIHTTPError(status, 'Service Unavailable', {}, '');
}
