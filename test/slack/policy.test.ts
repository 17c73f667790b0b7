import { describe, expect, it } from 'vitest';
import { GroupResolver, closest, distance } from '../../src/slack/policy.ts';

/** a WebClient stand-in: only usergroups.users.list, answering from a table (or failing on demand) */
function client(groups: Record<string, string[]>) {
  const calls: string[] = [];
  let fail: Error | undefined;
  const c = {
    usergroups: {
      users: {
        list: async ({ usergroup }: { usergroup: string }) => {
          calls.push(usergroup);
          if (fail) throw fail;
          return { ok: true, users: groups[usergroup] };
        },
      },
    },
  };
  return { c: c as never, calls, failWith: (e: Error | undefined) => (fail = e) };
}

describe('GroupResolver (operators and approvers through user groups)', () => {
  it('a user listed directly is a member without asking Slack; S… ids are looked up; others are not', async () => {
    const { c, calls } = client({ S0OPS: ['UOP'] });
    const r = new GroupResolver(c);
    expect(await r.isMember('UDIRECT', ['UDIRECT', 'S0OPS'])).toBe(true);
    expect(calls).toEqual([]);
    expect(await r.isMember('UOP', ['UOTHER', 'S0OPS'])).toBe(true);
    expect(await r.isMember('UNOPE', ['UOTHER', 'S0OPS'])).toBe(false);
    expect(await r.isMember('UNOPE', [])).toBe(false);
    expect(calls).toEqual(['S0OPS']); // user ids are never looked up as groups; the second answer came from the cache
  });

  it('groupsOf lists exactly the groups the user is in', async () => {
    const { c } = client({ S1: ['U1', 'U2'], S2: ['U2'], S3: [] });
    const r = new GroupResolver(c);
    expect(await r.groupsOf('U2', ['S1', 'S2', 'S3', 'U2'])).toEqual(['S1', 'S2']);
    expect(await r.groupsOf('U1', ['S1', 'S2', 'S3'])).toEqual(['S1']);
    expect(await r.groupsOf('U9', ['S1', 'S2', 'S3', 'S4'])).toEqual([]); // S4 answers no users at all
  });

  it('a failed lookup with nothing cached throws (never "not a member"); with a cached answer it uses that', async () => {
    const { c, calls, failWith } = client({ S0OPS: ['UOP'] });
    const r = new GroupResolver(c, 0); // every lookup goes to Slack
    failWith(new Error('ratelimited'));
    await expect(r.isMember('UOP', ['S0OPS'])).rejects.toThrow('could not read the members of user group S0OPS from Slack (ratelimited); try again in a moment');
    failWith(undefined);
    expect(await r.isMember('UOP', ['S0OPS'])).toBe(true);
    failWith(new Error('ratelimited'));
    expect(await r.isMember('UOP', ['S0OPS'])).toBe(true); // stale but known beats a false refusal
    expect(calls).toHaveLength(3);
  });

  it('caches members for the TTL, then asks again', async () => {
    const groups: Record<string, string[]> = { S0OPS: ['UOP'] };
    const { c, calls } = client(groups);
    const r = new GroupResolver(c, 60_000);
    expect(await r.isMember('UNEW', ['S0OPS'])).toBe(false);
    groups.S0OPS = ['UOP', 'UNEW'];
    expect(await r.isMember('UNEW', ['S0OPS'])).toBe(false); // cached
    expect(calls).toHaveLength(1);
    const expired = new GroupResolver(c, -1);
    expect(await expired.isMember('UNEW', ['S0OPS'])).toBe(true);
    expect(await expired.isMember('UNEW', ['S0OPS'])).toBe(true);
    expect(calls).toHaveLength(3);
  });
});

describe('did-you-mean', () => {
  it('edit distance', () => {
    expect(distance('status', 'status')).toBe(0);
    expect(distance('stauts', 'status')).toBe(2);
    expect(distance('', 'abc')).toBe(3);
    expect(distance('abc', '')).toBe(3);
    expect(distance('kitten', 'sitting')).toBe(3);
    expect(distance('retry', 'reset')).toBe(3);
  });
  it('closest candidates first, at most n', () => {
    expect(closest('stauts', ['setup', 'status', 'history', 'cancel'], 1)).toEqual(['status']);
    expect(closest('sales-prd', ['billing', 'sales-dev', 'sales-prod'])).toEqual(['sales-prod', 'sales-dev', 'billing']);
    expect(closest('x', ['a', 'b', 'c', 'd', 'e'])).toHaveLength(3);
  });
});
