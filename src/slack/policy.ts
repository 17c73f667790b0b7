import type { WebClient } from '@slack/web-api';

/**
 * Resolves user-group (S…) membership with a TTL cache. A failed lookup (a 429, say) with nothing cached
 * throws: treating it as "not a member" would refuse a real approver and write a false refusal to the audit.
 */
export class GroupResolver {
  private cache = new Map<string, { users: Set<string>; at: number }>();
  constructor(private client: WebClient, private ttlMs = 5 * 60_000) {}

  async groupsOf(user: string, groupIds: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const g of groupIds.filter((x) => x.startsWith('S'))) {
      if ((await this.members(g)).has(user)) out.push(g);
    }
    return out;
  }

  async isMember(user: string, ids: string[]): Promise<boolean> {
    if (ids.includes(user)) return true;
    return (await this.groupsOf(user, ids)).length > 0;
  }

  private async members(group: string): Promise<Set<string>> {
    const hit = this.cache.get(group);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.users;
    try {
      const r = await this.client.usergroups.users.list({ usergroup: group });
      const users = new Set(r.users ?? []);
      this.cache.set(group, { users, at: Date.now() });
      return users;
    } catch (err) {
      if (hit) return hit.users;
      throw new Error(`could not read the members of user group ${group} from Slack (${(err as Error).message}); try again in a moment`);
    }
  }
}

/** Levenshtein distance for "did you mean" answers. */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

export function closest(word: string, candidates: string[], n = 3): string[] {
  return [...candidates].sort((x, y) => distance(word, x) - distance(word, y)).slice(0, n);
}
