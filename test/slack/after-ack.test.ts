/** When the work after an ack runs (src/slack/after-ack.ts): after the burst of requests, never starved. */
import { describe, expect, it } from 'vitest';
import { AfterAckQueue } from '../../src/slack/after-ack.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('work after an ack', () => {
  it('waits while requests keep arriving, then runs every piece in order once they stop', async () => {
    const q = new AfterAckQueue({ quietMs: 150, maxDeferMs: 10_000 });
    const ran: number[] = [];
    for (let i = 0; i < 3; i++) void q.turn().then(() => ran.push(i));
    // a request every 5 ms for 60 ms: nothing runs meanwhile
    for (let t = 0; t < 60; t += 5) {
      q.noteRequest();
      await sleep(5);
    }
    expect(ran).toEqual([]);
    await sleep(400);
    expect(ran).toEqual([0, 1, 2]);
  });

  it('runs a piece that waited maxDeferMs although requests keep coming', async () => {
    const q = new AfterAckQueue({ quietMs: 50, maxDeferMs: 40 });
    let ran = false;
    void q.turn().then(() => (ran = true));
    const until = Date.now() + 200;
    while (!ran && Date.now() < until) {
      q.noteRequest();
      await sleep(5);
    }
    expect(ran).toBe(true);
  });

  it('with no request in sight, runs at once (the next turn of the event loop)', async () => {
    const q = new AfterAckQueue();
    let ran = false;
    void q.turn().then(() => (ran = true));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(true);
  });
});
