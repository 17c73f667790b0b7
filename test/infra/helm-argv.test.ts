/**
 * What the helm adapter hands to helm — argv, environment, values file — and what it makes of helm's answers,
 * through a stand-in helm binary that records each start (test/support/fake-tool.ts). Written from the
 * mutation run of src/infra/helm.ts (see TESTING.md); the real-helm behaviour is in helm.test.ts.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHelmAdapter, helmArgvLog, helmErrorMessage, helmValuesDirLog, lineDiff, manifestDiff, scrubHelmOutput } from '../../src/infra/helm.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import type { HelmUpgradeInput } from '../../src/infra/types.ts';
import { fakeTool, type FakeCall } from '../support/fake-tool.ts';

const scratch = mkdtempSync(join(tmpdir(), 'helm-argv-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const helmBin = fakeTool(scratch, 'helm');
const SECRET = 'agent-token-NEVER-IN-ARGV-7731';
const CHART = '/charts/agent';

const input = (over: Partial<HelmUpgradeInput> = {}): HelmUpgradeInput => ({ release: 'r1', namespace: 'agents', chart: { path: CHART }, values: { replicas: 2 }, ...over });
const helm = (o: Parameters<typeof createHelmAdapter>[0] = {}) => createHelmAdapter({ helmPath: helmBin.path, defaultTimeoutMs: 20_000, ...o });
const calls = (): FakeCall[] => helmBin.calls();
const caught = async (p: Promise<unknown>) => (await p.then(() => undefined, (e: unknown) => e)) as Error & { code?: string; stderr?: string };
/** the values file helm was pointed at, as helm saw it */
const valuesOf = (c: FakeCall) => c.files[c.argv[c.argv.indexOf('-f') + 1]!]!;

const HISTORY = JSON.stringify([
  { revision: 3, updated: '2026-01-03', status: 'deployed', chart: 'agent-1.2.0', app_version: '1.2.0', description: 're-bot job_3' },
  { revision: 1, updated: '2026-01-01', status: 'superseded', chart: 'agent-1.0.0', app_version: '1.0.0', description: 'Install complete' },
  { revision: 2, updated: '2026-01-02', status: 'superseded', chart: 'agent-1.1.0', description: 'Upgrade complete' },
]);

beforeEach(() => {
  helmBin.reset();
  forgetAllSecrets();
  helmArgvLog.length = 0;
  helmValuesDirLog.length = 0;
});

