/** Percentiles, formatting and the one results table every benchmark section adds rows to. */

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  // nearest-rank: the smallest sample with at least p% of the samples at or below it
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1];
}

export const p50 = (s: number[]) => percentile(s, 50);
export const p99 = (s: number[]) => percentile(s, 99);
export const mean = (s: number[]) => (s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN);
export const max = (s: number[]) => (s.length ? s.reduce((a, b) => Math.max(a, b), -Infinity) : NaN);

export function ms(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}
export const mb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(0)} MB` : 'n/a');
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
export const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');

/** One line of the results table. `ok` undefined = informational (no target). */
export interface Row {
  section: string;
  figure: string;
  value: string;
  target?: string;
  /** the ratio or comparison shown next to the target */
  ratio?: string;
  ok?: boolean;
  /** a sanity check, not a performance target: when it fails the section's figures mean nothing (exit 1) */
  gate?: boolean;
  /** set when the figure could not be measured because the benchmark broke */
  broken?: string;
}

export function verdict(r: Row): string {
  if (r.broken) return 'BROKEN';
  if (r.ok === undefined) return '';
  if (r.gate) return r.ok ? 'ok' : 'BROKEN';
  return r.ok ? 'met' : 'MISSED';
}

function pad(s: string, n: number): string {
  // emoji and × are one column in most terminals; count code points, not UTF-16 units
  const len = [...s].length;
  return len >= n ? s : s + ' '.repeat(n - len);
}

export function textTable(rows: Row[]): string {
  const head = ['Section', 'Figure', 'Value', 'Target', 'Ratio / comparison', 'Verdict'];
  const cells = rows.map((r) => [r.section, r.figure, r.broken ? `(broke: ${r.broken})` : r.value, r.target ?? '', r.ratio ?? '', verdict(r)]);
  const widths = head.map((h, i) => Math.min(70, Math.max([...h].length, ...cells.map((c) => [...c[i]].length))));
  const line = (c: string[]) => c.map((v, i) => pad(v, widths[i])).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function markdownTable(rows: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = ['| Section | Figure | Value | Target | Ratio / comparison | Verdict |', '|---|---|---|---|---|---|'];
  for (const r of rows) {
    const v = verdict(r);
    out.push(`| ${esc(r.section)} | ${esc(r.figure)} | ${esc(r.broken ? `(broke: ${r.broken})` : r.value)} | ${esc(r.target ?? '')} | ${esc(r.ratio ?? '')} | ${v === 'MISSED' || v === 'BROKEN' ? `**${v}**` : v} |`);
  }
  return out.join('\n');
}
