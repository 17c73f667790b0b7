/**
 * Retries on a fake clock: a 429 waits Slack's Retry-After (a post holds its channel; an update or an ephemeral
 * holds every update / ephemeral, as Slack limits those per workspace) and does not use up an attempt; a 5xx or
 * a network error backs off exponentially (500 ms, 1 s, 2 s, …) and gives up after maxAttempts (default 8);
 * any other error fails the write at once. A failed write is logged and recorded, replies under a parent that
 * never got posted fail instead of waiting forever, and the outbox goes idle.
 */
import { describe, expect, it, vi } from 'vitest';
import { WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebAPIRequestError } from '@slack/web-api';
import { at, fakeOutbox, stopNow, useStartedOutboxes } from './outbox-fakes.ts';

const started = useStartedOutboxes();
const limited = (retryAfter?: number) => new WebAPIRateLimitedError(retryAfter as number);
const http = (status = 503) => new WebAPIHTTPError(status, 'Service Unavailable', {}, '');
const network = () => new WebAPIRequestError(new Error('socket hang up'));
const platform = (error: string, errors?: string[]) => new WebAPIPlatformError({ ok: false, error, ...(errors ? { errors } : {}) } as any);

describe('outbox 429 (fake clock)', () => {
  it('a rate-limited post is sent again exactly Retry-After seconds later; other channels are not held', async () => {
    const { outbox, slack, store } = started(fakeOutbox({ pacingMs: 100 }));
    slack.fail('chat.postMessage', limited(3));
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('a2', 'C1', { text: 'a2' });
    await at(5);
    outbox.post('b', 'C2', { text: 'b' });
    await at(2999);
    expect(slack.to('chat.postMessage').map((c) => [c.args.text, c.at])).toEqual([['a', 0], ['b', 5]]);
    expect(await store.get('a')).toMatchObject({ state: 'pending', attempts: 0, error: 'ratelimited' }); // a 429 is not a failed attempt
    await at(5000);
    expect(slack.to('chat.postMessage').map((c) => [c.args.text, c.at])).toEqual([['a', 0], ['b', 5], ['a', 3000], ['a2', 3100]]);
    expect(slack.texts('C1')).toEqual(['a', 'a2']);
  });

  it('a 429 without Retry-After waits 1 s; retryAfterUnitMs scales the second', async () => {
    const dflt = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    dflt.slack.fail('chat.postMessage', limited(undefined));
    dflt.outbox.post('a', 'C1', { text: 'a' });
    await at(3000);
    expect(dflt.slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 1000]);
    await stopNow(dflt.outbox);

    const scaled = started(fakeOutbox({ pacingMs: 10, pollMs: 10, retryAfterUnitMs: 10 }));
    const t0 = Date.now();
    scaled.slack.fail('chat.postMessage', limited(7));
    scaled.outbox.post('a', 'C1', { text: 'a' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(scaled.slack.to('chat.postMessage').map((c) => c.at - (t0 - 1_800_000_000_000))).toEqual([0, 70]);
  });

  it('more 429s than maxAttempts still deliver the post once', async () => {
    const { outbox, slack, store } = started(fakeOutbox({ pacingMs: 10, pollMs: 10, maxAttempts: 2 }));
    slack.fail('chat.postMessage', ...Array.from({ length: 5 }, () => limited(1)));
    outbox.post('a', 'C1', { text: 'after the storm' });
    await at(10_000);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(slack.texts('C1')).toEqual(['after the storm']);
    expect(await store.get('a')).toMatchObject({ state: 'sent', attempts: 1 });
  });

  it('a 429 on an update holds every update (other messages, other channels) but no post', async () => {
    const { outbox, slack } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    outbox.post('p1', 'C1', { text: 'one' });
    outbox.post('p2', 'C2', { text: 'two' });
    await at(100);
    slack.latencyMs['chat.update'] = 50;
    // both updates are in flight together; the second 429 is shorter, the hold stays the longest
    slack.fail('chat.update', limited(5), limited(1));
    outbox.update('p1', 'C1', { text: 'one edited' });
    outbox.update('p2', 'C2', { text: 'two edited' });
    await at(2000);
    outbox.post('p3', 'C3', { text: 'three' });
    outbox.update('p3', 'C3', { text: 'three edited' });
    await at(5149);
    expect(slack.to('chat.update').map((c) => [c.args.text, c.at])).toEqual([['one edited', 100], ['two edited', 100]]);
    expect(slack.posted('C3').map((c) => c.at)).toEqual([2000]);
    await at(8000);
    expect(slack.to('chat.update').slice(2).map((c) => [c.args.text, c.at])).toEqual([['one edited', 5150], ['two edited', 5150], ['three edited', 5150]]);
  });

  it('a 429 on an ephemeral holds the ephemerals, not the posts or updates', async () => {
    const { outbox, slack } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    slack.fail('chat.postEphemeral', limited(2));
    outbox.ephemeral('e1', 'C1', 'U1', { text: 'for U1' });
    await at(100);
    outbox.ephemeral('e2', 'C2', 'U2', { text: 'for U2' });
    outbox.post('p', 'C1', { text: 'progress' });
    outbox.update('p', 'C1', { text: 'progress 2' });
    await at(1990);
    expect(slack.to('chat.postEphemeral').map((c) => [c.args.user, c.at])).toEqual([['U1', 0]]);
    expect(slack.texts('C1')).toEqual(['progress']);
    expect(slack.to('chat.update')).toHaveLength(1);
    await at(3000);
    expect(slack.to('chat.postEphemeral').map((c) => [c.args.user, c.at])).toEqual([['U1', 0], ['U1', 2000], ['U2', 2000]]);
  });
});

describe('outbox back-off and giving up (fake clock)', () => {
  it('a 5xx is retried after 500 ms, 1 s, 2 s, 4 s … and the post goes out once', async () => {
    const { outbox, slack, store } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    slack.fail('chat.postMessage', http(503), http(502), network());
    outbox.post('a', 'C1', { text: 'hello' });
    await at(10_000);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 500, 1500, 3500]);
    expect(slack.texts('C1')).toEqual(['hello']);
    expect(await store.get('a')).toMatchObject({ state: 'sent', attempts: 4 });
  });

  it('baseBackoffMs sets the first wait', async () => {
    const { outbox, slack } = started(fakeOutbox({ pacingMs: 10, pollMs: 10, baseBackoffMs: 40 }));
    slack.fail('chat.postMessage', network(), network());
    outbox.post('a', 'C1', { text: 'hello' });
    await at(1000);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 40, 120]);
  });

  it('gives up after 8 attempts by default: the post is failed, logged, and its replies fail instead of waiting', async () => {
    const { outbox, slack, store, logs } = started(fakeOutbox({ pacingMs: 100 }));
    slack.fail('chat.postMessage', ...Array.from({ length: 8 }, () => http(503)));
    outbox.post('p', 'C1', { text: 'job started' });
    outbox.post('r', 'C1', { text: 'step 1' }, 'p');
    outbox.update('p', 'C1', { text: 'job started (edited)' });
    outbox.post('next', 'C1', { text: 'another job' });
    const idle = outbox.idle(64_000);
    await at(63_499);
    expect(slack.to('chat.postMessage').map((c) => c.at)).toEqual([0, 500, 1500, 3500, 7500, 15_500, 31_500]);
    await at(64_000);
    await idle;
    expect(slack.to('chat.postMessage').map((c) => c.at).slice(7)).toEqual([63_500, 63_700]); // the failed reply took the channel's next slot (63 600)
    expect(slack.posted().map((c) => [c.args.text, c.args.thread_ts])).toEqual([['another job', undefined]]);
    expect(slack.to('chat.update')).toEqual([]);
    expect(await store.get('p')).toMatchObject({ state: 'failed', attempts: 8, error: 'An HTTP protocol error occurred: statusCode = 503' });
    expect(await store.get('r')).toMatchObject({ state: 'failed', error: 'target p was never posted' });
    expect(await store.get('p#update')).toMatchObject({ state: 'failed', error: 'target p was never posted' });
    expect(logs.filter((l) => l.level === 'error')).toEqual([
      { level: 'error', fields: { key: 'p', kind: 'post', err: 'An HTTP protocol error occurred: statusCode = 503', detail: undefined }, msg: 'outbox: Slack write failed' },
    ]);
  });

  it('maxAttempts: 3 gives up after the third; an update and an ephemeral back off too, without holding others', async () => {
    const { outbox, slack, store } = started(fakeOutbox({ pacingMs: 10, pollMs: 10, maxAttempts: 3, baseBackoffMs: 100 }));
    outbox.post('p1', 'C1', { text: 'one' });
    outbox.post('p2', 'C2', { text: 'two' });
    await at(50);
    slack.failIf('chat.update', (a) => a.text === 'one edited', http(500), http(500), http(500));
    slack.failIf('chat.postEphemeral', (a) => a.user === 'U1', network());
    outbox.update('p1', 'C1', { text: 'one edited' });
    outbox.ephemeral('e', 'C1', 'U1', { text: 'hi' });
    await at(60);
    outbox.update('p2', 'C2', { text: 'two edited' });
    outbox.ephemeral('e2', 'C1', 'U2', { text: 'hi 2' });
    await at(2000);
    expect(slack.to('chat.update').map((c) => [c.args.text, c.at])).toEqual([['one edited', 50], ['two edited', 60], ['one edited', 150], ['one edited', 350]]);
    expect(await store.get('p1#update')).toMatchObject({ state: 'failed', attempts: 3 });
    expect((await store.get('p2#update'))!.state).toBe('sent');
    expect(slack.to('chat.postEphemeral').map((c) => [c.args.user, c.at])).toEqual([['U1', 50], ['U2', 60], ['U1', 150]]);
  });

  it('a 5xx on an update does not hold other messages’ updates', async () => {
    const { outbox, slack } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    outbox.post('p1', 'C1', { text: 'one' });
    outbox.post('p2', 'C1', { text: 'two' });
    await at(50);
    slack.fail('chat.update', http(503));
    outbox.update('p1', 'C1', { text: 'one edited' });
    await at(60);
    outbox.update('p2', 'C1', { text: 'two edited' });
    await at(2000);
    expect(slack.to('chat.update').map((c) => [c.args.text, c.at])).toEqual([['one edited', 50], ['two edited', 60], ['one edited', 550]]);
  });

  it('an error Slack answered (ok: false) fails the write at once, logged with Slack’s detail', async () => {
    const { outbox, slack, store, logs } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    slack.fail('chat.postMessage', platform('invalid_blocks', ['must be less than 151 characters [json-pointer:/blocks/0/text/text]']));
    slack.fail('chat.postEphemeral', new Error('boom'));
    outbox.post('bad', 'C1', { text: 'x' });
    outbox.post('good', 'C1', { text: 'y' });
    outbox.ephemeral('e', 'C1', 'U1', { text: 'hi' });
    await at(5000);
    expect(slack.to('chat.postMessage').map((c) => [c.args.text, c.at])).toEqual([['x', 0], ['y', 10]]);
    expect(slack.to('chat.postEphemeral')).toHaveLength(1);
    expect(await store.get('bad')).toMatchObject({ state: 'failed', attempts: 1, error: 'An API error occurred: invalid_blocks' });
    expect(await store.get('e')).toMatchObject({ state: 'failed', error: 'boom' });
    expect(logs.filter((l) => l.level === 'error').map((l) => l.fields)).toEqual([
      { key: 'bad', kind: 'post', err: 'An API error occurred: invalid_blocks', detail: ['must be less than 151 characters [json-pointer:/blocks/0/text/text]'] },
      { key: 'e', kind: 'ephemeral', err: 'boom', detail: undefined },
    ]);
  });

  it('a client that throws something other than an Error (a wrapper’s bug) fails the write instead of leaving it in flight', async () => {
    const { outbox, slack, store, logs } = started(fakeOutbox({ pacingMs: 10, pollMs: 10 }));
    slack.fail('chat.postMessage', null as unknown as Error);
    outbox.post('a', 'C1', { text: 'a' });
    outbox.post('b', 'C1', { text: 'b' });
    await at(1000);
    expect(await store.get('a')).toMatchObject({ state: 'failed', error: 'null' });
    expect(logs.map((l) => l.fields)).toEqual([{ key: 'a', kind: 'post', err: 'null', detail: undefined }]);
    expect(slack.texts('C1')).toEqual(['b']);
  });

  it('the pending edit of a message that failed is dropped without delaying the channel’s next post', async () => {
    const { outbox, slack, store } = fakeOutbox({ pacingMs: 10 });
    await store.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'p' } });
    await store.markSending((await store.get('p'))!.id, 'me');
    await store.markFailed((await store.get('p'))!.id, 'invalid_blocks', 'me');
    await store.upsert({ key: 'p#update', kind: 'update', channel: 'C1', ref: 'p', args: { text: 'p edited' } });
    await store.upsert({ key: 'q', kind: 'post', channel: 'C1', args: { text: 'q' } });
    started({ outbox, slack, store, logs: [] });
    await at(500);
    expect(await store.get('p#update')).toMatchObject({ state: 'failed', error: 'target p was never posted' });
    expect(slack.posted().map((c) => [c.args.text, c.at])).toEqual([['q', 0]]);
  });

  it('a reply whose parent’s outcome is unknown after a crash, or that was never queued, fails instead of waiting', async () => {
    const { outbox, slack, store } = fakeOutbox({ pacingMs: 10, pollMs: 10 });
    await store.upsert({ key: 'p', kind: 'post', channel: 'C1', ref: 'gone', args: { text: 'reply to a crashed reply' } });
    await store.upsert({ key: 'lost', kind: 'post', channel: 'C2', ref: 'x', args: { text: 'x' } });
    await store.markSending((await store.get('lost'))!.id, 'me');
    await store.markUnknown((await store.get('lost'))!.id, 'lookup failed: missing_scope', 'me'); // recovered, and could not be looked up
    await store.upsert({ key: 'r', kind: 'post', channel: 'C2', ref: 'lost', args: { text: 'under lost' } });
    await store.upsert({ key: 'u', kind: 'update', channel: 'C2', ref: 'lost', args: { text: 'edit lost' } });
    await store.upsert({ key: 'ok', kind: 'post', channel: 'C2', args: { text: 'fine' } });
    started({ outbox, slack, store, logs: [] });
    await at(100);
    await outbox.idle(10);
    expect((await store.head('lost'))!.state).toBe('unknown');
    expect(slack.posted().map((c) => c.args.text)).toEqual(['fine']);
    for (const k of ['p', 'r', 'u']) expect((await store.get(k))!.state).toBe('failed');
    expect((await store.get('r'))!.error).toBe('target lost was never posted');
  });
});

