import type { WebClient } from '@slack/web-api';
import { GroupResolver } from './policy.ts';

/** Slack users and user groups, cached: group membership for the policy, display names for the audit trail. */
export class Directory {
  readonly groups: GroupResolver;
  private names = new Map<string, { name: string; at: number }>();

  constructor(private client: WebClient, private ttlMs = 10 * 60_000) {
    this.groups = new GroupResolver(client, ttlMs);
  }

  /** users.info real name, or undefined (never throws, never waits more than `budgetMs`) */
  async displayName(user: string, budgetMs = 1500): Promise<string | undefined> {
    const hit = this.names.get(user);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.name;
    const lookup = this.client.users
      .info({ user })
      .then((r) => {
        const u = r.user as { real_name?: string; name?: string } | undefined;
        const name = u?.real_name || u?.name;
        if (name) this.names.set(user, { name, at: Date.now() });
        return name;
      })
      .catch(() => undefined);
    return Promise.race([lookup, new Promise<undefined>((r) => setTimeout(() => r(undefined), budgetMs).unref())]);
  }

  /** the bot's DM with a user: where a job started from another DM reports (the bot cannot post there) */
  async dmWith(user: string): Promise<string | undefined> {
    try {
      const r = await this.client.conversations.open({ users: user });
      return r.channel?.id;
    } catch {
      return undefined;
    }
  }
}
