/** Spec errors a user reads: field path + what was expected (+ what to do), never zod's raw text or a secret. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpecFile, parseSpecText } from '../../src/spec/load.ts';
import { MAX_SPEC_BYTES, parseSpec, type SpecError } from '../../src/spec/schema.ts';
import { baseInput } from './fixtures.ts';

const ZOD_RAW = /Invalid input|received undefined|expected object, received|Too small:|Too big:|Invalid option|Unrecognized key/;

function errorsOf(input: unknown): SpecError[] {
  const r = parseSpec(input);
  if (r.ok) throw new Error('expected the spec to be rejected');
  return r.errors;
}
const lines = (errors: SpecError[]) => errors.map((e) => `${e.path}: ${e.message}`);

type Case = [name: string, mutate: (i: Record<string, any>) => void, path: string, expected: RegExp];
const CASES: Case[] = [
  ['missing deployment', (i) => delete i.deployment, 'deployment', /^is required: a mapping .*apiUrl.*apiToken/],
  ['missing cluster', (i) => delete i.cluster, 'cluster', /^is required: a mapping .*namespace and chart/],
  ['missing agent', (i) => delete i.agent, 'agent', /^is required: a mapping with image .* and token/],
  ['missing cluster.chart', (i) => delete i.cluster.chart, 'cluster.chart', /^is required: a mapping with version .*or path/],
  ['missing xcomBackend', (i) => delete i.xcomBackend, 'xcomBackend', /^is required: .*type: 's3' \| 'azure-blob' \| 'gcs' \| 'none'/],
  ['missing deployment.id', (i) => delete i.deployment.id, 'deployment.id', /^is required: expected the Astro deployment id/],
  ['missing identity.roleArn', (i) => (i.identity = { provider: 'aws' }), 'identity.roleArn', /^is required: expected an IAM role ARN/],
  ['replicas as a word', (i) => (i.agent.workers = [{ name: 'w', queues: 'q', replicas: 'two' }]), 'agent.workers[0].replicas', /^must be a number \(an integer ≥ 0\), got the string "two"$/],
  ['replicas quoted', (i) => (i.agent.triggerer = { replicas: '2' }), 'agent.triggerer.replicas', /must be a number .*got the string "2" \(write the number without quotes\)/],
  ['timeout below minimum', (i) => (i.agent.readyTimeoutSeconds = 5), 'agent.readyTimeoutSeconds', /^must be at least 10, got the number 5$/],
  ['timeout above maximum', (i) => (i.verify = { timeoutSeconds: 99999 }), 'verify.timeoutSeconds', /^must be at most 7200, got the number 99999$/],
  ['string expected', (i) => (i.dagSource = { type: 'git', repoUrl: 'https://github.com/acme/dags', trackingRef: 3 }), 'dagSource.trackingRef', /^must be a string, got the number 3$/],
  ['boolean expected', (i) => (i.cluster.createNamespace = 'yes'), 'cluster.createNamespace', /^must be true or false, got the string "yes"$/],
  ['list expected', (i) => (i.agent.workers = 'w1'), 'agent.workers', /^must be a list, got the string "w1"$/],
  ['empty mapping value', (i) => (i.cluster.chart = null), 'cluster.chart', /^must be a mapping, got an empty value \(null\)$/],
  ['enum', (i) => (i.agent.imagePullPolicy = 'Sometimes'), 'agent.imagePullPolicy', /^must be one of 'IfNotPresent', 'Always', 'Never', got the string "Sometimes"$/],
  ['literal union', (i) => (i.secretsBackend = { provider: 'hashicorp-vault', url: 'https://vault:8200', kubernetesRole: 'r', kvEngineVersion: 3 }), 'secretsBackend.kvEngineVersion', /^must be 1 or 2, got the number 3$/],
  ['unknown key', (i) => (i.cluster.namepsace = 'x'), 'cluster', /^unknown key "namepsace": remove it or check the spelling; allowed keys: .*namespace/],
  ['custom type message says what it got', (i) => (i.deployment.id = 5), 'deployment.id', /^expected the Astro deployment id, got the number 5$/],
  ['empty list', (i) => (i.agent.workers = []), 'agent.workers', /expected at least one worker queue/],
  ['images.server.deploy as a word', (i) => (i.images = { server: { deploy: 'yes' } }), 'images.server.deploy', /^must be true or false, got the string "yes"$/],
  ['images.server.builder unknown', (i) => (i.images = { server: { deploy: true, builder: 'kaniko' } }), 'images.server.builder', /^must be one of 'buildah', 'docker', 'podman', got the string "kaniko"$/],
  ['images.server.waitTimeoutSeconds too short', (i) => (i.images = { server: { deploy: true, waitTimeoutSeconds: 3 } }), 'images.server.waitTimeoutSeconds', /^must be at least 10, got the number 3$/],
  ['images.server not a mapping', (i) => (i.images = { server: true }), 'images.server', /must be a mapping, got the boolean true/],
];

describe('spec error messages', () => {
  it.each(CASES)('%s → names %s and what is expected', (_name, mutate, path, expected) => {
    const input = baseInput();
    mutate(input);
    const errors = errorsOf(input);
    const e = errors.find((x) => x.path === path);
    expect(e, lines(errors).join('\n')).toBeDefined();
    expect(e!.message).toMatch(expected);
    for (const l of lines(errors)) expect(l).not.toMatch(ZOD_RAW);
  });

  it('lists every problem at once', () => {
    const input = baseInput();
    delete input.cluster;
    input.agent.readyTimeoutSeconds = 'soon';
    input.deployment.extra = 1;
    expect(errorsOf(input).map((e) => e.path)).toEqual(expect.arrayContaining(['cluster', 'agent.readyTimeoutSeconds', 'deployment']));
  });

  it('never echoes a long or secret-looking value, even in a non-secret field', () => {
    const input = baseInput();
    input.agent.workers = [{ name: 'w', queues: 'q', replicas: 'ghp_abcdefghijklmnopqrstuvwxyz0123456789' }];
    input.deployment.apiToken = { env: 'T', value: 'xoxb-secret-123456' };
    input.agent.imagePullPolicy = { token: 'SECRET-IN-MAPPING' };
    const text = JSON.stringify(errorsOf(input));
    expect(text).not.toMatch(/ghp_|xoxb-|SECRET-IN-MAPPING/);
    expect(text).toContain('a string of 40 characters');
  });
});

describe('spec limits', () => {
  it('rejects a 5 MB string field with the field named, without echoing it', () => {
    const input = baseInput({ dagSource: { type: 'git', repoUrl: 'https://github.com/acme/dags', trackingRef: 'A'.repeat(5 * 1024 * 1024) } });
    const errors = errorsOf(input);
    expect(errors).toEqual([{ path: 'dagSource.trackingRef', message: 'is too long: 5,242,880 characters, at most 2,048 are allowed' }]);
  });

  it('rejects an over-long URL and still reports the other problems', () => {
    const input = baseInput();
    input.deployment.apiUrl = `https://example.com/${'a'.repeat(3000)}`;
    input.agent.readyTimeoutSeconds = 1;
    const errors = errorsOf(input);
    expect(lines(errors)).toEqual(expect.arrayContaining([expect.stringMatching(/^deployment\.apiUrl: is too long: 3,020 characters/), expect.stringMatching(/^agent\.readyTimeoutSeconds: must be at least 10/)]));
    expect(errors.filter((e) => e.path === 'deployment.apiUrl')).toHaveLength(1);
  });

  it('keeps long documents where they belong (the Vector config may exceed the generic cap)', () => {
    const config = `sources: {}\n# ${'x'.repeat(10_000)}\n`;
    const r = parseSpec(baseInput({ logging: { mode: 'sidecar', config } }));
    expect(r.ok).toBe(true);
  });

  it('answers megabytes of unknown keys with one short error, not a list of every key', () => {
    const agent: Record<string, unknown> = { ...baseInput().agent };
    for (let k = 0; k < 200_000; k++) agent[`junk_key_${k}`] = 'v';
    const errors = errorsOf(baseInput({ agent }));
    expect(errors).toEqual([{ path: 'agent', message: 'has 200,002 keys; a spec mapping has at most 100 (remove the unknown keys)' }]);
  });

  it('lists a handful of unknown keys by name, long names shortened', () => {
    const input = baseInput();
    for (let k = 0; k < 8; k++) input.cluster[`extra_${k}_${'x'.repeat(k === 0 ? 100 : 1)}`] = 1;
    const e = errorsOf(input).find((x) => x.path === 'cluster')!;
    expect(e.message).toMatch(/^unknown keys "extra_0_x{32}…", "extra_1_x", .* … \(3 more\): remove them or check the spelling; allowed keys: kubeconfig, /);
    expect(e.message.length).toBeLessThan(400);
  });

  it('refuses a spec file above 256 KiB before parsing it, naming the file, its size and the limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 're-bot-spec-'));
    const file = join(dir, 'huge.yaml');
    const head = 'deployment:\n  name: "';
    writeFileSync(file, `${head}${'x'.repeat(300 * 1024 - head.length - 2)}"\n`);
    const r = await loadSpecFile(file);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0].message).toContain(file);
    expect(r.errors[0].message).toMatch(/is 300 KiB \(307200 bytes\); the limit is 256 KiB/);
    expect(MAX_SPEC_BYTES).toBe(256 * 1024);
  });
});

describe('YAML errors', () => {
  it('give the parser reason and position, but not the quoted source line', () => {
    const r = parseSpecText('deployment:\n  name: x\n  apiToken: a: SECRET-PASTED-TOKEN\n');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0].message).toBe('invalid YAML at line 3, column 13: Nested mappings are not allowed in compact mappings');
    expect(JSON.stringify(r.errors)).not.toContain('SECRET');
  });

  it('name a duplicated key', () => {
    const r = parseSpecText('deployment: {}\ncluster: {}\ndeployment: {}\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0].message).toMatch(/^invalid YAML at line 3, column 1: key "deployment" appears twice in the same mapping/);
  });

  it('refuse an alias bomb with a clear message', () => {
    const bomb = ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]'].join('\n');
    const r = parseSpecText(bomb);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0].message).toMatch(/^the YAML uses too many aliases \(.*\); re-bot refuses alias expansion above 100/);
  });

  it('still accept a few aliases', () => {
    const r = parseSpecText('x: &w { name: w1, queues: a }\ny: [*w, *w]\n');
    expect(r.ok).toBe(false); // not a spec, but parsed: the errors are about the content
    if (!r.ok) expect(r.errors.map((e) => e.path)).toContain('deployment');
  });

  it('explain an empty file', () => {
    const r = parseSpecText('# nothing yet\n');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0].message).toMatch(/the spec is empty/);
  });
});

describe('file secret references', () => {
  const yamlWith = (agentToken: string) =>
    [
      'deployment:',
      '  id: cldep0000000001',
      '  name: sales',
      '  organizationId: clorg000000001',
      '  workspaceId: clws0000000001',
      '  namespace: cosmic-nebula-1234',
      '  apiUrl: https://clcluster.external.astronomer.run/d0000001',
      '  airflowApiUrl: https://clorg.astronomer.run/d0000001/api/v2',
      '  apiToken: { file: /run/secrets/astro-api-token }',
      'cluster: { namespace: astro-agents, chart: { version: 2.3.3 } }',
      'agent:',
      '  image: images.astronomer.cloud/baseimages/astro-remote-execution-agent:1.0.0',
      `  token: { file: ${agentToken} }`,
      'xcomBackend: { type: none }',
    ].join('\n');

  it('resolve relative to the spec file, not the working directory; absolute paths stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 're-bot-spec-'));
    mkdirSync(join(dir, 'specs'));
    const file = join(dir, 'specs', 'sales.yaml');
    writeFileSync(file, yamlWith('secrets/agent-token'));
    const r = await loadSpecFile(file);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.spec.agent.token).toEqual({ file: join(dir, 'specs', 'secrets', 'agent-token') });
    expect(r.spec.deployment.apiToken).toEqual({ file: '/run/secrets/astro-api-token' });
  });

  it('from in-memory text stay as written (there is no spec directory)', () => {
    const r = parseSpecText(yamlWith('secrets/agent-token'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.spec.agent.token).toEqual({ file: 'secrets/agent-token' });
  });
});
