import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKubeAdapter, locateKubeconfig } from '../../src/infra/kube.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
const home = join(tmp, 'home');
mkdirSync(home);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NO_KUBECONFIG = 'no kubeconfig found: looked at $KUBECONFIG (unset), cluster.kubeconfig (not set in the spec), ~/.kube/config (missing';
const inCluster = existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');

describe('finding the kubeconfig', () => {
  it('with none anywhere, says where it looked and what to set (not client-node\'s http://localhost:8080)', () => {
    const r = locateKubeconfig(undefined, { HOME: home }, join(tmp, 'no-token'));
    expect(r).toEqual({ kind: 'none', message: `${NO_KUBECONFIG}: ${join(home, '.kube', 'config')}); set KUBECONFIG or cluster.kubeconfig` });
  });

  it.skipIf(inCluster)('a step that talks to the cluster fails with that message', async () => {
    const kube = createKubeAdapter({ env: { HOME: home }, defaultTimeoutMs: 5_000 });
    const err = await kube.serverVersion().then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain(NO_KUBECONFIG);
    expect(err?.message).toContain('set KUBECONFIG or cluster.kubeconfig');
    expect(err?.message).not.toContain('localhost:8080');
  });

  it('order: the spec\'s cluster.kubeconfig, then $KUBECONFIG (a list), then ~/.kube/config', () => {
    const own = join(home, '.kube', 'config');
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(own, 'apiVersion: v1\nkind: Config\n');
    expect(locateKubeconfig('/spec/kubeconfig', { HOME: home, KUBECONFIG: '/env/a' })).toEqual({ kind: 'file', from: 'cluster.kubeconfig', files: ['/spec/kubeconfig'] });
    expect(locateKubeconfig(undefined, { HOME: home, KUBECONFIG: '/env/a:/env/b' })).toEqual({ kind: 'file', from: 'KUBECONFIG', files: ['/env/a', '/env/b'] });
    expect(locateKubeconfig(undefined, { HOME: home })).toEqual({ kind: 'file', from: '~/.kube/config', files: [own] });
  });

  it('a named kubeconfig that does not exist is named in the error', async () => {
    const missing = join(tmp, 'nope', 'kubeconfig');
    const err = await createKubeAdapter({ kubeconfigPath: missing, env: { HOME: home } }).serverVersion().then(() => undefined, (e: Error) => e);
    expect(err?.message).toBe(`cannot read kubeconfig ${missing}: no such file`);
  });
});
