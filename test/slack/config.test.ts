import { expect, it } from 'vitest';
import { ConfigError, loadSlackConfig } from '../../src/slack/config.ts';

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
