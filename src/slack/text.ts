/** mrkdwn helpers shared by every message and view builder. */

/** escape user text for mrkdwn: only &, <, > (slack-platform.md §4) */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** cut to n characters; never in the middle of an entity esc() wrote (a dangling "&am" would show) */
export function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1).replace(/&[a-z]{0,3}$/, '') + '…' : s;
}

/**
 * A fenced block that cannot be broken out of by backticks in the content. Slack still parses `<…>` and
 * `&` inside a code block (`<!channel>` notifies, `<url|label>` becomes a disguised link), so the content is
 * escaped as well.
 */
export function codeBlock(s: string, max: number): string {
  return '```' + clip(esc(s.replace(/```/g, 'ʼʼʼ')), max - 6) + '```';
}

/** keeps the end of a long log: the last `lines` lines, at most `max` characters */
export function tail(s: string, lines: number, max: number): string {
  const t = s.split('\n').slice(-lines).join('\n');
  return t.length > max ? '…' + t.slice(t.length - max + 1) : t;
}

export function duration(ms?: number): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Slack renders this in the reader's time zone; the fallback is the ISO time */
export function when(iso: string | undefined): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return esc(iso);
  return `<!date^${Math.floor(t / 1000)}^{date_short_pretty} {time_secs}|${new Date(t).toISOString()}>`;
}

export const mention = (user: string) => (/^[UW][A-Z0-9]+$/.test(user) ? `<@${user}>` : `\`${esc(user)}\``);

export const shortHash = (h: string) => h.slice(0, 16);

/** the short approval hash a reviewer compares (12 hex) */
export const reviewHash = (h: string) => h.slice(0, 12);

/** a user (U…/W…) or user group (S…) as a Slack mention; `*` = anyone */
export function who(id: string): string {
  if (/^S[A-Z0-9]+$/.test(id)) return `<!subteam^${id}>`;
  if (id === '*') return 'anyone';
  return mention(id);
}

/** "<!subteam^S1> or <@U2>"; nobody listed: any approver other than the requester */
export function approversText(ids: string[] | undefined): string {
  const list = (ids ?? []).filter(Boolean);
  if (!list.length || list.includes('*')) return 'any approver';
  return list.length === 1 ? who(list[0]) : `${list.slice(0, -1).map(who).join(', ')} or ${who(list.at(-1)!)}`;
}

/**
 * For text already escaped with esc(): raw Slack user ids (as engine errors write them, "cancelled by U0…")
 * become mentions, so a reader sees a name, never an id.
 */
export function mentionIds(escaped: string): string {
  return escaped.replace(/(^|[^@\w^])([UW](?=[A-Z0-9]*\d)[A-Z0-9]{6,12})\b/g, (_m, pre: string, id: string) => `${pre}<@${id}>`);
}

/** 1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st */
export function ordinal(n: number): string {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th'}`;
}

/**
 * Text cut into pieces of at most `max` characters at line ends (a line longer than `max` is wrapped, marked
 * with ↩), for paging a long diff across blocks without cutting a line in the middle.
 */
export function pages(text: string, max: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const parts: string[] = [];
    for (let line = raw; ; ) {
      if (line.length <= max) { parts.push(line); break; }
      parts.push(line.slice(0, max - 1) + '↩');
      line = line.slice(max - 1);
    }
    for (const line of parts) {
      if (cur && cur.length + 1 + line.length > max) { out.push(cur); cur = line; }
      else cur = cur ? `${cur}\n${line}` : line;
    }
  }
  if (cur || !out.length) out.push(cur);
  return out;
}
