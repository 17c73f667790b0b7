/**
 * Issue 11's list of bad inputs, each fed to the real CLI (`node bin/re-bot.mjs`) as a user would: the exit
 * code, a message that names the field or variable and says what was expected, and never a stack trace or
 * zod's raw wording. (Bad RE_BOT_DB values have their own table in db-commands.test.ts.)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { reBot, ROOT, scratch, STACK } from './support.ts';

const demo = () => parse(readFileSync(join(ROOT, 'examples/demo.yaml'), 'utf8')) as Record<string, any>;
const dir = scratch('bad-input');
let n = 0;
const specFile = (text: string) => {
  const p = join(dir, `spec-${++n}.yaml`);
  writeFileSync(p, text);
  return p;
};
const edited = (edit: (s: Record<string, any>) => void) => {
  const s = demo();
  edit(s);
  return specFile(stringify(s));
};
const ALIAS_BOMB = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`)].join('\n');

interface Case {
  name: string;
  args: () => string[];
  env?: Record<string, string | undefined>;
  code: number;
  says: RegExp[];
}

const CASES: Case[] = [
  { name: 'no command arguments for plan', args: () => ['plan'], code: 2, says: [/usage: re-bot plan <spec\.yaml>/] },
  { name: 'an unknown command', args: () => ['deploy'], code: 2, says: [/unknown command "deploy"/, /Usage:/] },
  { name: 'a spec file that does not exist', args: () => ['plan', join(dir, 'nope.yaml')], code: 2, says: [/cannot read spec file .*nope\.yaml/] },
  { name: 'a spec without `deployment`', args: () => ['plan', edited((s) => delete s.deployment)], code: 2, says: [/deployment: .*required/] },
  { name: 'a spec without `cluster`', args: () => ['plan', edited((s) => delete s.cluster)], code: 2, says: [/cluster: .*required/] },
  { name: 'a spec without `agent`', args: () => ['plan', edited((s) => delete s.agent)], code: 2, says: [/agent: .*required/] },
  { name: 'a spec without `cluster.chart`', args: () => ['plan', edited((s) => delete s.cluster.chart)], code: 2, says: [/cluster\.chart: .*required/] },
  {
    name: 'replicas: "two"',
    args: () => ['plan', edited((s) => (s.agent.workers[0].replicas = 'two'))],
    code: 2,
    says: [/agent\.workers\[0\]\.replicas: must be a number/, /"two"/],
  },
  { name: 'YAML that does not parse', args: () => ['plan', specFile('deployment:\n  name: demo\n   id: x\n')], code: 2, says: [/invalid YAML at line \d+, column \d+: \S+/] },
  { name: 'a YAML alias bomb', args: () => ['plan', specFile(ALIAS_BOMB)], code: 2, says: [/alias/i] },
  { name: 'a 5 MB trackingRef', args: () => ['plan', edited((s) => (s.dagSource.trackingRef = 'x'.repeat(5 << 20)))], code: 2, says: [/256 KiB/] },
  { name: 'a 3,000-character trackingRef', args: () => ['plan', edited((s) => (s.dagSource.trackingRef = 'x'.repeat(3000)))], code: 2, says: [/dagSource\.trackingRef: is too long: 3,000 characters, at most 2,048/] },
  { name: 'RE_BOT_APPROVAL_TTL_HOURS=abc', args: () => ['run', join(ROOT, 'examples/demo.yaml')], env: { RE_BOT_APPROVAL_TTL_HOURS: 'abc' }, code: 2, says: [/RE_BOT_APPROVAL_TTL_HOURS: expected a positive number of hours, got "abc"/] },
  { name: 'RE_BOT_REQUIRED_APPROVALS=two for run', args: () => ['run', join(ROOT, 'examples/demo.yaml')], env: { RE_BOT_REQUIRED_APPROVALS: 'two' }, code: 2, says: [/RE_BOT_REQUIRED_APPROVALS: expected a positive integer/] },
  { name: 'RE_BOT_SEALED_TTL_HOURS=1 for run', args: () => ['run', join(ROOT, 'examples/demo.yaml')], env: { RE_BOT_SEALED_TTL_HOURS: '1' }, code: 2, says: [/RE_BOT_SEALED_TTL_HOURS: expected a number of hours of at least 2/] },
  { name: 'RE_BOT_REQUIRED_APPROVALS=0 for demo', args: () => ['demo'], env: { RE_BOT_REQUIRED_APPROVALS: '0' }, code: 2, says: [/RE_BOT_REQUIRED_APPROVALS: expected a positive integer/] },
  { name: 'a RE_BOT_SECRET_KEY that is not 32 bytes', args: () => ['run', join(ROOT, 'examples/demo.yaml')], env: { RE_BOT_SECRET_KEY: 'c2hvcnQta2V5' }, code: 2, says: [/RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes/] },
  { name: 'userinfo in a URL', args: () => ['plan', edited((s) => (s.deployment.apiUrl = 'https://tok3n@example.astronomer.run/d1'))], code: 2, says: [/deployment\.apiUrl: /] },
  { name: 'namespace kube-system', args: () => ['plan', edited((s) => (s.cluster.namespace = 'kube-system'))], code: 2, says: [/cluster\.namespace: /, /kube-system/] },
];

describe('every bad input gets a sentence naming what is wrong, the documented exit code, and no stack trace', () => {
  it.each(CASES)('$name', async (c) => {
    const r = await reBot(c.args(), { RE_BOT_DB: join(dir, `db-${c.name.replace(/\W+/g, '-')}`, 're-bot.db'), ...c.env });
    expect(r.code, r.out).toBe(c.code);
    for (const re of c.says) expect(r.out).toMatch(re);
    expect(r.out).not.toMatch(STACK);
    expect(r.out).not.toMatch(/Invalid input|received undefined|received NaN|ZodError/);
    expect(r.out).not.toContain('tok3n');
  });
});
