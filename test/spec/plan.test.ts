import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { main } from '../../src/cli/main.ts';
import { buildPlan, STEP_IDS } from '../../src/spec/plan.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import { renderValues, valuesHash } from '../../src/spec/values.ts';
import { spec } from './fixtures.ts';

const ROOT = resolve(__dirname, '../..');
const EXAMPLES = ['aws-minimal', 'azure', 'demo', 'gcp', 'vault'];

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: any) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: any) => ((err += String(c)), true));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 're-bot-plan-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

describe('buildPlan', () => {
  it('has the eight steps, numbered 1..8, executed 1,3,4,5,6,2,7,8', () => {
    const p = buildPlan(spec());
    expect(p.steps.map((s) => s.id)).toEqual([...STEP_IDS]);
    expect(p.steps.map((s) => s.number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const byOrder = [...p.steps].sort((a, b) => a.order - b.order).map((s) => s.number);
    expect(byOrder).toEqual([1, 3, 4, 5, 6, 2, 7, 8]);
    expect(p.steps[1].actions.join(' ')).toMatch(/first helm upgrade carries the complete values/);
    expect(p.valuesHash).toBe(valuesHash(renderValues(spec()), spec().cluster.chart));
  });

  it('says why steps are skipped and what they touch', () => {
    const p = buildPlan(spec({ verify: { enabled: false }, logging: { mode: 'none' }, sentinel: { enabled: false } }));
    const step = (id: string) => p.steps.find((s) => s.id === id)!;
    expect(step('secrets-backend')).toMatchObject({ applies: false, skipReason: expect.stringContaining('none') });
    expect(step('deploy')).toMatchObject({ applies: false, skipReason: expect.stringContaining('images.client') });
    expect(step('verify')).toMatchObject({ applies: false });
    expect(step('logging').applies).toBe(false);
    expect(step('agents').touches).toMatchObject({ namespaces: ['astro-agents'], secrets: ['sales-agent-token', 'sales-pull-secret'], release: 'astro-agent', chart: 'https://helm.astronomer.io/astro-remote-execution-agent 2.3.3' });
    expect(p.secrets).toEqual(['sales-agent-token', 'sales-pull-secret']);
  });
});

describe('re-bot plan', () => {
  it.each(EXAMPLES)('examples/%s.yaml renders and writes values.yaml + plan.json', async (name) => {
    const out = tmp();
    const r = await runCli(['plan', join(ROOT, 'examples', `${name}.yaml`), '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8'));
    const values = parse(readFileSync(join(out, 'values.yaml'), 'utf8'));
    expect(plan.steps).toHaveLength(8);
    expect(r.out).toContain(plan.valuesHash);
    const loaded = await loadSpecFile(join(ROOT, 'examples', `${name}.yaml`));
    if (!loaded.ok) throw new Error('example invalid');
    expect(valuesHash(values, loaded.spec.cluster.chart)).toBe(plan.valuesHash);
    for (let n = 1; n <= 8; n++) expect(r.out).toMatch(new RegExp(`^  ${n}\\. `, 'm'));
  });

  it('the examples together cover every backend, DAG source and logging mode', async () => {
    const seen = new Set<string>();
    for (const name of EXAMPLES) {
      const l = await loadSpecFile(join(ROOT, 'examples', `${name}.yaml`));
      if (!l.ok) throw new Error(name);
      seen.add(`sb:${l.spec.secretsBackend.provider}`).add(`x:${l.spec.xcomBackend.type}`).add(`d:${l.spec.dagSource.type}`).add(`l:${l.spec.logging.mode}`);
    }
    for (const k of ['sb:aws-secrets-manager', 'sb:azure-key-vault', 'sb:gcp-secret-manager', 'sb:hashicorp-vault', 'x:s3', 'x:azure-blob', 'x:gcs', 'd:git', 'd:local', 'l:none', 'l:sidecar', 'l:object-storage', 'l:external-link']) {
      expect(seen.has(k), k).toBe(true);
    }
  });

  it('invalid spec: every error with its path on stderr, exit 2, nothing written', async () => {
    const out = tmp();
    const r = await runCli(['plan', join(ROOT, 'examples', 'invalid.yaml'), '--out', join(out, 'x')]);
    expect(r.code).toBe(2);
    for (const p of ['deployment.id:', 'deployment.name:', 'deployment.apiUrl:', 'deployment.apiToken:', 'cluster.chart.version:', 'agent.image:', 'secretsBackend.vaultUrl:', 'xcomBackend.bucket:', 'logging.mode:']) {
      expect(r.err).toContain(p);
    }
    expect(r.err).not.toContain('paste-the-token-here');
    expect(readdirSync(out)).toEqual([]);
  });

  it('missing file and bad arguments exit 2', async () => {
    expect((await runCli(['plan', '/nonexistent/spec.yaml'])).code).toBe(2);
    expect((await runCli(['plan'])).code).toBe(2);
  });

  it('never reads or prints a secret value: a fake token in every secret ref appears in no output', async () => {
    const TOKEN = 'FAKE-TOKEN-zz9-plural-z-alpha';
    const dir = tmp();
    const tokenFile = join(dir, 'agent-token.txt');
    writeFileSync(tokenFile, TOKEN);
    const specText = readFileSync(join(ROOT, 'examples', 'demo.yaml'), 'utf8')
      .replace('token: { create: { expiresInDays: 90 } }', `token: { file: ${tokenFile} }`)
      .replace('openLineage:\n  enabled: true', 'openLineage:\n  enabled: true\n  apiKey: { env: RE_BOT_DEMO_OL_KEY }');
    const specFile = join(dir, 'spec.yaml');
    writeFileSync(specFile, specText + '\n');
    for (const v of ['RE_BOT_DEMO_API_TOKEN', 'RE_BOT_DEMO_GIT_USER', 'RE_BOT_DEMO_GIT_TOKEN', 'RE_BOT_DEMO_OL_KEY']) vi.stubEnv(v, TOKEN);
    const out = join(dir, 'out');
    const r = await runCli(['plan', specFile, '--out', out]);
    expect(r.code).toBe(0);
    // the refs are reported as available, without their value
    expect(r.out).toMatch(/deployment\.apiToken .*env RE_BOT_DEMO_API_TOKEN \(set\)/);
    expect(r.out).toMatch(new RegExp(`agent\\.token .*file ${tokenFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(file exists\\)`));
    expect(r.out).toMatch(/dagSource\.credentials\.token .*\(set\)/);
    expect(r.out).toMatch(/openLineage\.apiKey .*\(set\)/);
    const b64 = Buffer.from(TOKEN).toString('base64');
    const outputs = [r.out, r.err, ...readdirSync(out).map((f) => readFileSync(join(out, f), 'utf8'))];
    for (const text of outputs) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(b64);
    }
  });
});
