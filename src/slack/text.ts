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
