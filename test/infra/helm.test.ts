import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createHelmAdapter, helmArgvLog, helmErrorMessage, helmValuesDirLog, manifestDiff } from '../../src/infra/helm.ts';
import { forgetAllSecrets, registerSecret } from '../../src/redact.ts';
import type { HelmUpgradeInput } from '../../src/infra/types.ts';
import { freePort } from '../support/registry.ts';

const HELM = process.env.RE_BOT_HELM ?? resolve('.tools/bin/helm');
const CHART = resolve('test/fixtures/chart-min');
const SECRET = 'sup3r-s3cret-agent-token-42';

function input(values: unknown): HelmUpgradeInput {
  return { release: 'r1', namespace: 'agents', chart: { path: CHART }, values };
}

const scratch = mkdtempSync(join(tmpdir(), 'helm-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A stand-in helm binary: reports the values file/dir modes, or fails/sleeps on demand. */
function fakeHelm(behaviour: 'report-modes' | 'leak-secret' | 'sleep' | 'record-upgrade'): string {
  const path = join(scratch, `helm-${behaviour}`);
  writeFileSync(
    path,
    `#!/usr/bin/env node
const fs = require('node:fs'); const path = require('node:path');
const a = process.argv.slice(2); const f = a[a.indexOf('-f') + 1];
if (${JSON.stringify(behaviour)} === 'record-upgrade') {
  // upgrade: keep what the values file held for the test; history: one deployed revision
  if (a[0] === 'history') console.log(JSON.stringify([{ revision: 1, status: 'deployed', chart: 'agent-1.0.0', description: 'Install complete' }]));
  else fs.writeFileSync(${JSON.stringify(join(scratch, 'upgrade-record.json'))}, JSON.stringify({ file: (fs.statSync(f).mode & 0o777).toString(8), dir: (fs.statSync(path.dirname(f)).mode & 0o777).toString(8), content: fs.readFileSync(f, 'utf8') }));
} else if (${JSON.stringify(behaviour)} === 'report-modes') {
  console.log(JSON.stringify({ file: (fs.statSync(f).mode & 0o777).toString(8), dir: (fs.statSync(path.dirname(f)).mode & 0o777).toString(8), content: fs.readFileSync(f, 'utf8') }));
} else if (${JSON.stringify(behaviour)} === 'leak-secret') {
  const tokenB64 = Buffer.from(${JSON.stringify(SECRET)}).toString('base64');
  console.error('Error: UPGRADE FAILED: cannot patch "x" with kind Secret: Secret "x" is invalid: data:map[token:' + tokenB64 + '] and {"data":{"other":"QUJDREVGR0hJSktMTU5PUA=="}}');
  process.exit(1);
} else { setTimeout(() => {}, 30000); }
`,
  );
  chmodSync(path, 0o755);
  return path;
}

beforeEach(() => {
  forgetAllSecrets();
  helmArgvLog.length = 0;
  helmValuesDirLog.length = 0;
});

describe('helm adapter with real helm', () => {
  const helm = createHelmAdapter({ helmPath: HELM, defaultTimeoutMs: 30_000 });

  it('reports the helm version', async () => {
    expect(await helm.version()).toMatch(/^v4\.\d+\.\d+/);
  });

  it('renders values from a temp file; the secret never reaches argv and the file is removed', async () => {
    registerSecret(SECRET);
    const out = await helm.template(input({ replicas: 3, commonEnv: [{ name: 'AGENT_TOKEN', value: SECRET }] }));
    expect(out).toContain('replicas: 3');
    expect(out).toContain(SECRET); // helm really received it through the file
    const argv = helmArgvLog.flat().join(' ');
    expect(argv).not.toContain(SECRET);
    expect(argv).not.toContain('--set');
    expect(helmArgvLog[0]).toContain('-f');
    expect(helmValuesDirLog).toHaveLength(1);
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('removes the values dir and gives a short message when helm fails', async () => {
    registerSecret(SECRET);
    const bad = { ...input({ commonEnv: [{ name: 'T', value: SECRET }] }), chart: { path: join(scratch, 'no-such-chart') } };
    const err = await helm.template(bad).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^helm template failed: .*no-such-chart/);
    expect((err as Error).message).not.toContain('\n');
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
    expect(helmArgvLog.flat().join(' ')).not.toContain(SECRET);
  });

  it('diffs two renders, listing changed keys and masking Secret data on both sides', async () => {
    const before = await helm.template(input({ replicas: 1, secretData: { token: 'old-token-value-1' } }));
    const after = await helm.template(input({ replicas: 2, secretData: { token: 'new-token-value-2', extra: 'abcdefgh' } }));
    const d = manifestDiff(before, after);
    expect(d.changedKeys).toContain('Deployment/r1-worker: spec.replicas');
    expect(d.changedKeys).toContain('Secret/r1-extra: data.extra');
    // same key, different secret value: masked on both sides, so not reported as a value change
    expect(d.changedKeys).not.toContain('Secret/r1-extra: data.token');
    expect(d.text).toContain('- spec.replicas: 1');
    expect(d.text).toContain('+ spec.replicas: 2');
    for (const s of ['old-token-value-1', 'new-token-value-2', Buffer.from('old-token-value-1').toString('base64'), Buffer.from('new-token-value-2').toString('base64')]) {
      expect(d.text).not.toContain(s);
    }
    expect(manifestDiff(after, after)).toEqual({ text: 'no changes', changedKeys: [] });
  });

  it('says plainly that the cluster is unreachable, for every cluster call', async () => {
    const kubeconfig = join(scratch, 'kubeconfig');
    const port = await freePort(); // nothing listens there
    writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: kube-token-abcdef123456}}]
current-context: c
`);
    const remote = createHelmAdapter({ helmPath: HELM, kubeconfigPath: kubeconfig, defaultTimeoutMs: 20_000 });
    for (const call of [() => remote.diff(input({})), () => remote.history('r1', 'agents'), () => remote.upgradeInstall(input({}))]) {
      const err = (await call().catch((e: Error) => e)) as Error & { code?: string };
      expect(err.message).toMatch(new RegExp(`^helm (get manifest|history|upgrade --install) failed: kubernetes cluster unreachable: .*127\\.0\\.0\\.1:${port}.*connection refused`));
      expect(err.code).toBe('helm_failed');
    }
    expect(helmArgvLog.every((a) => a.includes('--kubeconfig') && a.includes(kubeconfig))).toBe(true);
  }, 60_000);

  it('reports every resource as added when there is no current manifest', async () => {
    const after = await helm.template(input({}));
    const d = manifestDiff('', after);
    expect(d.changedKeys.sort()).toEqual(['Deployment/r1-worker (added)', 'Secret/r1-extra (added)']);
  });
});

describe('helm adapter process handling (stand-in helm binary)', () => {
  it('writes values to a 0600 file inside a 0700 dir', async () => {
    const helm = createHelmAdapter({ helmPath: fakeHelm('report-modes') });
    const out = JSON.parse(await helm.template(input({ commonEnv: [{ name: 'A', value: 'b' }] })));
    expect(out).toMatchObject({ file: '600', dir: '700' });
    expect(JSON.parse(out.content)).toEqual({ commonEnv: [{ name: 'A', value: 'b' }] });
  });

  it('upgrade --install passes values only as `-f <file>` (0600, removed after), never as --set*', async () => {
    registerSecret(SECRET);
    const helm = createHelmAdapter({ helmPath: fakeHelm('record-upgrade') });
    const values = { replicas: 2, commonEnv: [{ name: 'AGENT_TOKEN', value: SECRET }] };
    const rel = await helm.upgradeInstall({ ...input(values), description: 're-bot job_1', timeoutSeconds: 120 });
    expect(rel).toMatchObject({ revision: 1, status: 'deployed' });
    const out = JSON.parse(readFileSync(join(scratch, 'upgrade-record.json'), 'utf8'));
    expect(JSON.parse(out.content)).toEqual(values); // helm got every value, through the file
    expect(out).toMatchObject({ file: '600', dir: '700' });
    expect(helmArgvLog.map((a) => a[1])).toEqual(['upgrade', 'history']);
    const argv = helmArgvLog[0]!;
    expect(argv.slice(1, 3)).toEqual(['upgrade', '--install']);
    const f = argv.indexOf('-f');
    expect(f).toBeGreaterThan(0);
    expect(argv[f + 1]).toBe(join(helmValuesDirLog[0]!, 'values.json'));
    expect(argv.filter((a) => a.startsWith('--set'))).toEqual([]);
    expect(argv.join(' ')).not.toContain(SECRET);
    expect(argv.join(' ')).not.toContain('AGENT_TOKEN');
    expect(argv).toEqual(expect.arrayContaining(['r1', CHART, '-n', 'agents', '--description', 're-bot job_1', '--timeout', '120s']));
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('redacts Secret data that helm echoes in its error (helm#12176)', async () => {
    registerSecret(SECRET);
    const helm = createHelmAdapter({ helmPath: fakeHelm('leak-secret') });
    const err = (await helm.upgradeInstall(input({ commonEnv: [{ name: 'T', value: SECRET }] })).catch((e: Error) => e)) as Error;
    expect(err.message).toMatch(/^helm upgrade --install failed: UPGRADE FAILED/);
    expect(err.message).not.toContain(Buffer.from(SECRET).toString('base64'));
    expect(err.message).not.toContain('QUJDREVGR0hJSktMTU5PUA==');
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('kills helm on abort and on timeout, and still removes the values dir', async () => {
    const helm = createHelmAdapter({ helmPath: fakeHelm('sleep') });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    await expect(helm.upgradeInstall(input({}), { signal: ac.signal })).rejects.toThrow(/cancelled/);
    await expect(helm.history('r1', 'agents', { timeoutMs: 300 })).rejects.toThrow(/timed out/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(existsSync(helmValuesDirLog[0]!)).toBe(false);
  });

  it('turns a plain helm failure into a one-line message', () => {
    expect(helmErrorMessage('rollback', 'some warning\nError: release: not found\n')).toBe('helm rollback failed: release: not found');
  });
});
