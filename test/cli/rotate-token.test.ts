/** `re-bot rotate-token` refuses what it cannot rotate before touching anything (the rotation itself: test/e2e/agent-token.test.ts). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { reBot, ROOT, scratch, STACK } from './support.ts';

const dir = scratch('rotate-cli');

describe('re-bot rotate-token', () => {
  it('usage errors and a pasted agent token exit 2 with what to do; a bad expiry names its field', async () => {
    const env = { RE_BOT_DB: join(dir, 're-bot.db') };
    const none = await reBot(['rotate-token'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/missing spec file\nusage: re-bot rotate-token <spec.yaml> \[--yes\]/);

    const demo = parse(readFileSync(join(ROOT, 'examples/demo.yaml'), 'utf8'));
    demo.agent.token = { env: 'ASTRO_AGENT_TOKEN' };
    const pasted = join(dir, 'pasted.yaml');
    writeFileSync(pasted, stringify(demo));
    const r = await reBot(['rotate-token', pasted], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/agent\.token is a secret reference \(a pasted token\); re-bot rotates only tokens it creates: set agent\.token: \{ create: \{ expiresInDays: 90 \} \}/);

    demo.agent.token = { create: { expiresInDays: 0 } };
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify(demo));
    const b = await reBot(['rotate-token', bad], env);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('agent.token.create.expiresInDays: expected at least 1 day');
    for (const x of [none, r, b]) expect(x.out).not.toMatch(STACK);
  }, 60_000);
});
