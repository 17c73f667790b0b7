import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import { redact } from './redact.ts';

/**
 * JSON logs (pino) with every string passed through the shared redaction.
 * Level from LOG_LEVEL; destination stderr (asynchronous) so CLI output on stdout stays clean.
 */
export type Logger = pino.Logger;

const context = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs fn with fields (a Slack request id, say) added to every log line written inside it, however deep. */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, fn);
}

/**
 * Runs fn outside any request's log context: for what outlives the request that happened to start it (a forked
 * job worker's messages and exit), whose lines would otherwise all carry that first request's id and user.
 */
export function withoutLogContext<T>(fn: () => T): T {
  return context.exit(fn);
}

export function createLogger(bindings: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  const root = pino(
    {
      level: process.env.LOG_LEVEL ?? 'info',
      mixin: () => context.getStore() ?? {},
      base: { app: 're-bot', ...safe(bindings) as Record<string, unknown> },
      formatters: {
        // child bindings (job, step, requestId…) are caller-supplied too
        bindings: (b) => safe(b) as Record<string, unknown>,
        log: (obj) => safe(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const out: unknown[] = args.map((a) => safe(a));
          // logger.error(err) / logger.error(err, 'msg'): keep pino's shape { err, msg } after redaction
          if (args[0] instanceof Error) {
            out[0] = { err: out[0] };
            if (typeof out[1] !== 'string') out.splice(1, 0, (out[0] as { err: { message: string } }).err.message);
          }
          return method.apply(this, out as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (e: unknown) => safe(e),
      },
    },
    destination ?? stderrDestination(),
  );
  // pino applies formatters.bindings to the root only; children inherit this own property (Object.create)
  const child = root.child;
  root.child = function (this: Logger, b, options) {
    return child.call(this, safe(b) as typeof b, options);
  } as typeof root.child;
  return root;
}

/**
 * stderr, written asynchronously: a synchronous write per line blocks the event loop for as long as the pipe
 * or file behind stderr takes (a slow log collector, a full pipe), in the middle of Slack's ack window. Lines
 * written while a write is in flight go out together in the next one; pino flushes what is left on exit.
 */
function stderrDestination(): pino.DestinationStream {
  return pino.destination({ dest: 2, sync: false });
}

/**
 * Errors become plain objects (message, stack, cause and own fields are non-enumerable or hidden, so
 * a plain deep-redact would drop them or a serializer would see them unredacted); then every string
 * goes through redact().
 */
function safe(value: unknown, seen = new WeakSet<object>()): unknown {
  if (value instanceof Error) {
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    const plain: Record<string, unknown> = { type: value.name, message: value.message, stack: value.stack };
    for (const [k, v] of Object.entries(value)) plain[k] = v;
    if (value.cause !== undefined) plain.cause = value.cause;
    return safe(plain, seen);
  }
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) {
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    return value.map((v) => safe(v, seen));
  }
  if (value && typeof value === 'object') {
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = safe(v, seen);
    return out;
  }
  return value;
}

let root: Logger | undefined;
export function logger(): Logger {
  root ??= createLogger();
  return root;
}
export function setLogger(l: Logger): void {
  root = l;
}

/**
 * Terminal commands (`re-bot run`, `re-bot demo`) print human progress; their JSON log lines go to `path`
 * (appended, 0600) instead of the terminal. Returns a function that restores the previous logger.
 */
export function logToFile(path: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  const previous = root;
  const dest = pino.destination({ dest: path, append: true, sync: true, mode: 0o600 });
  root = createLogger({}, dest);
  return () => {
    root = previous;
    dest.end();
  };
}
