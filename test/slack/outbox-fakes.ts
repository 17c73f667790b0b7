/**
 * An in-process Slack Web API double and a fake-clock outbox for the outbox tests that measure time:
 * pacing, back-off, Retry-After. Everything runs on vitest's fake timers (Date, setTimeout, setInterval,
 * setImmediate), so a test of a 60 s back-off takes milliseconds and the gaps it asserts are exact.
 * The errors thrown are @slack/web-api's own classes, as the real WebClient throws them.
 */
import { afterEach, beforeEach, vi } from 'vitest';
import type { WebClient } from '@slack/web-api';
import { openStore } from '../../src/store/db.ts';
import { MemoryOutboxStore, Outbox, SqliteOutboxStore, type OutboxOptions, type OutboxStore } from '../../src/slack/outbox.ts';
import type { Logger } from '../../src/log.ts';

/** the fake clock starts here; `at(ms)` is relative to it */
export const T0 = 1_800_000_000_000;

export type Method = 'chat.postMessage' | 'chat.update' | 'chat.postEphemeral' | 'conversations.history' | 'conversations.replies';
export interface Call {
  method: Method;
  args: Record<string, any>;
  /** when the request reached Slack, ms after T0 */
  at: number;
  /** when Slack answered, ms after T0 (undefined while in flight) */
  doneAt?: number;
  ts?: string;
  error?: Error;
}

export class FakeSlack {
  calls: Call[] = [];
  /** how long Slack takes to answer, per method (fake ms) */
  latencyMs: Partial<Record<Method, number>> = {};
  private faults: Partial<Record<Method, Array<{ error: Error; when?: (args: Record<string, any>) => boolean; landed?: boolean }>>> = {};
  private gates: Partial<Record<Method, Promise<void>>> = {};
  /** methods whose calls take effect in Slack and then never answer (the sender dies with the request in flight) */
  private hung = new Set<Method>();
  private seq = 0;
  /** the messages in Slack: what chat.postMessage created (also those whose answer never came back) */
  readonly messages: Array<{ channel: string; ts: string; thread_ts?: string; text?: string; metadata?: any }> = [];
  readonly chat = {
    postMessage: (a: Record<string, any>) => this.call('chat.postMessage', a),
    update: (a: Record<string, any>) => this.call('chat.update', a),
    postEphemeral: (a: Record<string, any>) => this.call('chat.postEphemeral', a),
  };
  /** Slack's reads, as the lookup of a post left in flight uses them (newest first for history; 200 a page) */
  readonly conversations = {
    history: (a: Record<string, any>) => this.call('conversations.history', a),
    replies: (a: Record<string, any>) => this.call('conversations.replies', a),
  };
  /** calls of `method` reach Slack (a post is created) and their answer never comes back */
  hang(method: Method): void {
    this.hung.add(method);
  }

  /** the next calls of `method` fail with these errors, in order */
  fail(method: Method, ...errors: Error[]): void {
    (this.faults[method] ??= []).push(...errors.map((error) => ({ error })));
  }
  /** the next posts reach Slack (the message is created) and the caller gets these errors all the same (a timeout) */
  landThenFail(...errors: Error[]): void {
    (this.faults['chat.postMessage'] ??= []).push(...errors.map((error) => ({ error, landed: true })));
  }
  /** the next calls of `method` whose args match fail with these errors, in order */
  failIf(method: Method, when: (args: Record<string, any>) => boolean, ...errors: Error[]): void {
    (this.faults[method] ??= []).push(...errors.map((error) => ({ error, when })));
  }
  /** calls of `method` wait until the returned function is called */
  hold(method: Method): () => void {
    let release!: () => void;
    this.gates[method] = new Promise<void>((r) => (release = r));
    return () => {
      delete this.gates[method];
      release();
    };
  }

  private async call(method: Method, args: Record<string, any>) {
    const c: Call = { method, args, at: Date.now() - T0 };
    this.calls.push(c);
    const latency = this.latencyMs[method] ?? 0;
    if (latency) await new Promise((r) => setTimeout(r, latency));
    if (this.gates[method]) await this.gates[method];
    c.doneAt = Date.now() - T0;
    const faults = this.faults[method] ?? [];
    const i = faults.findIndex((f) => !f.when || f.when(args));
    if (i >= 0) {
      const [{ error, landed }] = faults.splice(i, 1);
      if (landed) this.messages.push({ channel: args.channel, ts: `1800000000.${String(++this.seq).padStart(6, '0')}`, thread_ts: args.thread_ts, text: args.text, metadata: args.metadata });
      c.error = error;
      throw error;
    }
    if (method === 'conversations.history' || method === 'conversations.replies') return this.read(method, args);
    c.ts = method === 'chat.postMessage' ? `1800000000.${String(++this.seq).padStart(6, '0')}` : args.ts;
    if (method === 'chat.postMessage') this.messages.push({ channel: args.channel, ts: c.ts!, thread_ts: args.thread_ts, text: args.text, metadata: args.metadata });
    if (this.hung.has(method)) {
      c.doneAt = undefined;
      return new Promise(() => undefined);
    }
    return { ok: true, channel: args.channel, ts: c.ts };
  }

