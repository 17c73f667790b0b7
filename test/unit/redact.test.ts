import { describe, expect, it, beforeEach } from 'vitest';
import { redact, redactDeep, registerSecret, forgetAllSecrets, errorMessage, RedactedError, MASK } from '../../src/redact.ts';

describe('redact', () => {
  beforeEach(() => forgetAllSecrets());

  it('masks a registered secret, its base64 form and its JSON-escaped form', () => {
    const token = 'tok"en-AGENT-0123456789';
    registerSecret(token);
    const b64 = Buffer.from(token).toString('base64');
    const out = redact(`plain ${token} b64 ${b64} json ${JSON.stringify({ t: token })}`);
    expect(out).not.toContain(token);
    expect(out).not.toContain(b64);
    expect(out).not.toContain('AGENT-0123456789');
    expect(out).toContain(MASK);
  });

  it('masks a registered secret embedded inside a larger base64 blob (Secret data in helm errors)', () => {
    const token = 'RE-TEST-TOKEN-abcdef123456';
    registerSecret(token);
    const blob = Buffer.from(`{"auths":{"images.astronomer.cloud":{"username":"cli","password":"${token}"}}}`).toString('base64');
    expect(redact(`data: ${blob}`)).not.toContain(blob);
  });

  it('masks secret-shaped patterns it was never told about', () => {
    const out = redact('Authorization: Bearer abcdefghijklmnop https://user:hunter2hunter2@git.example.com/x password=s3cr3tvalue xoxb-1234-5678-abcdefgh');
    expect(out).not.toContain('abcdefghijklmnop');
    expect(out).not.toContain('hunter2hunter2');
    expect(out).not.toContain('s3cr3tvalue');
    expect(out).not.toContain('xoxb-1234-5678-abcdefgh');
  });

  it('a registered value next to a secret-looking key is masked once, with no stray characters', () => {
    registerSecret('sup3rS3cretValue');
    expect(redact('helm failed token=sup3rS3cretValue more')).toBe('helm failed token=[REDACTED] more');
  });

  it('leaves ordinary text alone', () => {
    expect(redact('helm upgrade --install astro-agent in namespace astro-agents')).toBe('helm upgrade --install astro-agent in namespace astro-agents');
  });
});

