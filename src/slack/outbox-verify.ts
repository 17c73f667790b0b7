import type { WebClient } from '@slack/web-api';
import type { OutboxEntry } from './outbox-store.ts';

/**
 * The outbox's idempotency key in Slack (docs/ha.md §3, "gap 2"). Every post carries its outbox key in the message
 * metadata; a post whose sender died mid-request (its row was left `sending`, recovered with `verify`) is looked up
 * in the channel by that key before it is posted again. Keys are job, step and approval ids (src/slack/progress.ts),
 * never secrets; they are readable by apps with a history scope in that channel, as the message text is.
 */
export const OUTBOX_EVENT_TYPE = 're_bot_outbox';

export function outboxMetadata(key: string): { event_type: string; event_payload: { key: string } } {
  return { event_type: OUTBOX_EVENT_TYPE, event_payload: { key } };
}

/** scopes the lookup needs (conversations.history / conversations.replies in public, private and DM channels) */
export const HISTORY_SCOPES = ['channels:history', 'groups:history', 'im:history'] as const;

/** how far before its enqueue time a message is looked for: clock skew between this host and Slack */
export const LOOKUP_MARGIN_MS = 5 * 60_000;
export const LOOKUP_PAGE_SIZE = 200;
export const LOOKUP_MAX_PAGES = 3;

/** the lookup read every page it may and the message may still be further back (a very busy channel) */
export class LookupIncomplete extends Error {
  constructor(pages: number) {
    super(`not found in the ${pages * LOOKUP_PAGE_SIZE} newest messages since it was queued, and there are more`);
  }
}

interface Message {
  ts?: string;
  metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
}

/** Slack's `oldest` for a row: its enqueue time minus the margin, in seconds.micros */
export function lookupOldest(enqueuedAt: number | undefined): string {
  return (Math.max(0, (enqueuedAt ?? 0) - LOOKUP_MARGIN_MS) / 1000).toFixed(6);
}

/**
 * The ts of the message posted for `e`, or undefined when Slack has none. A reply is looked for in its thread
 * (`conversations.replies` on `threadTs`), a thread parent in the channel (`conversations.history`, newest first),
 * both from the row's enqueue time minus a margin, a few pages at most. `renew` runs before each request and
 * returns false when the sender lost the channel (the lookup stops: undefined is never returned then, it throws).
 * Throws Slack's error (missing_scope, channel_not_found, rate limit, timeout) or LookupIncomplete.
 */
export async function findPosted(client: WebClient, e: OutboxEntry, threadTs: string | undefined, renew: () => Promise<boolean>): Promise<string | undefined> {
  const oldest = lookupOldest(e.enqueuedAt);
  let cursor: string | undefined;
  for (let page = 0; page < LOOKUP_MAX_PAGES; page++) {
    if (!(await renew())) throw new ChannelLost();
    const common = { channel: e.channel, include_all_metadata: true, oldest, limit: LOOKUP_PAGE_SIZE, ...(cursor ? { cursor } : {}) };
    const r = threadTs ? await client.conversations.replies({ ...common, ts: threadTs }) : await client.conversations.history(common);
    const hit = ((r.messages ?? []) as Message[]).find((m) => m.metadata?.event_type === OUTBOX_EVENT_TYPE && m.metadata.event_payload?.key === e.key);
    if (hit?.ts) return hit.ts;
    cursor = r.response_metadata?.next_cursor || undefined;
    if (!cursor) return undefined;
  }
  throw new LookupIncomplete(LOOKUP_MAX_PAGES);
}

/** the sender's channel lease ran out during the lookup: another sender owns the row now */
export class ChannelLost extends Error {
  constructor() {
    super('lost the channel during the lookup');
  }
}
