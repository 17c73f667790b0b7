import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '../..');
const schema = JSON.parse(readFileSync(resolve(root, 'test/fixtures/slack/manifest.schema.1.0.0.json'), 'utf8'));

function validator() {
  const ajv = new (Ajv as unknown as typeof Ajv.default)({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
}

describe('app-manifest.yml', () => {
  const manifest = parse(readFileSync(resolve(root, 'app-manifest.yml'), 'utf8'));

  it('validates against the Slack v1 manifest schema', () => {
    const validate = validator();
    const ok = validate(manifest);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema rejects a broken manifest (the check can fail)', () => {
    const validate = validator();
    expect(validate({ ...manifest, display_information: { name: '' } })).toBe(false);
  });

  it('enables Socket Mode, interactivity, /re with a usage hint and exactly the scopes the app uses', () => {
    expect(manifest.settings.socket_mode_enabled).toBe(true);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    const re = manifest.features.slash_commands.find((c: { command: string }) => c.command === '/re');
    expect(re.usage_hint).toMatch(/setup/);
    expect(re.url).toBeUndefined();
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual(
      ['chat:write', 'chat:write.public', 'commands', 'im:write', 'usergroups:read', 'users:read', 'channels:history', 'groups:history', 'im:history'].sort(),
    );
  });
});
