import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctor } from '../../src/cli/doctor.ts';
import { itWithTools } from '../support/tools.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';

const empty = mkdtempSync(join(tmpdir(), 'doctor-'));
// doctor also checks the kubeconfig and that the API server answers: give it one that does
let kube: FakeKube;
beforeAll(async () => {
  kube = await startFakeKube();
});
afterAll(async () => {
  await kube?.close();
  rmSync(empty, { recursive: true, force: true });
});

describe('re-bot doctor', () => {
  itWithTools(['buildah'], 'reports helm and buildah with versions and exits 0 when they exist', async () => {
    const r = await execa('node', ['bin/re-bot.mjs', 'doctor'], { reject: false, env: { RE_BOT_HELM: resolve('.tools/bin/helm'), KUBECONFIG: kube.kubeconfigPath } });
    expect(r.stdout).toMatch(/✓ helm\s+v4\.\d+\.\d+\S*\s+\S*\.tools\/bin\/helm/);
    expect(r.stdout).toMatch(/✓ buildah\s+\d+\.\d+\.\d+/);
    expect(r.stdout).toContain('OK: helm and an image builder are available.');
    expect(r.exitCode).toBe(0);
  }, 30_000);

  it('names the checklist step that needs each missing tool and fails without helm or a builder', async () => {
    const r = await doctor({ PATH: empty, RE_BOT_HELM: join(empty, 'no-helm'), RE_BOT_KUBECTL: join(empty, 'no-kubectl') });
    expect(r.ok).toBe(false);
    const text = r.lines.join('\n');
    expect(text).toMatch(/✗ helm\s+missing — helm not found \(set RE_BOT_HELM or put it on PATH\); needed for step 2 .*step 7/);
    expect(text).toMatch(/✗ buildah\s+missing .*step 7 \(image build\)/);
    expect(text).toMatch(/✗ kubectl\s+missing .*optional: manual debugging/);
    expect(text).toContain('NOT READY: helm is required');
    // without a spec a builder is optional: only step 7 of specs with images.client needs one
    expect(text).toContain('step 7 will be skipped');
  });

  it('is ready with helm plus any one builder (podman here), and reports a broken binary', async () => {
    const podman = join(empty, 'podman');
    writeFileSync(podman, '#!/bin/sh\necho "podman version 5.4.2"\n');
    chmodSync(podman, 0o755);
    const broken = join(empty, 'docker');
    writeFileSync(broken, '#!/bin/sh\necho "cannot connect to daemon" >&2\nexit 3\n');
    chmodSync(broken, 0o755);
    // PATH holds only the stand-ins: buildah (in /usr/bin) is not visible
    const r = await doctor({ PATH: empty, RE_BOT_HELM: resolve('.tools/bin/helm'), KUBECONFIG: kube.kubeconfigPath });
    expect(r.tools.find((t) => t.name === 'buildah')?.path).toBeNull();
    const podmanStatus = r.tools.find((t) => t.name === 'podman');
    expect(podmanStatus).toMatchObject({ version: '5.4.2', path: podman });
    expect(r.tools.find((t) => t.name === 'docker')).toMatchObject({ path: broken, reason: expect.stringContaining('cannot connect to daemon') });
    expect(r.ok).toBe(true);
  });
});