describe('argv: exactly what each call runs', () => {
  it('template: release, chart, namespace and the values file, no cluster flags, --is-upgrade only for a diff of an existing release', async () => {
    helmBin.plan([{ when: ['template'], stdout: 'kind: ConfigMap' }]);
    expect(await helm({ kubeContext: 'prod', kubeconfigPath: '/kc' }).template(input())).toBe('kind: ConfigMap');
    const [c] = calls();
    expect(c!.argv).toEqual(['template', 'r1', CHART, '-n', 'agents', '-f', join(helmValuesDirLog[0]!, 'values.json')]);
    expect(helmArgvLog).toEqual([[helmBin.path, ...c!.argv]]);
  });

  it('upgrade --install: values only as `-f <file>`, the call’s kube context over the adapter’s, description and --timeout; no --set*, no secret', async () => {
    registerSecret(SECRET);
    helmBin.plan([{ when: ['history'], stdout: HISTORY }]);
    const rel = await helm({ kubeContext: 'default-ctx', kubeconfigPath: '/etc/kc' }).upgradeInstall(
      input({ values: { commonEnv: [{ name: 'AGENT_TOKEN', value: SECRET }] }, kubeContext: 'prod-eks', description: 're-bot job_3', timeoutSeconds: 120 }),
    );
    const [up, hist] = calls();
    const file = join(helmValuesDirLog[0]!, 'values.json');
    expect(up!.argv).toEqual(['upgrade', '--install', 'r1', CHART, '-n', 'agents', '-f', file, '--kube-context', 'prod-eks', '--kubeconfig', '/etc/kc', '--description', 're-bot job_3', '--timeout', '120s']);
    expect(JSON.parse(valuesOf(up!).content)).toEqual({ commonEnv: [{ name: 'AGENT_TOKEN', value: SECRET }] });
    expect(valuesOf(up!)).toMatchObject({ mode: '600', dirMode: '700' });
    expect(JSON.stringify(calls().map((c) => c.argv))).not.toContain(SECRET);
    expect(existsSync(file)).toBe(false);
    // then the release's history, on the adapter's cluster settings, answers with the newest revision
    expect(hist!.argv).toEqual(['history', 'r1', '-n', 'agents', '-o', 'json', '--kube-context', 'default-ctx', '--kubeconfig', '/etc/kc']);
    expect(rel).toEqual({ revision: 3, status: 'deployed', chart: 'agent-1.2.0', appVersion: '1.2.0', description: 're-bot job_3', updated: '2026-01-03' });
  });

  it('upgrade --install without description or timeout adds neither flag; no kube context at all adds no cluster flags', async () => {
    helmBin.plan([{ when: ['history'], stdout: HISTORY }]);
    await helm().upgradeInstall(input());
    expect(calls()[0]!.argv).toEqual(['upgrade', '--install', 'r1', CHART, '-n', 'agents', '-f', join(helmValuesDirLog[0]!, 'values.json')]);
    expect(calls()[1]!.argv).toEqual(['history', 'r1', '-n', 'agents', '-o', 'json']);
  });

  it('a chart from a repository: name, --repo and --version', async () => {
    helmBin.plan([{ when: ['show'], stdout: 'apiVersion: v2\nname: agent\nversion: 1.4.0\n' }]);
    const h = helm();
    expect(await h.chartMetadata({ chart: 'agent', repo: 'https://charts.example.com', version: '1.4.0' })).toEqual({ name: 'agent', version: '1.4.0' });
    await h.chartMetadata({ chart: 'agent', repo: 'https://charts.example.com' });
    await h.chartMetadata({ chart: 'oci://registry.example.com/agent' });
    expect(calls().map((c) => c.argv)).toEqual([
      ['show', 'chart', 'agent', '--repo', 'https://charts.example.com', '--version', '1.4.0'],
      ['show', 'chart', 'agent', '--repo', 'https://charts.example.com'],
      ['show', 'chart', 'oci://registry.example.com/agent'],
    ]);
  });

  it('a chart with neither path nor name is refused naming the field, before helm runs', async () => {
    const err = await caught(helm().template(input({ chart: {} as never })));
    expect(err.message).toBe('chart: expected either chart.path or chart.chart (with chart.repo)');
    expect(err.code).toBe('bad_input');
    expect(calls()).toEqual([]);
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('history, get values, rollback, uninstall and get manifest use the adapter’s cluster flags', async () => {
    helmBin.plan([{ when: ['history'], stdout: '[]' }, { when: ['values'], stdout: '{"a":1}' }, { when: ['template'], stdout: '' }]);
    const h = helm({ kubeContext: 'prod', kubeconfigPath: '/kc' });
    await h.history('r1', 'agents');
    expect(await h.getValues('r1', 'agents')).toEqual({ a: 1 });
    await h.rollback('r1', 'agents', 1);
    await h.uninstall('r1', 'agents');
    await h.diff(input());
    const cluster = ['--kube-context', 'prod', '--kubeconfig', '/kc'];
    expect(calls().map((c) => c.argv).slice(0, 5)).toEqual([
      ['history', 'r1', '-n', 'agents', '-o', 'json', ...cluster],
      ['get', 'values', 'r1', '-n', 'agents', '-o', 'json', ...cluster],
      ['rollback', 'r1', '1', '-n', 'agents', ...cluster],
      ['uninstall', 'r1', '-n', 'agents', '--ignore-not-found', ...cluster],
      ['get', 'manifest', 'r1', '-n', 'agents', ...cluster],
    ]);
  });

  it('a release name or namespace with spaces or shell characters stays one argv element', async () => {
    helmBin.plan([{ when: ['history'], stdout: '[]' }]);
    await helm().history('r1; rm -rf /', 'ns $(id)');
    expect(calls()[0]!.argv).toEqual(['history', 'r1; rm -rf /', '-n', 'ns $(id)', '-o', 'json']);
  });

  it('rollback refuses a revision that is not a positive integer, before helm runs', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      const err = await caught(helm().rollback('r1', 'agents', bad));
      expect(err.message).toBe(`revision: expected a positive integer, got ${bad}`);
      expect(err.code).toBe('bad_input');
    }
    expect(calls()).toEqual([]);
  });
});

