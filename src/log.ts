import pino from 'pino';
import { redact, redactDeep } from './redact.ts';

/**
 * JSON logs (pino) with every string passed through the shared redaction.
 * Level from LOG_LEVEL; destination stderr so CLI output on stdout stays clean.
 */
export type Logger = pino.Logger;

export function createLogger(bindings: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: process.env.LOG_LEVEL ?? 'info',
      base: { app: 're-bot', ...bindings },
      formatters: {
        log: (obj) => redactDeep(obj),
      },
      hooks: {
        logMethod(args, method) {
          const safe = args.map((a) => (typeof a === 'string' ? redact(a) : a instanceof Error ? { err: { message: redact(a.message), name: a.name } } : a));
          return method.apply(this, safe as Parameters<typeof method>);
        },
      },
      serializers: {
        err: (e: unknown) => (e instanceof Error ? { name: e.name, message: redact(e.message), stack: redact(e.stack ?? '') } : e),
      },
    },
    destination ?? pino.destination(2),
  );
}

let root: Logger | undefined;
export function logger(): Logger {
  root ??= createLogger();
  return root;
}
export function setLogger(l: Logger): void {
  root = l;
}
