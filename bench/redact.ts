/**
 * Redactor cost as registered secrets pile up: ms per `redact()` call on a 2 KB helm-error-like text with
 * 1, 100 and 20 000 registered secrets, and the ratio to 1 secret. Every log line, Slack payload and DB row
 * goes through `redact()`, and a long-running bot registers the secrets of every job it ran.
 *
 *   node bin/run-ts.mjs bench/redact.ts [--smoke]      on its own
 *   npm run bench -- --only redact                     as a section of the table
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forgetAllSecrets, redact, registerSecret, MASK } from '../src/redact.ts';
import type { Row } from './lib/stats.ts';

const SECTION = 'Redactor';

function sampleText(secret: string): string {
  const blob = Buffer.from(JSON.stringify({ auths: { 'images.example.com': { username: 'cli', password: secret } } })).toString('base64');
  const lines = [
    'Error: UPGRADE FAILED: cannot patch "astro-agent-token" with kind Secret: Secret "astro-agent-token" is invalid:',
    `data[.dockerconfigjson]: ${blob}`,
    ...Array.from({ length: 16 }, (_, i) => `  worker-${i}: pod astro-agent-worker-7d9f8c${i} in namespace astro-agents is Running (restarts ${i}) image=images.example.com/agent:1.2.${i}`),
    `agent token in plain text: ${secret}`,
  ];
  return lines.join('\n');
}

export async function runRedactBench(o: { smoke: boolean; log: (l: string) => void }): Promise<{ rows: Row[]; detail: Record<string, unknown> }> {
  const sizes = [1, 100, 20_000];
  const minMs = o.smoke ? 150 : 1_000;
  const secret = `bench-agent-token-${randomBytes(8).toString('hex')}`;
  const text = sampleText(secret);
  const results: Array<{ secrets: number; registerMs: number; msPerCall: number; callsPerSec: number; leaked: boolean }> = [];
  try {
    for (const n of sizes) {
      forgetAllSecrets();
      const t0 = performance.now();
      registerSecret(secret);
      for (let i = 1; i < n; i++) registerSecret(randomBytes(18).toString('base64url'));
      const registerMs = performance.now() - t0;
      const first = redact(text); // also warms the JIT
      const leaked = first.includes(secret) || !first.includes(MASK);
      let calls = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < minMs) {
        for (let i = 0; i < 20; i++) redact(text);
        calls += 20;
        elapsed = performance.now() - start;
      }
      const msPerCall = elapsed / calls;
      results.push({ secrets: n, registerMs, msPerCall, callsPerSec: 1000 / msPerCall, leaked });
      o.log(`  ${String(n).padStart(6)} secrets: ${(msPerCall * 1000).toFixed(1)} µs per call (${Math.round(1000 / msPerCall)} calls/s), registering them took ${registerMs.toFixed(0)} ms`);
    }
  } finally {
    forgetAllSecrets();
  }
  const base = results[0]!.msPerCall;
  const rows: Row[] = [
    { section: SECTION, figure: 'every registered form masked in the sample text', value: results.every((r) => !r.leaked) ? 'yes' : 'NO', ok: results.every((r) => !r.leaked), gate: true },
  ];
  for (const r of results) {
    const ratio = r.msPerCall / base;
    rows.push({
      section: SECTION,
      figure: `redact() of ${text.length} chars, ${r.secrets} secret(s)`,
      value: `${(r.msPerCall * 1000).toFixed(1)} µs/call (${Math.round(r.callsPerSec)}/s)`,
      ...(r.secrets > 1 ? { target: '≤ 3× the 1-secret cost', ratio: `${ratio.toFixed(2)}×`, ok: ratio <= 3 } : {}),
    });
  }
  rows.push({ section: SECTION, figure: `register ${sizes.at(-1)} secrets (all variants)`, value: `${results.at(-1)!.registerMs.toFixed(0)} ms` });
  return { rows, detail: { textChars: text.length, results } };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const smoke = process.argv.includes('--smoke');
  const r = await runRedactBench({ smoke, log: (l) => process.stdout.write(l + '\n') });
  for (const row of r.rows) process.stdout.write(`${row.figure}: ${row.value}${row.ratio ? ` — ${row.ratio} (target ${row.target})` : ''}\n`);
}
