import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/spec/schema.ts';
import { parseSpecText } from '../../src/spec/load.ts';
import { baseInput, spec } from './fixtures.ts';

describe('SetupSpec', () => {
  it('fills sensible defaults for a minimal spec', () => {
    const s = spec();
    expect(s.cluster.release).toBe('astro-agent');
    expect(s.cluster.resourceNamePrefix).toBe('sales');
    expect(s.cluster.chart).toEqual({ repo: 'https://helm.astronomer.io', name: 'astro-remote-execution-agent', version: '2.3.3' });
    expect(s.agent.workers).toEqual([{ name: 'default-worker', queues: 'default', replicas: 1, syncSlots: 20 }]);
    expect(s.verify.testDag).toBe('re_bot_smoke');
    expect(s.sentinel.enabled).toBe(true);
  });

  it('accepts a local chart path and rejects mixing it with repo/version', () => {
    expect(spec({ cluster: { namespace: 'ns1', chart: { path: 'src/devkit/chart' } } }).cluster.chart).toEqual({ path: 'src/devkit/chart' });
    const r = parseSpec(baseInput({ cluster: { namespace: 'ns1', chart: { path: 'x', version: '1.0.0' } } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toContain('cluster.chart.version');
  });

  it('reports every error at once, each with its field path', () => {
    const input = baseInput({
      secretsBackend: { provider: 'azure-key-vault' },
      xcomBackend: { type: 's3', bucket: 'Bad_Bucket' },
      logging: { mode: 'syslog' },
    });
    input.deployment.name = 'Not_DNS';
    input.cluster.chart = {};
    input.agent.workers = [{ name: 'w', queues: 'a' }, { name: 'w', queues: 'b' }];
    delete input.deployment.airflowApiUrl;
    const r = parseSpec(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'deployment.name',
        'cluster.chart.version',
        'secretsBackend.vaultUrl',
        'xcomBackend.bucket',
        'logging.mode',
        'deployment.airflowApiUrl',
        'agent.workers[1].name',
      ]),
    );
    for (const e of r.errors) expect(e.message.length).toBeGreaterThan(5);
  });

  it('rejects inline secret values without echoing them', () => {
    const input = baseInput();
    input.agent.token = 'sk-live-INLINE-SECRET-123';
    input.deployment.apiToken = 'another-INLINE-SECRET-456';
    const r = parseSpec(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.find((e) => e.path === 'agent.token')?.message).toMatch(/inline secret values are not allowed/);
    expect(r.errors.find((e) => e.path === 'deployment.apiToken')?.message).toMatch(/inline secret values are not allowed/);
    expect(JSON.stringify(r.errors)).not.toMatch(/INLINE-SECRET/);
  });

  it('rejects unknown keys (e.g. a pasted agentToken) by path', () => {
    const input = baseInput();
    input.agent.agentToken = 'zzz-secret';
    const r = parseSpec(input);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors.some((e) => e.path === 'agent' && /agentToken/.test(e.message))).toBe(true);
      expect(JSON.stringify(r.errors)).not.toContain('zzz-secret');
    }
  });

  it('requires provider-specific fields', () => {
    const r = parseSpec(baseInput({ secretsBackend: { provider: 'hashicorp-vault', url: 'https://vault:8200' } }));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toContain('secretsBackend.kubernetesRole');
    const t = parseSpec(baseInput({ secretsBackend: { provider: 'hashicorp-vault', url: 'https://vault:8200', authType: 'token' } }));
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.errors.map((e) => e.path)).toContain('secretsBackend.authType');
  });

  it('reports YAML syntax errors by position only', () => {
    const r = parseSpecText('deployment:\n  apiToken: "unterminated-SECRET\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(JSON.stringify(r.errors)).not.toContain('SECRET');
  });
});