describe('environment, stdin, pid', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('helm gets the allow-listed environment plus HELM_DEBUG=false, never the bot’s tokens or a secret reference’s variable', async () => {
    Object.assign(process.env, { SLACK_BOT_TOKEN: 'xoxb-1-bot', RE_BOT_SECRET_KEY: 'k'.repeat(44), AWS_SESSION_TOKEN: 'spec-agent-token', AWS_REGION: 'eu-west-1', HELM_CACHE_HOME: '/cache' });
    helmBin.plan([{ stdout: 'v4.0.0' }]);
    await helm({ secretEnvNames: ['AWS_SESSION_TOKEN'] }).version();
    const env = calls()[0]!.env;
    expect(env.HELM_DEBUG).toBe('false');
    expect(env).toMatchObject({ AWS_REGION: 'eu-west-1', HELM_CACHE_HOME: '/cache', PATH: process.env.PATH });
    for (const k of ['SLACK_BOT_TOKEN', 'RE_BOT_SECRET_KEY', 'AWS_SESSION_TOKEN']) expect(env[k]).toBeUndefined();
  });

  it('reports the pid of each helm it starts, once per child (the upgrade’s, not the history read after it)', async () => {
    helmBin.plan([{ when: ['history'], stdout: HISTORY }]);
    const pids: number[] = [];
    await helm().upgradeInstall(input(), { onSpawn: (pid) => pids.push(pid) });
    expect(pids).toEqual([calls()[0]!.pid]);
    await helm().template(input(), { onSpawn: (pid) => pids.push(pid) });
    expect(pids).toEqual([calls()[0]!.pid, calls()[2]!.pid]);
  });

  it('helm cannot wait on a prompt: its stdin is /dev/null', async () => {
    helmBin.plan([{ stdout: 'v4' }]);
    await helm().version();
    // /dev/null: a prompt reads end-of-file at once (an open pipe would block until the timeout)
    expect(calls()[0]!.stdin).toBe('device');
  });
});

describe('values file', () => {
  it('no values: helm still gets an empty values document', async () => {
    helmBin.plan([{ stdout: 'x' }]);
    await helm().template(input({ values: undefined }));
    expect(valuesOf(calls()[0]!).content).toBe('{}');
  });

  it('each call gets a fresh directory, removed after success and after failure', async () => {
    helmBin.plan([{ when: ['template'], stderr: 'Error: boom\n', exit: 1 }]);
    const h = helm();
    await caught(h.template(input()));
    helmBin.plan([{ stdout: 'ok' }]);
    await h.template(input());
    expect(helmValuesDirLog).toHaveLength(2);
    expect(helmValuesDirLog[0]).not.toBe(helmValuesDirLog[1]);
    for (const d of helmValuesDirLog) expect(existsSync(d)).toBe(false);
  });
});

