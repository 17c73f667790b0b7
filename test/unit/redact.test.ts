import { describe, expect, it, beforeEach } from 'vitest';
import { redact, registerSecret, forgetAllSecrets, MASK } from '../../src/redact.ts';

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
