/** The wizard's agent-token choice: "create a token for me" (Astro API) or "paste one". */
import { describe, expect, it } from 'vitest';
import { SAMPLE_SPEC_INPUT } from '../support/fake-engine.ts';
import { parseSpec, type SetupSpec } from '../../src/spec/schema.ts';
import { buildRaw, locate, prefillFromSpec } from '../../src/slack/wizard-spec.ts';

const parsed = (over: Record<string, unknown>): SetupSpec => {
  const r = parseSpec({ ...SAMPLE_SPEC_INPUT, agent: { ...SAMPLE_SPEC_INPUT.agent, ...over } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
};

describe('wizard: agent token', () => {
  it('"create a token for me" puts { create: { expiresInDays } } into the spec, and a previous such spec round-trips', () => {
    const pasted = prefillFromSpec(parsed({}));
    expect(pasted.values['agent.token.source']).toBeUndefined(); // the select starts on "paste"
    const values = { ...pasted.values, 'agent.token.source': 'create', 'agent.token.create.expiresInDays': '30' };
    const r = parseSpec(buildRaw(values, { sealed: {}, keep: pasted.keep }, pasted.base));
    expect(r.ok && r.spec.agent.token).toEqual({ create: { expiresInDays: 30 } });

    const created = parsed({ token: { create: { expiresInDays: 45 } } });
    const p = prefillFromSpec(created);
    expect(p.values['agent.token.source']).toBe('create');
    expect(p.values['agent.token.create.expiresInDays']).toBe('45');
    expect(p.keep['agent.token']).toBeUndefined();
    const again = parseSpec(buildRaw(p.values, { sealed: {}, keep: p.keep }, p.base));
    expect(again.ok && again.spec).toEqual(created);
  });

  it('empty days: a token that never expires; days that are not a number: an error on that field', () => {
    const p = prefillFromSpec(parsed({}));
    const never = parseSpec(buildRaw({ ...p.values, 'agent.token.source': 'create' }, { sealed: {}, keep: p.keep }, p.base));
    expect(never.ok && never.spec.agent.token).toEqual({ create: {} });
    const bad = parseSpec(buildRaw({ ...p.values, 'agent.token.source': 'create', 'agent.token.create.expiresInDays': 'soon' }, { sealed: {}, keep: p.keep }, p.base));
    expect(bad.ok).toBe(false);
    const e = !bad.ok ? bad.errors.find((x) => x.path === 'agent.token.create.expiresInDays') : undefined;
    expect(e?.message).toMatch(/number of days/);
    expect(locate(e!, { 'agent.token.source': 'create' })).toMatchObject({ page: 'target', block: 'agent.token.create.expiresInDays' });
  });

  it('switching back to "paste" needs the token typed (the created form is dropped)', () => {
    const p = prefillFromSpec(parsed({ token: { create: { expiresInDays: 45 } } }));
    const r = parseSpec(buildRaw({ ...p.values, 'agent.token.source': 'paste' }, { sealed: {}, keep: p.keep }, p.base));
    expect(!r.ok && r.errors.map((x) => x.path)).toEqual(['agent.token']);
  });
});