describe('helm’s answers', () => {
  it('history: sorted oldest first, fields mapped; an empty answer or a missing release is no history', async () => {
    helmBin.plan([{ when: ['r1'], stdout: HISTORY }, { when: ['r2'], stdout: '' }, { when: ['r3'], stderr: 'Error: release: not found\n', exit: 1 }]);
    const h = helm();
    const hist = await h.history('r1', 'agents');
    expect(hist.map((x) => x.revision)).toEqual([1, 2, 3]);
    expect(hist[1]).toEqual({ revision: 2, status: 'superseded', chart: 'agent-1.1.0', appVersion: undefined, description: 'Upgrade complete', updated: '2026-01-02' });
    expect(await h.history('r2', 'agents')).toEqual([]);
    expect(await h.history('r3', 'agents')).toEqual([]);
  });

  it('history: any other failure is an error, not an empty history', async () => {
    helmBin.plan([{ stderr: 'Error: Kubernetes cluster unreachable: connection refused\n', exit: 1 }]);
    const err = await caught(helm().history('r1', 'agents'));
    expect(err.message).toBe('helm history failed: Kubernetes cluster unreachable: connection refused');
    expect(err.code).toBe('helm_failed');
  });

  it('upgrade --install that leaves no history is reported, naming the release', async () => {
    helmBin.plan([{ when: ['history'], stdout: '[]' }]);
    const err = await caught(helm().upgradeInstall(input()));
    expect(err.message).toBe('helm upgrade --install of r1 reported success but the release has no history');
  });

  it('get values: helm’s `null` (no user values) and an empty answer are {}', async () => {
    helmBin.plan([{ when: ['r1'], stdout: 'null\n' }, { when: ['r2'], stdout: '' }]);
    expect(await helm().getValues('r1', 'agents')).toEqual({});
    expect(await helm().getValues('r2', 'agents')).toEqual({});
  });

  it('show chart: name and version; no version is ""; no name is an error', async () => {
    helmBin.plan([{ when: ['a'], stdout: 'apiVersion: v2\nname: a\n' }, { when: ['b'], stdout: '' }]);
    expect(await helm().chartMetadata({ path: 'a' })).toEqual({ name: 'a', version: '' });
    const err = await caught(helm().chartMetadata({ path: 'b' }));
    expect(err.message).toBe('helm show chart printed no chart name');
  });

  it('version: trimmed', async () => {
    helmBin.plan([{ stdout: 'v4.0.1+g1234567\n' }]);
    expect(await helm().version()).toBe('v4.0.1+g1234567');
  });

  it('diff of a release that does not exist yet: a first install, rendered without --is-upgrade', async () => {
    helmBin.plan([
      { when: ['manifest'], stderr: 'Error: release: not found\n', exit: 1 },
      { when: ['template'], stdout: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: agents}\ndata: {a: "1"}\n' },
    ]);
    const d = await helm().diff(input());
    expect(d.firstInstall).toBe(true);
    expect(d.changedKeys).toEqual(['ConfigMap/agents/c (added)']);
    expect(calls()[1]!.argv).not.toContain('--is-upgrade');
  });

  it('diff of an existing release: the new render with --is-upgrade against the current manifest', async () => {
    helmBin.plan([
      { when: ['manifest'], stdout: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "1"}\n' },
      { when: ['template'], stdout: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "2"}\n' },
    ]);
    const d = await helm().diff(input({ kubeContext: 'prod' }));
    expect(d.firstInstall).toBe(false);
    expect(d.changedKeys).toEqual(['ConfigMap/c: data.a']);
    expect(calls()[0]!.argv).toEqual(['get', 'manifest', 'r1', '-n', 'agents', '--kube-context', 'prod']);
    expect(calls()[1]!.argv.at(-1)).toBe('--is-upgrade');
  });

  it('diff: a failure reading the current manifest other than "not found" is an error and renders nothing', async () => {
    helmBin.plan([{ when: ['manifest'], stderr: 'Error: Kubernetes cluster unreachable\n', exit: 1 }]);
    const err = await caught(helm().diff(input()));
    expect(err.message).toBe('helm get manifest failed: Kubernetes cluster unreachable');
    expect(calls()).toHaveLength(1);
  });

  it('a failure keeps helm’s stderr on the error, scrubbed of Secret data and registered secrets', async () => {
    registerSecret(SECRET);
    helmBin.plan([{ stderr: `warning: x\nError: UPGRADE FAILED: Secret "t" data:map[token:c2VjcmV0LXRva2VuLXZhbHVl] token ${SECRET}\n`, exit: 1 }]);
    const err = await caught(helm().template(input()));
    expect(err.name).toBe('HelmError');
    expect(err.message).toBe('helm template failed: UPGRADE FAILED: Secret "t" data:[REDACTED] token [REDACTED]');
    expect(err.stderr).toBe('warning: x\nError: UPGRADE FAILED: Secret "t" data:[REDACTED] token [REDACTED]');
  });
});

