/**
 * The exact-value index of src/redact.ts with many secrets registered (more than 64 forms: the hashed
 * per-position look-up instead of one indexOf per form), and values shared by several owners: what is masked
 * must not depend on how many secrets the process holds, or on the order jobs end in.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { forgetAllSecrets, forgetScope, MASK, redact, registerSecret, registeredSecretCount } from '../../src/redact.ts';

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

describe('redact: boundaries of the encoded forms (found by mutation testing)', () => {
  beforeEach(() => forgetAllSecrets());
  const toUrl = (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  it('a 6-character secret followed by more text is masked, also with many secrets registered', () => {
    registerSecret('zz9ZZ9');
    expect(redact('id=zz9ZZ9! ok')).toBe(`id=${MASK}! ok`);
    manySecrets();
    expect(redact('id=zz9ZZ9! ok')).toBe(`id=${MASK}! ok`);
  });

  it('forgetting the longer of two secrets with the same first characters keeps the shorter one masked', () => {
    manySecrets();
    registerSecret('shared-head');
    registerSecret('shared-head-and-a-longer-tail', { scope: 'job-1' });
    forgetScope('job-1');
    expect(redact('shared-head-and-a-longer-tail')).toBe(`${MASK}-and-a-longer-tail`);
    registerSecret('shared-head-and-a-longer-tail', { scope: 'job-2' });
    forgetAllSecrets();
    registerSecret('shared-head', { scope: 'job-3' });
    registerSecret('shared-head-and-a-longer-tail');
    manySecrets();
    forgetScope('job-3');
    expect(redact('shared-head and shared-head-and-a-longer-tail')).toBe(`shared-head and ${MASK}`);
  });

  it('two registry passwords registered with their usernames are both masked, also in their dockerconfigjson auth form', () => {
    registerSecret('first-registry-pass', { variantsWith: ['alice:'] });
    registerSecret('second-registry-pass', { variantsWith: ['bob:'] });
    expect(redact('first-registry-pass second-registry-pass')).toBe(`${MASK} ${MASK}`);
    expect(redact(b64('alice:first-registry-pass'))).toBe(MASK);
    expect(redact(b64('bob:second-registry-pass'))).toBe(MASK);
  });

  it('the same password registered for a second username masks that username’s auth form too', () => {
    registerSecret('shared-registry-pass', { variantsWith: ['alice:'] });
    registerSecret('shared-registry-pass', { variantsWith: ['bob:'] });
    expect(redact(b64('alice:shared-registry-pass'))).toBe(MASK);
    expect(redact(b64('bob:shared-registry-pass'))).toBe(MASK);
  });

  it('base64url without padding of a value whose base64 ends in "==" is masked whole', () => {
    const v = 'secret-value1'; // 13 bytes: base64 ends in "=="
    expect(b64(v).endsWith('==')).toBe(true);
    registerSecret(v);
    expect(redact(`u=${toUrl(b64(v))}`)).toBe(`u=${MASK}`);
  });

  it('inside base64 at an offset ≡ 0 (mod 3) the mask starts right after the preceding bytes', () => {
    registerSecret('token-at-offset-3'); // 17 bytes: its own base64 is padded, so only the core can match here
    const out = redact(b64(`abc${'token-at-offset-3'}xyz`));
    expect(out.startsWith(`${b64('abc')}${MASK}`)).toBe(true);
  });

  it('a 7-character secret inside a larger base64 blob is masked (its 8-character core)', () => {
    registerSecret('s3cr3t7');
    const out = redact(b64('abcs3cr3t7xyz'));
    expect(out).toContain(MASK);
    expect(out).not.toContain(b64('s3cr3t7').slice(0, 8));
  });

  it('base64 wrapped over exactly two lines is masked on both, and a line before the secret stays', () => {
    const v = 'a-secret-long-enough-for-two-lines';
    registerSecret(v);
    const enc = b64(v);
    const two = `${enc.slice(0, 24)}\n${enc.slice(24)}`;
    expect(redact(`data:\n${two}\n-- end --`)).toBe(`data:\n${MASK}\n${MASK}\n-- end --`);
    // 48 bytes of other data first: its first 64 base64 characters (2 lines of 32) do not touch the secret
    const blob = b64(`${'x'.repeat(48)}${v}`);
    const lines = blob.match(/.{1,32}/g)!;
    const out = redact(lines.join('\n')).split('\n');
    expect(out.slice(0, 2)).toEqual(lines.slice(0, 2));
    expect(out.slice(2).every((l) => l === MASK)).toBe(true);
  });

  it('two secrets wrapped in one base64 block are both masked', () => {
    registerSecret('first-wrapped-secret-AAAA');
    registerSecret('second-wrapped-secret-BBBB');
    const blob = b64(`first-wrapped-secret-AAAA${'.'.repeat(60)}second-wrapped-secret-BBBB`);
    const lines = blob.match(/.{1,20}/g)!;
    const out = redact(lines.join('\n'));
    expect(out).not.toContain(lines[0]);
    expect(out).not.toContain(lines.at(-1)!);
    expect(out).toContain(lines[3]); // the dots in between
  });

  it('counts registered values (same value twice counts once; forgotten ones leave)', () => {
    registerSecret('counted-secret-1');
    registerSecret('counted-secret-1', { scope: 'job-1' });
    registerSecret('counted-secret-2', { scope: 'job-1' });
    expect(registeredSecretCount()).toBe(2);
    forgetScope('job-1');
    expect(registeredSecretCount()).toBe(1);
  });
});
