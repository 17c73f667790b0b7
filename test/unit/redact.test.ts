import { describe, expect, it, beforeEach } from 'vitest';
import { redact, redactDeep, registerSecret, forgetAllSecrets, forgetScope, errorMessage, RedactedError, MASK } from '../../src/redact.ts';

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

  // with few secrets the matcher searches form by form, with many it looks up each position of the text: both
  describe.each([0, 300])('encoded forms of a registered secret (and %i other secrets)', (others) => {
    const token = 'RE-agent-t0ken-Zq93xv';
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    beforeEach(() => {
      for (let i = 0; i < others; i++) registerSecret(`unrelated-secret-${i}-${'x'.repeat(i % 7)}`);
      registerSecret(token);
    });

    it('base64 at every alignment inside a larger blob, and base64url', () => {
      for (const pad of ['', 'a', 'ab', 'abc']) {
        const blob = b64(`${pad}{"password":"${token}"}`);
        expect(redact(`blob ${blob} end`), pad).not.toContain(blob.slice(8, -8));
        // this one encodes to + and / at every alignment, which base64url spells - and _
        const slashy = 'RE-agent/t0ken??>>Zq93';
        registerSecret(slashy);
        const url = Buffer.from(`${pad}${slashy}--`).toString('base64url');
        const out = redact(`u=${url}`);
        expect(out, pad).toContain(MASK);
        expect(Buffer.from(out.replace('u=', '').replace(MASK, ''), 'base64url').toString('latin1'), pad).not.toContain(slashy.slice(3, -3));
      }
    });

    it('base64 wrapped over lines (base64 -w, PEM-style 64 columns, indented YAML block)', () => {
      const blob = b64(`{"auths":{"r.example.com":{"password":"${token}","email":"ops@example.com"}}}`);
      for (const width of [20, 64, 76]) {
        const wrapped = blob.replace(new RegExp(`(.{${width}})`, 'g'), '$1\n');
        const out = redact(`stdout:\n${wrapped.split('\n').map((l) => `    ${l}`).join('\n')}\ndone`);
        // decode what is left of every line: the token is not in it, not even split across two lines
        const left = out.split('\n').map((l) => l.trim()).filter((l) => /^[A-Za-z0-9+/=]+$/.test(l)).join('');
        expect(Buffer.from(left, 'base64').toString('latin1'), `width ${width}`).not.toContain(token.slice(3, -3));
        expect(out, `width ${width}`).toContain(MASK);
        expect(out.startsWith('stdout:\n') && out.endsWith('\ndone')).toBe(true);
      }
    });

    it('hex, lower and upper case', () => {
      const hex = Buffer.from(token).toString('hex');
      expect(redact(`key ${hex} / ${hex.toUpperCase()}`)).toBe(`key ${MASK} / ${MASK}`);
    });

    it('the dockerconfigjson auth field (base64 of user:password) when the username is given at registration', () => {
      const password = 'pullT0ken-Y7rc';
      registerSecret(password, { variantsWith: ['cli:'] });
      const auth = b64(`cli:${password}`);
      // not next to an "auth" key, so only the registered form can catch it
      expect(redact(`credentials ${auth} rejected`)).toBe(`credentials ${MASK} rejected`);
      const secretData = b64(JSON.stringify({ auths: { 'r.io': { auth } } }));
      expect(redact(`.dockerconfigjson ${secretData}`)).not.toContain(secretData.slice(30, -8));
    });

    it('a job-scoped secret is masked until forgetScope(job), a permanent one stays masked', () => {
      registerSecret('job-only-secret-1', { scope: 'job_1' });
      registerSecret('two-jobs-secret-2', { scope: 'job_1' });
      registerSecret('two-jobs-secret-2', { scope: 'job_2' });
      registerSecret(token, { scope: 'job_1' }); // also registered without a scope above
      const line = 'a job-only-secret-1 b two-jobs-secret-2 c ' + token;
      expect(redact(line)).toBe(`a ${MASK} b ${MASK} c ${MASK}`);
      forgetScope('job_1');
      expect(redact(line)).toBe(`a job-only-secret-1 b ${MASK} c ${MASK}`);
      forgetScope('job_2');
      expect(redact(line)).toBe(`a job-only-secret-1 b two-jobs-secret-2 c ${MASK}`);
    });
  });

  describe('credential shapes it was never told about', () => {
    it('GitHub tokens', () => {
      const classic = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
      const fine = 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789abcdefghijkl';
      const out = redact(`git clone https://x-access-token@github.com remote: ${classic} and ${fine}.`);
      expect(out).not.toContain(classic.slice(4));
      expect(out).not.toContain('abcdefghijklmnop');
      expect(out).toContain(`remote: ${MASK} and ${MASK}.`);
    });

    it('AWS access key ids and the secret access key next to its name', () => {
      const out = redact([
        '[default]',
        'aws_access_key_id = AKIAIOSFODNN7EXAMPLE',
        'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        '{"AccessKeyId":"ASIAQWERTYUIOPASDFGH","SecretAccessKey":"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}',
      ].join('\n'));
      for (const s of ['AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG', 'ASIAQWERTYUIOPASDFGH', 'je7MtGbClwBF/2Zp9Utk']) expect(out).not.toContain(s);
      expect(out).toContain('[default]');
    });

    it('PEM private key blocks, also one cut off before its END line', () => {
      const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNb\n';
      const full = `before\n-----BEGIN RSA PRIVATE KEY-----\n${body}-----END RSA PRIVATE KEY-----\nafter`;
      expect(redact(full)).toBe(`before\n${MASK}\nafter`);
      const openssh = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}-----END OPENSSH PRIVATE KEY-----`;
      expect(redact(openssh)).toBe(MASK);
      const cut = `log tail\n-----BEGIN PRIVATE KEY-----\n${body}`;
      const out = redact(cut);
      expect(out).not.toContain('MIIEvQIBADAN');
      expect(out).not.toContain('VJTUt9Us8cKj');
      expect(out.startsWith('log tail\n')).toBe(true);
      // a certificate is public: left alone
      const cert = `-----BEGIN CERTIFICATE-----\n${body}-----END CERTIFICATE-----`;
      expect(redact(cert)).toBe(cert);
    });
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
