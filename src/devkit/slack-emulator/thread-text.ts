/**
 * One Slack thread as plain text, from what the emulator recorded: the parent in its final state and every
 * reply in order, blocks rendered roughly as a reader sees them (mentions as @name, dates as ISO, links as
 * "label (url)", buttons as [Label]). For docs/slack-thread.md and for reading a test's outcome.
 */
import type { SlackEmulator, StoredMessage } from './server.ts';

type Json = Record<string, any>;

export function plain(mrkdwn: string, names: Record<string, string> = {}): string {
  return mrkdwn
    .replace(/<@([UW][A-Z0-9]+)>/g, (_m, id: string) => `@${names[id] ?? id}`)
    .replace(/<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, label?: string) => `@${label ?? names[id] ?? id}`)
    .replace(/<!date\^\d+\^[^|>]*\|([^>]*)>/g, '$1')
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/<(https?:[^>]+)>/g, '$1')
    .replace(/(^|[\s(“])\*([^*\n]+)\*/g, '$1$2')
    .replace(/(^|[^`])`([^`\n]+)`(?!`)/g, '$1$2')
    .replace(/(^|[\s(])_([^_\n]+)_(?=[\s).,:]|$)/g, '$1$2')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function blockText(b: Json, names: Record<string, string>): string[] {
  const t = (x: Json | undefined) => (x ? plain(String(x.text ?? ''), names) : '');
  switch (b.type) {
    case 'section':
      return [t(b.text), ...((b.fields ?? []) as Json[]).map(t)].filter(Boolean);
    case 'context':
      return [((b.elements ?? []) as Json[]).map(t).join(' ')];
    case 'actions':
      return [((b.elements ?? []) as Json[]).map((e) => `[${e.text?.text ?? e.action_id}${e.confirm ? ' — asks to confirm' : ''}]`).join(' ')];
    case 'header':
      return [t(b.text)];
    case 'divider':
      return ['———'];
    default:
      return [];
  }
}

export function messageText(m: Pick<StoredMessage, 'text' | 'blocks'>, names: Record<string, string> = {}): string {
  const blocks = (m.blocks ?? []) as Json[];
  return blocks.length ? blocks.flatMap((b) => blockText(b, names)).join('\n') : plain(String(m.text ?? ''), names);
}

/** the thread as text: the parent as it reads now, then each reply (its notification text first) */
export function renderThread(emu: SlackEmulator, channel: string, parentTs: string, names: Record<string, string> = {}): string {
  const parent = emu.messages.get(`${channel}/${parentTs}`);
  if (!parent) throw new Error(`no message ${channel}/${parentTs}`);
  const out = [`### Parent message (channel ${channel}; edited in place ${parent.updates ?? 0} times)`, '', '```text', messageText(parent, names), '```'];
  emu.replies(channel, parentTs).forEach((r, i) => {
    out.push('', `### Reply ${i + 1}${r.replyBroadcast ? ' (also sent to the channel)' : ''}${r.updates ? ` (edited ${r.updates} times)` : ''}`, '', `Notification: ${plain(String(r.text ?? ''), names)}`, '', '```text', messageText(r, names), '```');
  });
  return out.join('\n') + '\n';
}
