/** `re-bot run` as a user drives it from a terminal: approval later, resume, Ctrl-C. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/app/wire.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { demoSpec, localSetup, scratchDir, SECRETS, setSecretEnv, writeSpec } from './support.ts';

let kube: FakeKube;
beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('cli-kube') });
});
afterAll(() => kube?.close());

function reBot(args: string[], db: string, o: { sigintWhen?: RegExp } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/re-bot.mjs', ...args], { env: { ...process.env, ...SECRETS, RE_BOT_DB: db }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const onData = (d: Buffer) => {
      out += d;
      if (o.sigintWhen && !sent && o.sigintWhen.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

async function setup(name: string) {
  const local = await localSetup(await demoSpec(name, (s) => { delete (s.images as { client?: unknown }).client; }), { sharedKube: kube });
  const dir = scratchDir(name);
  return { local, db: join(dir, 're-bot.db'), specFile: writeSpec(local.spec, dir) };
}

describe('re-bot run in a terminal', () => {
  it('without --yes and without a TTY it stops at the approval (exit 3); run again with --yes resumes the same job', async () => {
    const { local, db, specFile } = await setup('cli-later');
    try {
      const first = await reBot(['run', specFile], db);
      expect(first.code, first.out).toBe(3);
      expect(first.out).toMatch(/approval needed: helm upgrade --install astro-agent/);
      expect(first.out).toMatch(/is waiting for approval .*run this command again \(or with --yes\)/);

      const second = await reBot(['run', specFile, '--yes'], db);
      expect(second.code, second.out).toBe(0);
      expect(second.out).toMatch(/resuming job job_\S+ \(waiting_approval/);
      const rt = await createRuntime({ dbPath: db });
      try {
        expect(rt.store!.sqlite.prepare('select count(*) n from jobs').get()).toEqual({ n: 1 });
        expect((await rt.engine.latestJobFor('cli-later'))!.state).toBe('succeeded');
      } finally {
        await rt.close();
      }
      const status = await reBot(['status', 'cli-later'], db);
      expect(status.code).toBe(0);
      expect(status.out).toMatch(/job \S+ succeeded/);
    } finally {
      await local.stop();
    }
  }, 120_000);

  it('Ctrl-C cancels the job cleanly: exit 130, the job is cancelled and the deployment unlocked', async () => {
    const { local, db, specFile } = await setup('cli-ctrlc');
    try {
      const r = await reBot(['run', specFile, '--yes'], db, { sigintWhen: /▶ 2\. Agents/ });
      expect(r.code, r.out).toBe(130);
      expect(r.out).toContain('interrupted: cancelling the job');
      const status = await reBot(['status', 'cli-ctrlc'], db);
      expect(status.out).toMatch(/job \S+ cancelled/);
      expect(status.out).toContain('lock: free');
    } finally {
      await local.stop();
    }
  }, 120_000);
});
