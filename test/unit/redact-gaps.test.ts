/**
 * Text that the index's cheap prefilters let through but that is no secret: a position whose first characters
 * hash into the same filter slot as a registered form (the low 20 bits of the hash) without any form filed under
 * its full hash. Written from the mutation run of src/redact.ts (line 226, `bucket?.find`): such a position must
 * be passed over, not crash the redaction of a log line or a Slack message.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { forgetAllSecrets, MASK, redact, registerSecret } from '../../src/redact.ts';

/** 20 values of 8 forms or more each (past the 64 forms where the hashed index takes over), all starting "filler" */
function manySecrets(): string[] {
  const out = Array.from({ length: 20 }, (_, i) => `filler-secret-${String(i).padStart(2, '0')}-QwErTy`);
  for (const v of out) registerSecret(v);
  return out;
}

/**
 * 6-character windows starting "fi" (so the first-two-characters prefilter passes) whose FNV-1a hash has the same
 * low 20 bits as the hash of "filler" (0xec4567bf) but differs in the high bits: the filter slot is taken, the
 * bucket for the full hash is empty. Found offline by trying every "fi" + 4 characters of [A-Za-z0-9_-].
 */
const SLOT_TWINS = ['fifFWd', 'fimpGs', 'finWwe', 'fiq5l_', 'firBBo'];

describe('redact: a filter-slot twin of a secret is no secret', () => {
  beforeEach(() => forgetAllSecrets());

  it('text holding the twins is returned as it was, and a secret next to them is still masked', () => {
    const s = manySecrets();
    for (const twin of SLOT_TWINS) {
      const text = `step log: ${twin} and ${twin}x at the end ${twin}`;
      expect(redact(text)).toBe(text);
      expect(redact(`${twin}${s[4]} ${twin}`)).toBe(`${twin}${MASK} ${twin}`);
    }
  });
});
