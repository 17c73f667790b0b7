import { describe, expect, it, beforeEach } from 'vitest';
import { redact, registerSecret, forgetAllSecrets, forgetScope, MASK } from '../../src/redact.ts';

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
