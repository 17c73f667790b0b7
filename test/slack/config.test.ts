import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { approvalSettingsFromEnv, ConfigError, loadSlackConfig } from '../../src/slack/config.ts';
import { secretKeyFromEnv } from '../../src/store/crypto.ts';

it('names the variable that is missing or malformed', () => {
  const bad = (env: Record<string, string>) => {
    try {
      loadSlackConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  };
  expect(bad({ SLACK_BOT_TOKEN: 'xoxb-1' })).toMatch(/SLACK_APP_TOKEN: is required in Socket Mode/);
  expect(bad({ RE_BOT_SLACK_MODE: 'http', SLACK_BOT_TOKEN: 'xoxb-1' })).toMatch(/SLACK_SIGNING_SECRET/);
  expect(bad({ SLACK_BOT_TOKEN: 'nope', SLACK_APP_TOKEN: 'xapp-1' })).toMatch(/SLACK_BOT_TOKEN: expected a bot token/);
  expect(bad({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', RE_BOT_APPROVERS: 'U1,alice' })).toMatch(/RE_BOT_APPROVERS/);
  expect(bad({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', RE_BOT_REQUIRED_APPROVALS: '0' })).toMatch(/RE_BOT_REQUIRED_APPROVALS/);
});

it('parses defaults and lists', () => {
  const c = loadSlackConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', RE_BOT_APPROVERS: 'U0A, S0GROUP', RE_BOT_OPERATORS: '*' });
  expect(c).toMatchObject({ mode: 'socket', port: 3000, requiredApprovals: 1, allowSelfApproval: false, approvers: ['U0A', 'S0GROUP'] });
});

it('says what a malformed approval variable should be, in words', () => {
  const ok = { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', RE_BOT_APPROVERS: 'U0A', RE_BOT_OPERATORS: '*' };
  const messageOf = (env: Record<string, string>) => {
    try {
      loadSlackConfig({ ...ok, ...env });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  };
  expect(messageOf({ RE_BOT_APPROVAL_TTL_HOURS: 'abc' })).toContain('RE_BOT_APPROVAL_TTL_HOURS: expected a positive number of hours, got "abc"');
  expect(messageOf({ RE_BOT_APPROVAL_TTL_HOURS: '-3' })).toContain('RE_BOT_APPROVAL_TTL_HOURS: expected a positive number of hours, got "-3"');
  expect(messageOf({ RE_BOT_REQUIRED_APPROVALS: 'two' })).toContain('RE_BOT_REQUIRED_APPROVALS: expected a positive integer (the number of distinct approvals needed), got "two"');
  expect(messageOf({ RE_BOT_REQUIRED_APPROVALS: '1.5' })).toContain('RE_BOT_REQUIRED_APPROVALS: expected a positive integer');
  expect(messageOf({ RE_BOT_APPROVAL_TTL_HOURS: 'abc' })).not.toMatch(/NaN|received/);
  expect(loadSlackConfig({ ...ok, RE_BOT_APPROVAL_TTL_HOURS: '1.5', RE_BOT_REQUIRED_APPROVALS: '2' })).toMatchObject({ approvalTtlMs: 5_400_000, requiredApprovals: 2 });
});

it('approvalSettingsFromEnv checks the approval variables without needing Slack tokens', () => {
  expect(approvalSettingsFromEnv({})).toEqual({ approvers: [], requiredApprovals: 1, allowSelfApproval: false, approvalTtlMs: 24 * 3600_000 });
  expect(() => approvalSettingsFromEnv({ RE_BOT_REQUIRED_APPROVALS: 'x' })).toThrow(ConfigError);
  expect(() => approvalSettingsFromEnv({ RE_BOT_REQUIRED_APPROVALS: 'x' })).toThrow(/^RE_BOT_REQUIRED_APPROVALS: expected a positive integer/);
});

describe('the CLI maps configuration errors to exit 2, with the variable named and no stack trace', () => {
  const saved = { ...process.env };
  let stderr = '';
  beforeEach(() => {
    stderr = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  it.each(['run', 'demo'])('re-bot %s with a malformed RE_BOT_REQUIRED_APPROVALS', async (cmd) => {
    process.env.RE_BOT_REQUIRED_APPROVALS = 'two';
    expect(await main([cmd, 'examples/demo.yaml'])).toBe(2);
    expect(stderr).toBe(`re-bot ${cmd}: RE_BOT_REQUIRED_APPROVALS: expected a positive integer (the number of distinct approvals needed), got "two"\n`);
  });

  it('re-bot run with a RE_BOT_SECRET_KEY that is not 32 bytes, never echoing the key', async () => {
    process.env.RE_BOT_SECRET_KEY = Buffer.from('sixteen-byte-key').toString('base64');
    expect(await main(['run', 'examples/demo.yaml'])).toBe(2);
    expect(stderr).toMatch(/^re-bot run: RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes, got 16 bytes \(generate one with `openssl rand -base64 32`\)\n$/);
    expect(stderr).not.toContain(process.env.RE_BOT_SECRET_KEY);
  });

  it('any other failure is one redacted line and exit 1, with no stack trace', async () => {
    delete process.env.LOG_LEVEL;
    const notADir = join(mkdtempSync(join(tmpdir(), 're-bot-cli-')), 'file');
    writeFileSync(notADir, '');
    expect(await main(['plan', 'examples/aws-minimal.yaml', '--out', notADir])).toBe(1);
    expect(stderr).toMatch(/^re-bot plan: (EEXIST|ENOTDIR)[^\n]*\n$/);
  });

  it('the Slack bot key loader throws the same ConfigError', () => {
    expect(() => secretKeyFromEnv({ RE_BOT_SECRET_KEY: 'not base64!' })).toThrow(ConfigError);
    expect(secretKeyFromEnv({ RE_BOT_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') })).toHaveLength(32);
    expect(secretKeyFromEnv({})).toBeUndefined();
  });
});
