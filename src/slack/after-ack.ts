/**
 * When the work after an ack runs. Bolt reads a burst of requests in one turn of the event loop and acks each
 * one; what a handler does after its ack (SQLite, rendering, the response_url answer) used to run in the next
 * turn, so a burst's later requests waited behind the earlier ones' work, and their acks with them (the ack
 * p99 under 200 concurrent requests was 2–2.5× the bare Bolt app's: BENCHMARKS.md). Here the work waits while
 * requests keep arriving, then runs one piece per turn of the event loop, so a request that arrives meanwhile
 * is read and acked after at most one piece. Nothing waits forever: a piece older than `maxDeferMs` runs even
 * while requests keep coming (still one per turn).
 *
 * Why 20 ms and 1 s: a burst of 200 requests takes 300–700 ms to read on a busy 2-core node, and arrives with
 * gaps of a few ms (the sender writes in batches). With 2 ms and 250 ms the pieces started inside the burst
 * and the `/re status` ack p99 was 1.7–2.4× the bare Bolt app's; with 20 ms and 1 s, 0.97–1.13×, and the last
 * answer of a burst still reached Slack within 1 s of its start (bench/ack.ts, BENCHMARKS.md).
 */
import { performance } from 'node:perf_hooks';

export interface AfterAckOptions {
  /** the work waits until no request has arrived for this long (default 20 ms) */
  quietMs?: number;
  /** …or until the oldest piece has waited this long (default 1 s) */
  maxDeferMs?: number;
  now?: () => number;
}

export class AfterAckQueue {
  private readonly waiting: Array<{ at: number; go: () => void }> = [];
  private lastRequest = -Infinity;
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly quietMs: number;
  private readonly maxDeferMs: number;
  private readonly now: () => number;

  constructor(o: AfterAckOptions = {}) {
    this.quietMs = o.quietMs ?? 20;
    this.maxDeferMs = o.maxDeferMs ?? 1000;
    this.now = o.now ?? (() => performance.now());
  }

  /** a Slack request arrived (before its handler runs) */
  noteRequest(): void {
    this.lastRequest = this.now();
  }

  /** resolves when this piece of work may run */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push({ at: this.now(), go: resolve });
      if (!this.pumping) {
        this.pumping = true;
        setImmediate(this.pump);
      }
    });
  }

  get size(): number {
    return this.waiting.length;
  }

  private readonly pump = (): void => {
    this.timer = undefined;
    const next = this.waiting[0];
    if (!next) {
      this.pumping = false;
      return;
    }
    const t = this.now();
    const quietFor = t - this.lastRequest;
    if (quietFor < this.quietMs && t - next.at < this.maxDeferMs) {
      // requests are still arriving: look again once they may have stopped
      this.timer = setTimeout(this.pump, Math.max(1, Math.ceil(this.quietMs - quietFor)));
      return;
    }
    this.waiting.shift()!.go();
    // the next piece in the next turn: a request that arrived meanwhile is read (and acked) first
    setImmediate(this.pump);
  };
}