  private read(method: Method, a: Record<string, any>) {
    const after = (m: { ts: string }) => a.oldest === undefined || Number(m.ts) > Number(a.oldest);
    const inChannel = this.messages.filter((m) => m.channel === a.channel);
    const list = method === 'conversations.history'
      ? inChannel.filter((m) => !m.thread_ts && after(m)).reverse()
      : [...inChannel.filter((m) => m.ts === a.ts), ...inChannel.filter((m) => m.thread_ts === a.ts && after(m))];
    const start = Number(a.cursor ?? 0);
    const limit = Number(a.limit ?? 100);
    const more = start + limit < list.length;
    const messages = list.slice(start, start + limit).map(({ metadata, ...m }) => ({ ...m, ...(a.include_all_metadata && metadata ? { metadata } : {}) }));
    return { ok: true, messages, has_more: more, response_metadata: { next_cursor: more ? String(start + limit) : '' } };
  }

  to(method: Method): Call[] {
    return this.calls.filter((c) => c.method === method);
  }
  /** messages Slack accepted, in the order it accepted them */
  posted(channel?: string): Call[] {
    return this.to('chat.postMessage').filter((c) => c.ts && !c.error && (!channel || c.args.channel === channel));
  }
  texts(channel?: string): string[] {
    return this.posted(channel).map((c) => c.args.text);
  }
}

export interface LogLine {
  level: 'warn' | 'error' | 'info' | 'debug';
  fields: Record<string, unknown>;
  msg: string;
}
export function fakeLogger(lines: LogLine[]): Logger {
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, fields, msg });
  const l = { warn: at('warn'), error: at('error'), info: at('info'), debug: at('debug') } as unknown as Logger;
  (l as any).child = () => l;
  return l;
}

export const STORES: Array<[string, () => OutboxStore]> = [
  ['sqlite', () => new SqliteOutboxStore(openStore({ path: ':memory:' }).sqlite)],
  ['memory', () => new MemoryOutboxStore()],
];

export function useFakeClock(): void {
  vi.useFakeTimers({ now: T0, toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'] });
}

/** advance the fake clock to `ms` after T0, running every timer and callback due on the way */
export async function at(ms: number): Promise<void> {
  const d = T0 + ms - Date.now();
  if (d < 0) throw new Error(`the clock is already at ${Date.now() - T0} ms, past ${ms}`);
  await vi.advanceTimersByTimeAsync(d);
}
/** let callbacks due now run (setImmediate, resolved requests) without moving the clock */
export const settle = () => vi.advanceTimersByTimeAsync(0);

export function fakeOutbox(opts: Partial<Omit<OutboxOptions, 'client' | 'store' | 'logger'>> & { store?: OutboxStore } = {}) {
  const slack = new FakeSlack();
  const logs: LogLine[] = [];
  const store = opts.store ?? STORES[0][1]();
  // exact send times: a write or a finished send polls at once unless a test asks for the gap (minPollGapMs)
  const outbox = new Outbox({ minPollGapMs: 0, ...opts, client: slack as unknown as WebClient, store, logger: fakeLogger(logs) });
  return { outbox, slack, store, logs };
}

/** stop() polls every 5 ms until in-flight requests finish: drive the fake clock meanwhile */
export async function stopNow(outbox: Outbox, maxMs = 600_000): Promise<void> {
  let done = false;
  const p = outbox.stop().then(() => (done = true));
  for (let t = 0; !done && t < maxMs; t += 5) await vi.advanceTimersByTimeAsync(5);
  await p;
}

/**
 * Fake clock for each test, and every outbox a test started stopped after it. Returns `started(o)`, which
 * starts `o.outbox` and hands `o` back.
 */
export type StartedOutboxes = (<T extends { outbox: Outbox }>(o: T) => T) & {
  /** stop this outbox after the test too (one the test started itself) */
  track(outbox: Outbox): void;
  /** stop nothing after this test (its outboxes were left mid-request on purpose) */
  forgetAll(): void;
};

export function useStartedOutboxes(): StartedOutboxes {
  let running: Outbox[] = [];
  beforeEach(() => useFakeClock());
  afterEach(async () => {
    for (const o of running) await stopNow(o);
    running = [];
    vi.useRealTimers();
  });
  const started = (<T extends { outbox: Outbox }>(o: T): T => {
    running.push(o.outbox);
    o.outbox.start();
    return o;
  }) as StartedOutboxes;
  started.track = (outbox) => void running.push(outbox);
  started.forgetAll = () => void (running = []);
  return started;
}
