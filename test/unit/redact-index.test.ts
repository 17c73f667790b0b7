/**
 * The exact-value index of src/redact.ts with many secrets registered (more than 64 forms: the hashed
 * per-position look-up instead of one indexOf per form), and values shared by several owners: what is masked
 * must not depend on how many secrets the process holds, or on the order jobs end in.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { forgetAllSecrets, forgetScope, MASK, redact, registerSecret } from '../../src/redact.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** 20 values of 8 forms or more each: well past the 64 forms where the index takes over */
function manySecrets(prefix = 'filler'): string[] {
  const out = Array.from({ length: 20 }, (_, i) => `${prefix}-secret-${String(i).padStart(2, '0')}-QwErTy`);
  for (const v of out) registerSecret(v);
  return out;
}

describe('redact with many registered secrets (indexed look-up)', () => {
  beforeEach(() => forgetAllSecrets());

  it('masks each secret and its base64 form wherever it sits: at the start, at the very end, side by side', () => {
    const s = manySecrets();
    const text = `${s[0]} and ${s[7]}${s[19]} then ${b64(s[3])} end ${s[12]}`;
    expect(redact(text)).toBe(`${MASK} and ${MASK}${MASK} then ${MASK} end ${MASK}`);
  });

  it('leaves ordinary text alone, also text sharing a secret’s first characters', () => {
    manySecrets();
    const text = 'filler-secret- is not a secret; neither is filler-secret-99-QwErT nor the word QwErTy';
    expect(redact(text)).toBe(text);
  });

  it('a text just as long as the index key, or shorter, passes through; a 6-character value registered alone is found at the end', () => {
    manySecrets();
    registerSecret('zz9ZZ9');
    expect(redact('abc')).toBe('abc');
    expect(redact('zz9ZZ9')).toBe(MASK);
    expect(redact('x zz9ZZ9')).toBe(`x ${MASK}`);
  });

  it('two secrets starting with the same characters: the longer one is masked whole, the shorter where it stands alone', () => {
    manySecrets();
    registerSecret('shared-head');
    registerSecret('shared-head-and-a-longer-tail');
    expect(redact('a shared-head-and-a-longer-tail b shared-head c')).toBe(`a ${MASK} b ${MASK} c`);
  });

  it('a forgotten job secret is no longer masked, the others still are', () => {
    const s = manySecrets();
    registerSecret('job-scoped-token-XYZ123', { scope: 'job-1' });
    expect(redact('job-scoped-token-XYZ123')).toBe(MASK);
    forgetScope('job-1');
    expect(redact(`job-scoped-token-XYZ123 ${s[5]} ${b64(s[6])}`)).toBe(`job-scoped-token-XYZ123 ${MASK} ${MASK}`);
  });

  it('after forgetAllSecrets nothing registered before is masked, and new registrations work again', () => {
    const s = manySecrets();
    forgetAllSecrets();
    expect(redact(s[1])).toBe(s[1]);
    const t = manySecrets('second');
    expect(redact(`${s[1]} ${t[1]}`)).toBe(`${s[1]} ${MASK}`);
  });
});

describe('redact: a value held by several owners', () => {
  beforeEach(() => forgetAllSecrets());

  for (const many of [false, true]) {
    const label = many ? ' (many secrets)' : '';
    it(`stays masked until the last job holding it ends${label}`, () => {
      if (many) manySecrets();
      registerSecret('shared-registry-password', { scope: 'job-1' });
      registerSecret('shared-registry-password', { scope: 'job-2' });
      forgetScope('job-1');
      expect(redact('pw shared-registry-password')).toBe(`pw ${MASK}`);
      forgetScope('job-2');
      expect(redact('pw shared-registry-password')).toBe('pw shared-registry-password');
    });

    it(`stays masked for good once registered without a scope, whatever jobs end${label}`, () => {
      if (many) manySecrets();
      registerSecret('registry-password-kept', { scope: 'job-1' });
      registerSecret('registry-password-kept');
      forgetScope('job-1');
      forgetScope('job-1');
      forgetScope('never-registered');
      expect(redact('registry-password-kept')).toBe(MASK);
    });

    it(`a form shared by two registrations (with and without a username) survives forgetting one of them${label}`, () => {
      if (many) manySecrets();
      registerSecret('robot-password-1234', { scope: 'job-1', variantsWith: ['robot:'] });
      registerSecret('robot-password-1234', { scope: 'job-2' });
      forgetScope('job-1');
      expect(redact('robot-password-1234')).toBe(MASK);
      forgetScope('job-2');
      expect(redact('robot-password-1234')).toBe('robot-password-1234');
    });
  }
});