describe('outbox: looking up a post left in flight (fake clock)', () => {
  /** a thread parent its sender left `sending` (it died), Slack holding it or not */
  async function leftInFlight(landed: boolean) {
    const o = fakeOutbox({ pacingMs: 10, pollMs: 10, baseBackoffMs: 100 });
    await o.store.upsert({ key: 'p', kind: 'post', channel: 'C1', args: { text: 'job started' } });
    await o.store.markSending((await o.store.get('p'))!.id, 'dead');
    if (landed) o.slack.messages.push({ channel: 'C1', ts: '1800000000.000777', text: 'job started', metadata: { event_type: 're_bot_outbox', event_payload: { key: 'p' } } });
    return o;
  }

  it('a lookup that fails with 5xx or a network error is retried with back-off (one attempt each), then finds the post: nothing posted', async () => {
    const o = await leftInFlight(true);
    o.slack.fail('conversations.history', http(), network());
    started(o);
    await at(1000);
    expect(o.slack.to('conversations.history').map((c) => [c.at, c.error ? 'failed' : 'ok'])).toEqual([[0, 'failed'], [200, 'failed'], [600, 'ok']]); // 100 ms × 2^(attempt − 1), the dead sender's attempt counted
    expect(o.slack.to('chat.postMessage')).toEqual([]);
    expect(await o.store.get('p')).toMatchObject({ state: 'sent', ts: '1800000000.000777', attempts: 4 });
  });

  it('a rate-limited lookup waits Retry-After without using an attempt', async () => {
    const o = await leftInFlight(false);
    o.slack.fail('conversations.history', limited(2));
    started(o);
    await at(5000);
    expect(o.slack.to('conversations.history').map((c) => c.at)).toEqual([0, 2000]);
    expect(o.slack.posted().map((c) => [c.args.text, c.at])).toEqual([['job started', 2000]]);
    expect((await o.store.get('p'))!.attempts).toBe(2);
  });

  it('lookups that keep failing give up after maxAttempts and fall back: the parent is posted once more, with a warning', async () => {
    const o = await leftInFlight(false);
    o.slack.fail('conversations.history', ...Array.from({ length: 10 }, () => http()));
    started(o);
    await at(60_000);
    expect(o.slack.to('conversations.history')).toHaveLength(7); // attempts 2..8 (the dead sender's was the first)
    expect(o.slack.posted().map((c) => c.args.text)).toEqual(['job started']);
    expect(o.logs.filter((l) => l.level === 'warn').map((l) => l.fields.key)).toContain('p');
  });

  it('a post that timed out after Slack created it is found by its key before the retry: not posted twice; one that did not land is posted once', async () => {
    const o = started(fakeOutbox({ pacingMs: 10, pollMs: 10, baseBackoffMs: 100 }));
    o.slack.landThenFail(network());
    o.outbox.post('p', 'C1', { text: 'landed' });
    o.slack.fail('chat.postMessage', http(503));
    o.outbox.post('q', 'C2', { text: 'refused' });
    await at(1000);
    expect(o.slack.to('chat.postMessage').map((c) => [c.args.text, c.at])).toEqual([['landed', 0], ['refused', 0], ['refused', 100]]);
    expect(o.slack.to('conversations.history').map((c) => [c.args.channel, c.at])).toEqual([['C1', 100], ['C2', 100]]);
    expect(await o.store.get('p')).toMatchObject({ state: 'sent', ts: o.slack.messages[0].ts });
    expect(o.slack.messages.map((m) => m.text).sort()).toEqual(['landed', 'refused']);
  });

  it('a channel too busy to search (more than 3 pages of 200 since the post was queued): the parent is posted again, with a warning', async () => {
    const o = await leftInFlight(false);
    for (let i = 0; i < 650; i++) o.slack.messages.push({ channel: 'C1', ts: `1800000001.${String(i).padStart(6, '0')}`, text: `chatter ${i}` });
    started(o);
    await at(1000);
    expect(o.slack.to('conversations.history').map((c) => c.args.cursor)).toEqual([undefined, '200', '400']);
    expect(o.slack.posted().map((c) => c.args.text)).toEqual(['job started']);
    const warn = o.logs.find((l) => l.level === 'warn' && l.fields.key === 'p')!;
    expect(warn.fields.err).toMatch(/not found in the 600 newest messages/);
    expect(warn.msg).toMatch(/the thread parent is posted again/);
  });
});
