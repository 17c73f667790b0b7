/**
 * How long a user-group answer is reused: someone added to the approvers' group can act within five minutes
 * (the default TTL), and until then Slack is asked once per group, not once per click.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GroupResolver } from '../../src/slack/policy.ts';

function client(members: string[]) {
  const calls: string[] = [];
  const c = { usergroups: { users: { list: async ({ usergroup }: { usergroup: string }) => (calls.push(usergroup), { ok: true, users: [...members] }) } } };
  return { c: c as never, calls, members };
}

afterEach(() => vi.useRealTimers());

describe('GroupResolver cache lifetime', () => {
  it('reuses a group\'s members for five minutes by default, then asks Slack again and sees a user added meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-30T12:00:00Z'));
    const { c, calls, members } = client(['UALICE']);
    const r = new GroupResolver(c);
    expect(await r.isMember('UBOB', ['S0APPROVERS'])).toBe(false);
    members.push('UBOB'); // added to the group in Slack
    vi.setSystemTime(new Date('2026-11-30T12:04:59.999Z'));
    expect(await r.isMember('UBOB', ['S0APPROVERS'])).toBe(false);
    expect(calls).toHaveLength(1);
    vi.setSystemTime(new Date('2026-11-30T12:05:00Z'));
    expect(await r.isMember('UBOB', ['S0APPROVERS'])).toBe(true);
    expect(calls).toHaveLength(2);
  });
});