describe('redact: forms a secret takes inside other output', () => {
  beforeEach(() => forgetAllSecrets());
  const token = 'RE-AGENT-TOKEN-0123456789abcdef';

  /** the characters of base64(prefix + token + suffix) that encode token bytes only */
  function tokenStretch(prefix: string, suffix: string): { blob: string; stretch: string } {
    const blob = Buffer.from(prefix + token + suffix).toString('base64');
    const firstGroup = Math.ceil(prefix.length / 3); // first 3-byte group that starts inside the token
    const lastGroup = Math.floor((prefix.length + token.length) / 3); // first group that reaches past it
    return { blob, stretch: blob.slice(firstGroup * 4, lastGroup * 4) };
  }

  // helm and kubectl print Secret data base64-encoded; where the token starts inside the blob decides
  // which of the three base64 alignments it shows up in
  for (const offset of [0, 1, 2, 3, 4, 5]) {
    it(`masks a registered secret inside base64 at byte offset ${offset} (≡ ${offset % 3} mod 3)`, () => {
      registerSecret(token);
      const prefix = '{"pw":"ppppp'.slice(0, offset);
      const { blob, stretch } = tokenStretch(prefix, '"}');
      expect(stretch.length).toBeGreaterThan(24);
      const out = redact(`Secret data: ${blob} end`);
      expect(out).toContain(MASK);
      // nothing of the stretch that encodes the token survives beyond the few edge characters the mask
      // cannot know (they mix token and surrounding bits)
      for (let i = 0; i + 12 <= stretch.length; i++) expect(out).not.toContain(stretch.slice(i, i + 12));
      expect(out.startsWith('Secret data: ')).toBe(true);
      expect(out.endsWith(' end')).toBe(true);
    });
  }

  it('masks a 10-character secret inside base64 at every alignment (its shortest stable core, 8 characters)', () => {
    const short = 'Pw-10chars';
    registerSecret(short);
    for (const prefix of ['', 'p', 'pp']) {
      const blob = Buffer.from(`${prefix}${short}`).toString('base64');
      expect(redact(blob), `offset ${prefix.length}`).toContain(MASK);
    }
  });

  it('masks the JSON-escaped form inside a larger JSON string, and the whole base64 form with no fragment left', () => {
    registerSecret(token + '"q');
    const json = JSON.stringify({ msg: `helm said ${token}"q twice` });
    expect(redact(json)).toBe(`{"msg":"helm said ${MASK} twice"}`);
    expect(redact(`b64 ${Buffer.from(token + '"q').toString('base64')} .`)).toBe(`b64 ${MASK} .`);
  });

  it('a secret that contains another registered secret is masked whole (longest first)', () => {
    registerSecret('gitpass1');
    registerSecret('gitpass1-and-the-rest-of-a-longer-token');
    expect(redact('x gitpass1-and-the-rest-of-a-longer-token y')).toBe(`x ${MASK} y`);
  });

  it('masks the URL-encoded form of a registered secret', () => {
    const pw = 'p@ss/word with space&more';
    registerSecret(pw);
    const out = redact(`git clone https://example.com/?x=${encodeURIComponent(pw)}`);
    expect(out).not.toContain(encodeURIComponent(pw));
    expect(out).toContain(MASK);
  });

  it('does not register values shorter than 6 characters (masking "abc" everywhere would destroy output)', () => {
    registerSecret('abcde');
    registerSecret('');
    registerSecret(undefined);
    expect(redact('abcde is the alphabet start')).toBe('abcde is the alphabet start');
    expect(redact('base64 YWJjZGU= too')).toBe('base64 YWJjZGU= too'); // nor any of their forms
    registerSecret('abcdef');
    expect(redact('abcdef is the alphabet start')).toBe(`${MASK} is the alphabet start`);
  });

  it('forgetAllSecrets() stops masking values registered before', () => {
    registerSecret(token);
    expect(redact(token)).toBe(MASK);
    forgetAllSecrets();
    expect(redact(token)).toBe(token);
  });

  it('masks a JWT it was never told about (OIDC id tokens, service-account tokens)', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';
    const out = redact(`kubectl said: unauthorized for ${jwt} (expired)`);
    expect(out).toBe(`kubectl said: unauthorized for ${MASK} (expired)`);
  });

  it('masks Slack app tokens, Basic auth, quoted JSON secrets and client secrets', () => {
    expect(redact('SLACK_APP_TOKEN xapp-1-A0123-4567-abcdef')).toBe(`SLACK_APP_TOKEN ${MASK}`);
    expect(redact('Authorization: Basic dXNlcjpwYXNzd29yZA==')).toBe(`Authorization: Basic ${MASK}`);
    expect(redact('{"client_secret": "abc123xyz789"}')).toBe(`{"client_secret": "${MASK}"}`);
    expect(redact("api-key='k3y-value'")).toBe(`api-key="${MASK}"`);
    expect(redact('git push https://bot:ghp_abcdef123456@github.com/acme/dags.git')).toBe(`git push https://bot:${MASK}@github.com/acme/dags.git`);
  });

  it('redactDeep masks strings at any depth and keeps keys, numbers and nulls', () => {
    registerSecret(token);
    expect(redactDeep({ a: [token, 1, null, { b: `x ${token}` }], [token.slice(0, 3)]: true })).toEqual({ a: [MASK, 1, null, { b: `x ${MASK}` }], 'RE-': true });
  });

  it('errors carry only redacted messages', () => {
    registerSecret(token);
    const e = new RedactedError(`helm failed: ${token}`, 'helm_failed');
    expect(e.message).toBe(`helm failed: ${MASK}`);
    expect(e.code).toBe('helm_failed');
    expect(e.name).toBe('RedactedError');
    expect(errorMessage(new Error(`boom ${token}`))).toBe(`boom ${MASK}`);
    expect(errorMessage(`thrown string ${token}`)).toBe(`thrown string ${MASK}`);
  });
});
