/** labelSelector and fieldSelector parsing/matching, as the list and watch endpoints take them. */
import type { Obj } from './store.ts';

type Req = (labels: Record<string, string>) => boolean;

export class SelectorError extends Error {}

/** Splits on commas outside parentheses: `a in (x,y),b` → [`a in (x,y)`, `b`]. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter(Boolean);
}

export function parseLabelSelector(sel: string | null | undefined): Req {
  if (!sel) return () => true;
  const reqs: Req[] = splitTerms(sel).map((term) => {
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const [, key, op, vals] = m;
      const set = new Set(vals!.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => key! in l && set.has(l[key!]!) : (l) => !(key! in l) || !set.has(l[key!]!);
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
    if (m) {
      const [, key, op, val] = m;
      return op === '!=' ? (l) => l[key!] !== val : (l) => l[key!] === val;
    }
    m = /^!\s*(\S+)$/.exec(term);
    if (m) return (l) => !(m![1]! in l);
    if (/^[\w./-]+$/.test(term)) return (l) => term in l;
    throw new SelectorError(`unable to parse requirement: ${term}`);
  });
  return (labels) => reqs.every((r) => r(labels ?? {}));
}

export function matchesLabels(o: Obj, sel: Req): boolean {
  return sel(o.metadata?.labels ?? {});
}

function fieldValue(o: Obj, path: string): string | undefined {
  let cur: any = o;
  for (const p of path.split('.')) cur = cur?.[p];
  return cur === undefined || cur === null ? undefined : String(cur);
}

export function parseFieldSelector(sel: string | null | undefined): (o: Obj) => boolean {
  if (!sel) return () => true;
  const reqs = splitTerms(sel).map((term) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid field selector: ${term}`);
    const [, path, op, val] = m;
    return (o: Obj) => {
      const v = fieldValue(o, path!) ?? '';
      return op === '!=' ? v !== val : v === val;
    };
  });
  return (o) => reqs.every((r) => r(o));
}
