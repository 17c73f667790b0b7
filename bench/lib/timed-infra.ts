/**
 * Wraps every adapter method of an Infra with a timer, so a job's wall time can be split into time spent in
 * helm, buildah, the Kubernetes API, the Astro/Airflow APIs, and everything else (re-bot itself).
 */
import { performance } from 'node:perf_hooks';
import type { Infra } from '../../src/infra/types.ts';

export type Category = 'helm' | 'images' | 'kube' | 'airflow' | 'astro' | 'probe';

export interface Call {
  category: Category;
  method: string;
  start: number;
  end: number;
  ok: boolean;
}

function wrapObject<T extends object>(target: T, category: Category, record: (c: Call) => void): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(target)) {
    const v = (target as Record<string, unknown>)[key];
    if (typeof v !== 'function') {
      out[key] = v;
      continue;
    }
    out[key] = async (...args: unknown[]) => {
      const start = performance.now();
      let ok = false;
      try {
        const r = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        ok = true;
        return r;
      } finally {
        record({ category, method: key, start, end: performance.now(), ok });
      }
    };
  }
  return out as T;
}

export function timedInfra(infra: Infra, record: (c: Call) => void): Infra {
  const t: Infra = {
    kube: wrapObject(infra.kube, 'kube', record),
    helm: wrapObject(infra.helm, 'helm', record),
    images: wrapObject(infra.images, 'images', record),
    probeUrl: async (url, opts) => {
      const start = performance.now();
      try {
        return await infra.probeUrl(url, opts);
      } finally {
        record({ category: 'probe', method: 'probeUrl', start, end: performance.now(), ok: true });
      }
    },
  };
  if (infra.airflow) t.airflow = wrapObject(infra.airflow, 'airflow', record);
  if (infra.astro) t.astro = wrapObject(infra.astro, 'astro', record);
  if (infra.astroTokens) t.astroTokens = wrapObject(infra.astroTokens, 'astro', record);
  if (infra.astroDeploys) t.astroDeploys = wrapObject(infra.astroDeploys, 'astro', record);
  return t;
}

/** total length of the union of [start, end) intervals */
export function unionMs(intervals: Array<[number, number]>): number {
  const s = intervals.filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
  let total = 0;
  let cur: [number, number] | undefined;
  for (const [a, b] of s) {
    if (!cur || a > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [a, b];
    } else cur[1] = Math.max(cur[1], b);
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

/** methods the steps call in a loop with a sleep in between, waiting for the cluster or a DAG run */
export const POLLED = new Set(['kube.listPods', 'airflow.getDagRun']);

/**
 * The sleeps between two consecutive calls of the same polled method (no other call in between): time
 * spent waiting on the cluster or the DAG run, not working.
 */
export function pollGaps(calls: Call[]): Array<[number, number]> {
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  const gaps: Array<[number, number]> = [];
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    const key = `${cur.category}.${cur.method}`;
    if (POLLED.has(key) && `${prev.category}.${prev.method}` === key && cur.start > prev.end) gaps.push([prev.end, cur.start]);
  }
  return gaps;
}