describe('timeouts and cancellation', () => {
  it('the adapter’s default timeout applies to every call, and the message says how long it waited', async () => {
    helmBin.plan([{ sleepMs: 4000 }]);
    const err = await caught(createHelmAdapter({ helmPath: helmBin.path, defaultTimeoutMs: 600 }).history('r1', 'agents'));
    expect(err.message).toBe('helm history timed out after 1s');
    expect(err.code).toBe('timeout');
  });

  it('a call’s own timeout wins over the default', async () => {
    helmBin.plan([{ sleepMs: 4000 }]);
    const err = await caught(helm().version({ timeoutMs: 500 }));
    expect(err.message).toBe('helm version timed out after 1s');
  });

  it('upgrade --install waits at least helm’s own --timeout plus 30 s, whatever the default', async () => {
    // the default (2 s) is shorter than helm takes here (3 s): the upgrade must not be killed
    helmBin.plan([{ when: ['upgrade'], sleepMs: 3000 }, { when: ['history'], stdout: HISTORY }]);
    const h = createHelmAdapter({ helmPath: helmBin.path, defaultTimeoutMs: 2000 });
    await expect(h.upgradeInstall(input({ timeoutSeconds: 1 }))).resolves.toMatchObject({ revision: 3 });
    await expect(h.upgradeInstall(input())).resolves.toMatchObject({ revision: 3 });
  });

  it('the history read after an upgrade --install keeps the call’s timeout', async () => {
    helmBin.plan([{ when: ['history'], sleepMs: 4000 }]);
    const err = await caught(helm().upgradeInstall(input(), { timeoutMs: 800 }));
    expect(err.message).toBe('helm history timed out after 1s');
  });

  it('a call whose signal is already aborted starts no helm', async () => {
    const ac = new AbortController();
    ac.abort();
    const spawned: number[] = [];
    const err = await caught(helm().history('r1', 'agents', { signal: ac.signal, onSpawn: (p) => spawned.push(p) }));
    expect(err.message).toBe('helm history cancelled');
    expect(err.code).toBe('cancelled');
    expect(spawned).toEqual([]);
  });

  it('an abort while helm runs: cancelled, not failed', async () => {
    helmBin.plan([{ sleepMs: 4000 }]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await caught(helm().template(input(), { signal: ac.signal }));
    expect(err.message).toBe('helm template cancelled');
    expect(err.code).toBe('cancelled');
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('no helm anywhere: a clear error naming RE_BOT_HELM', async () => {
    const saved = process.env.RE_BOT_HELM;
    process.env.RE_BOT_HELM = join(scratch, 'no-such-helm');
    try {
      const err = await caught(createHelmAdapter().version());
      expect(err.message).toBe('helm not found: set RE_BOT_HELM or put helm on PATH (re-bot doctor shows what is missing)');
      expect(err.code).toBe('helm_missing');
    } finally {
      if (saved === undefined) delete process.env.RE_BOT_HELM;
      else process.env.RE_BOT_HELM = saved;
    }
  });
});

describe('what each failure says (mutation survivors of the adapter)', () => {
  it('each call names its action when helm fails', async () => {
    helmBin.plan([{ exit: 1, stderr: 'Error: boom' }]);
    const h = helm();
    expect((await caught(h.chartMetadata({ path: 'a' }))).message).toBe('helm show chart failed: boom');
    expect((await caught(h.getValues('r1', 'agents'))).message).toBe('helm get values failed: boom');
    expect((await caught(h.rollback('r1', 'agents', 2))).message).toBe('helm rollback failed: boom');
    expect((await caught(h.uninstall('r1', 'agents'))).message).toBe('helm uninstall failed: boom');
  });

  it('errors that helm did not print carry no stderr', async () => {
    const ac = new AbortController();
    ac.abort();
    expect((await caught(helm().version({ signal: ac.signal }))).stderr).toBe('');
    helmBin.plan([{ sleepMs: 4000 }]);
    expect((await caught(helm().version({ timeoutMs: 300 }))).stderr).toBe('');
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 300);
    expect((await caught(helm().version({ signal: ac2.signal }))).stderr).toBe('');
    helmBin.plan([{ when: ['history'], stdout: '[]' }, { when: ['show'], stdout: 'apiVersion: v2' }]);
    expect((await caught(helm().upgradeInstall(input()))).stderr).toBe('');
    expect((await caught(helm().chartMetadata({ path: 'a' }))).stderr).toBe('');
  });

  it('version: surrounding blank space trimmed', async () => {
    helmBin.plan([{ stdout: '  v4.0.1\n\n' }]);
    expect(await helm().version()).toBe('v4.0.1');
  });

  it('without helmPath, the helm named by RE_BOT_HELM is the one started', async () => {
    const saved = process.env.RE_BOT_HELM;
    process.env.RE_BOT_HELM = helmBin.path;
    try {
      helmBin.plan([{ stdout: 'v4.0.9' }]);
      expect(await createHelmAdapter().version()).toBe('v4.0.9');
    } finally {
      if (saved === undefined) delete process.env.RE_BOT_HELM;
      else process.env.RE_BOT_HELM = saved;
    }
  });
});

describe('helmErrorMessage', () => {
  it('keeps the Error:/error: lines, without the first "Error:"', () => {
    expect(helmErrorMessage('upgrade', 'W1\nError: first\nnoise\nerror: second\n')).toBe('helm upgrade failed: first error: second');
  });
  it('without an Error: line, the last three lines', () => {
    expect(helmErrorMessage('template', 'l1\nl2\n  l3  \n\nl4\n')).toBe('helm template failed: l2 l3 l4');
  });
  it('nothing on stderr: the exit code, or "?"', () => {
    expect(helmErrorMessage('history', '', 2)).toBe('helm history failed: exit code 2');
    expect(helmErrorMessage('history', '\n \n')).toBe('helm history failed: exit code ?');
  });
  it('capped at 600 characters', () => {
    expect(helmErrorMessage('x', `Error: ${'a'.repeat(600)}`)).toBe(`helm x failed: ${'a'.repeat(600)}`);
    expect(helmErrorMessage('x', `Error: ${'a'.repeat(601)}`)).toBe(`helm x failed: ${'a'.repeat(600)}…`);
  });
});

describe('scrubHelmOutput (helm#12176: Secret data echoed in errors)', () => {
  it('masks Go-map and JSON renderings of data / stringData, nested brackets included', () => {
    expect(scrubHelmOutput('a data:map[token:QUJD other:[x y]] b')).toBe('a data:[REDACTED] b');
    expect(scrubHelmOutput('{"stringData": {"token":"abc"}, "kind":"Secret"}')).toBe('{"stringData": [REDACTED], "kind":"Secret"}');
    expect(scrubHelmOutput('"data":{"a":"b"}')).toBe('"data":[REDACTED]');
  });
  it('masks YAML data blocks line by line, keeping the keys', () => {
    expect(scrubHelmOutput('kind: Secret\ndata:\n  token: c2VjcmV0\n  other.key: b3RoZXI=\nkind: X')).toBe('kind: Secret\ndata:\n  token: [REDACTED]\n  other.key: [REDACTED]\nkind: X');
  });
  it('masks a base64 value right after data/stringData (8 characters or more)', () => {
    expect(scrubHelmOutput('stringData.token=c2VjcmV0dmFsdWU=')).toBe('stringData.token=[REDACTED]');
    expect(scrubHelmOutput('data: QUJDREVGR0g=')).toBe('data: [REDACTED]');
    expect(scrubHelmOutput('data: short')).toBe('data: short');
  });
  it('leaves other text alone and masks registered secrets', () => {
    registerSecret(SECRET);
    expect(scrubHelmOutput(`metadata: name\nvalue ${SECRET}`)).toBe('metadata: name\nvalue [REDACTED]');
  });
});

describe('manifestDiff and lineDiff', () => {
  it('lineDiff: two lines of context, the rest elided once per gap', () => {
    const a = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'];
    const b = [...a];
    b[5] = 'six';
    expect(lineDiff(a, b)).toEqual(['  …', '  4', '  5', '- 6', '+ six', '  7', '  8', '  …']);
    expect(lineDiff(['a'], ['a', 'b'], 0)).toEqual(['  …', '+ b']);
    expect(lineDiff(['x', 'y'], ['y'])).toEqual(['- x', '  y']);
    expect(lineDiff([], [])).toEqual([]);
  });

  it('lists added, removed and changed resources by kind/namespace/name, sorted, with changed paths', () => {
    const before = [
      'kind: Deployment\nmetadata: {name: w, namespace: agents}\nspec: {replicas: 1, template: {spec: {containers: [{name: a, image: "x:1"}]}}}',
      'kind: ConfigMap\nmetadata: {name: gone}',
      '',
      'just: text without kind',
    ].join('\n---\n');
    const after = [
      'kind: Deployment\nmetadata: {name: w, namespace: agents}\nspec: {replicas: 1, template: {spec: {containers: [{name: a, image: "x:2"}]}}, tolerations: [], selector: {}}',
      'kind: ServiceAccount\nmetadata: {name: sa}',
      'kind: Service',
    ].join('\n---\n');
    const d = manifestDiff(before, after);
    expect(d.changedKeys).toEqual([
      'ConfigMap/gone (removed)',
      'Deployment/agents/w: spec.template.spec.containers[0].image',
      'Deployment/agents/w: spec.tolerations',
      'Deployment/agents/w: spec.selector',
      'Service/? (added)',
      'ServiceAccount/sa (added)',
    ]);
    expect(d.text).toContain('--- ConfigMap/gone (removed)');
    expect(d.text).toContain('+++ ServiceAccount/sa (new)\n+ kind: "ServiceAccount"\n+ metadata.name: "sa"');
    expect(d.text).toContain('~~~ Deployment/agents/w\n');
    expect(d.text).toContain('- spec.template.spec.containers[0].image: "x:1"\n+ spec.template.spec.containers[0].image: "x:2"');
    expect(d.text).toContain('+ spec.tolerations: []\n+ spec.selector: {}');
  });

  it('masks Secret data and stringData values (keys kept), not a ConfigMap’s data', () => {
    const secret = (v: string) => `kind: Secret\nmetadata: {name: s}\ndata: {token: ${Buffer.from(v).toString('base64')}}\nstringData: {pw: ${v}}`;
    const d = manifestDiff('kind: ConfigMap\nmetadata: {name: c}\ndata: {k: one}', `kind: ConfigMap\nmetadata: {name: c}\ndata: {k: two}\n---\n${secret('hunter2-secret')}`);
    expect(d.changedKeys).toEqual(['ConfigMap/c: data.k', 'Secret/s (added)']);
    expect(d.text).toContain('+ data.k: "two"');
    expect(d.text).toContain('+ data.token: "[REDACTED]"');
    expect(d.text).toContain('+ stringData.pw: "[REDACTED]"');
    expect(d.text).not.toContain('hunter2-secret');
    expect(d.text).not.toContain(Buffer.from('hunter2-secret').toString('base64'));
    expect(manifestDiff(secret('a-one'), secret('b-two'))).toEqual({ text: 'no changes', changedKeys: [] });
  });
});
