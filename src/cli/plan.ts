/** `re-bot plan <spec.yaml> [--out DIR]`: validate, write values.yaml + plan.json, print the plan. Reads no secret value. */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadSpecFile } from '../spec/load.ts';
import { refuseUnsafeSpec } from './spec-policy.ts';
import { describeRef, secretRefsOf, type SecretRef } from '../spec/schema.ts';
import { buildPlan, EXECUTION_ORDER } from '../spec/plan.ts';
import { renderValues, valuesYaml } from '../spec/values.ts';

const USAGE = 'usage: re-bot plan <spec.yaml> [--out DIR]';

function parseArgs(args: string[]): { file?: string; out?: string; error?: string } {
  let file: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--out' || a === '-o') {
      out = args[++i];
      if (!out) return { error: '--out needs a directory' };
    } else if (a.startsWith('--out=')) out = a.slice('--out='.length);
    else if (a.startsWith('-')) return { error: `unknown option ${a}` };
    else if (file === undefined) file = a;
    else return { error: `unexpected argument ${a}` };
  }
  if (!file) return { error: 'missing spec file' };
  return { file, out };
}

/** Where a secret comes from and whether it is there now — existence only, the value is never read. */
async function availability(ref: SecretRef): Promise<string> {
  if ('env' in ref) return process.env[ref.env] ? 'set' : 'NOT SET';
  if ('file' in ref) {
    try {
      await access(ref.file);
      return 'file exists';
    } catch {
      return 'FILE MISSING';
    }
  }
  return 'stored in the re-bot database (checked when the job runs)';
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const parsed = parseArgs(args);
  if (parsed.error) {
    process.stderr.write(`${parsed.error}\n${USAGE}\n`);
    return 2;
  }
  const loaded = await loadSpecFile(parsed.file!);
  if (!loaded.ok) {
    process.stderr.write(`${parsed.file}: ${loaded.errors.length} problem(s)\n`);
    for (const e of loaded.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
    return 2;
  }
  if (refuseUnsafeSpec(parsed.file!, loaded.spec)) return 2;
  const spec = loaded.spec;
  const values = renderValues(spec);
  const plan = buildPlan(spec);
  const outDir = resolve(parsed.out ?? join('out', spec.deployment.name));
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'values.yaml'), valuesYaml(values), { mode: 0o644 });
  await writeFile(join(outDir, 'plan.json'), JSON.stringify(plan, null, 2) + '\n', { mode: 0o644 });

  const out: string[] = [];
  out.push(`Plan for ${spec.deployment.name} (Astro deployment ${spec.deployment.id})`);
  out.push(`  release ${plan.release} in namespace ${plan.namespace}, chart ${plan.chart}`);
  out.push(`  values hash ${plan.valuesHash}`);
  out.push('');
  out.push('Secret references (resolved only when the job runs; values are never read here):');
  for (const r of secretRefsOf(spec)) out.push(`  ${r.field} — ${r.purpose}: ${describeRef(r.ref)} (${await availability(r.ref)})`);
  out.push(`Kubernetes Secrets to create: ${plan.secrets.join(', ')}`);
  out.push('');
  out.push(`Steps (run order: ${EXECUTION_ORDER.map((id) => plan.steps.find((s) => s.id === id)!.number).join(', ')}):`);
  for (const s of plan.steps) {
    out.push(`  ${s.number}. ${s.title} [${s.applies ? `runs ${ordinal(s.order)}` : 'skipped'}]`);
    if (!s.applies) out.push(`     skipped: ${s.skipReason}`);
    for (const a of s.actions) out.push(`     - ${a}`);
  }
  out.push('');
  out.push(`Wrote ${join(outDir, 'values.yaml')} and ${join(outDir, 'plan.json')}`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

function ordinal(n: number): string {
  return `${n}${n === 1 ? 'st' : n === 2 ? 'nd' : n === 3 ? 'rd' : 'th'}`;
}
