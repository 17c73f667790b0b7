/** Seeds re-bot DBs for the CLI tests through the real engine (fake steps), and runs the real CLI binary. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StepHandler } from '../../src/checklist/types.ts';
import { StepFailure } from '../../src/checklist/types.ts';
import { fakeSpec, makeEngine, ok } from '../jobs/helpers.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

export const scratch = (prefix = 'cli') => mkdtempSync(join(tmpdir(), `rebot-${prefix}-`));

export interface CliResult { code: number | null; stdout: string; stderr: string; out: string }

/** `node bin/re-bot.mjs …` from the repo root, as a user runs it. `env` values of undefined unset the variable. */
export function reBot(args: string[], env: Record<string, string | undefined>, cwd = ROOT): Promise<CliResult> {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) merged[k] = v;
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/re-bot.mjs'), ...args], { cwd, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => done({ code, stdout, stderr, out: stdout + stderr }));
  });
}

const approvalStep: StepHandler = {
  id: 'b',
  run: async (ctx) => {
    await ctx.requireApproval({ hash: 'a1b2c3d4e5f6a7b8', title: 'helm upgrade --install astro-agent', facts: { release: 'astro-agent' }, changedKeys: ['agent.replicas'], diffText: '+ replicas: 2' });
    return { status: 'succeeded', summary: 'upgraded' };
  },
};
const failingStep: StepHandler = { id: 'b', run: async () => { throw new StepFailure('helm upgrade failed: context deadline exceeded'); } };

/**
 * A DB in which `waiting` has a job waiting for approval (as `re-bot run` without a TTY leaves it),
 * `broken` a failed job and `done` a succeeded one; none of them: an empty, migrated re-bot DB. Returns the path and the job ids.
 */
export async function seedDb(dir: string, o: { waiting?: string; broken?: string; done?: string } = {}) {
  const path = join(dir, 're-bot.db');
  const ids: Record<string, string> = {};
  for (const [name, step] of [[o.waiting, approvalStep], [o.broken, failingStep], [o.done, ok('b')]] as const) {
    if (!name) continue;
    const { store, engine } = makeEngine([ok('a'), step, ok('c'), ok('d')], { path });
    try {
      engine.start();
      const j = await engine.submit({ spec: fakeSpec(name), requestedBy: { id: 'cli:alice' }, origin: { kind: 'cli' } });
      await engine.settled(j.id);
      ids[name] = j.id;
    } finally {
      await engine.stop();
      store.close();
    }
  }
  if (!o.waiting && !o.broken && !o.done) {
    const { store } = makeEngine([], { path });
    store.close();
  }
  return { path, ids };
}

/** A Node stack frame in user-facing output. */
export const STACK = /\n\s+at /;
