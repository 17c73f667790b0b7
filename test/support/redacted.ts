import { expect } from 'vitest';
import { MASK, RedactedError } from '../../src/redact.ts';

/**
 * The call fails with a RedactedError whose message holds none of `secrets`. Unless the server echoed one,
 * nothing needed masking either: the client itself never puts a credential into a message.
 */
export async function expectRedactedFailure(p: Promise<unknown>, secrets: string[], serverEchoedToken = false): Promise<RedactedError> {
  const err = await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RedactedError);
  const e = err as RedactedError;
  for (const s of secrets) expect(e.message).not.toContain(s);
  if (!serverEchoedToken) expect(e.message).not.toContain(MASK);
  return e;
}
