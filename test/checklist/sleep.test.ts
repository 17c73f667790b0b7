import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/checklist/release.js';

describe('sleep() between polls', () => {
  it('leaves no abort listener behind once the timer fires (a 30-minute poll loop would pile up thousands)', async () => {
    const ac = new AbortController();
    for (let i = 0; i < 50; i++) await sleep(1, ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('returns at once when the step is aborted, and at once when it already was', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const pending = sleep(60_000, ac.signal);
    ac.abort();
    await pending;
    await sleep(60_000, ac.signal);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});
