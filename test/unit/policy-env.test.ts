import { expect, it } from 'vitest';
import { accessListProblems, specPolicyFromEnv } from '../../src/policy-env.ts';
import { approvalPolicyFrom, ConfigError, loadSlackConfig } from '../../src/slack/config.ts';

const SLACK = { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' };

it('RE_BOT_APPROVERS and RE_BOT_OPERATORS are required: unset, empty and only commas all count as not set', () => {
  for (const v of [undefined, '', '  ', ' , ,']) {
    expect(() => loadSlackConfig({ ...SLACK, RE_BOT_APPROVERS: v, RE_BOT_OPERATORS: 'U0OP' })).toThrow(/RE_BOT_APPROVERS: is not set: list the Slack user ids/);
    expect(() => loadSlackConfig({ ...SLACK, RE_BOT_APPROVERS: 'U0AP', RE_BOT_OPERATORS: v })).toThrow(/RE_BOT_OPERATORS: is not set/);
  }
  const err = (() => {
    try {
      loadSlackConfig(SLACK);
    } catch (e) {
      return e as ConfigError;
    }
  })();
  expect(err).toBeInstanceOf(ConfigError);
  expect(err!.problems.map((p) => p.variable).sort()).toEqual(['RE_BOT_APPROVERS', 'RE_BOT_OPERATORS']);
});

it('`*` means anyone, on purpose; it cannot be mixed with ids', () => {
  const c = loadSlackConfig({ ...SLACK, RE_BOT_APPROVERS: '*', RE_BOT_OPERATORS: '*' });
  expect(c.operators).toEqual(['*']);
  // the engine's "anyone" is an empty approver list
  expect(approvalPolicyFrom(c).approvers).toEqual([]);
  expect(approvalPolicyFrom(loadSlackConfig({ ...SLACK, RE_BOT_APPROVERS: 'S0AP', RE_BOT_OPERATORS: '*' })).approvers).toEqual(['S0AP']);
  // a config built by hand with an empty list lets nobody approve
  expect(approvalPolicyFrom({ ...c, approvers: [] }).approvers).toEqual(['(nobody)']);
  expect(accessListProblems({ RE_BOT_APPROVERS: '*,U0AP', RE_BOT_OPERATORS: '*' })).toEqual([{ variable: 'RE_BOT_APPROVERS', message: expect.stringMatching(/cannot be combined/) }]);
});

it('the spec policy variables: lists, globs, a build root that must be a directory', () => {
  const { policy, problems } = specPolicyFromEnv({ RE_BOT_ALLOWED_NAMESPACES: 'astro-*, team-a-agents', RE_BOT_ALLOWED_REGISTRIES: '*.dkr.ecr.*.amazonaws.com,registry.acme.internal:5000', RE_BOT_BUILD_ROOT: '/tmp' }, '/srv');
  expect(problems).toEqual([]);
  expect(policy).toEqual({ workDir: '/srv', buildRoot: '/tmp', allowedNamespaces: ['astro-*', 'team-a-agents'], allowedRegistries: ['*.dkr.ecr.*.amazonaws.com', 'registry.acme.internal:5000'] });
  expect(specPolicyFromEnv({}, '/srv').policy).toEqual({ workDir: '/srv', buildRoot: '/srv' });
  expect(specPolicyFromEnv({ RE_BOT_ALLOWED_REGISTRIES: 'https://r.example.com', RE_BOT_BUILD_ROOT: '/nonexistent-re-bot' }).problems.map((p) => p.variable)).toEqual(['RE_BOT_ALLOWED_REGISTRIES', 'RE_BOT_BUILD_ROOT']);
});
