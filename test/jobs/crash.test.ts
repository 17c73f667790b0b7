import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { describe, it, expect } from 'vitest';
import { tmpDb } from './helpers.ts';

function run(db: string, effects: string, killAfterMs?: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/run-ts.mjs', 'test/jobs/fixtures/crash-runner.ts', db, effects], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d) => {
      out += d;
      // kill at a random point after the engine started working on the job
      if (killAfterMs !== undefined && !timer && out.includes('STARTED')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('exit', (_code, signal) => { clearTimeout(timer); resolve(out + (signal ? `KILLED ${signal}` : '')); });
  });
}

describe('engine survives kill -9', () => {
  it('resumes immediately after SIGKILL and each checkpointed effect happens exactly once', async () => {
    const db = tmpDb();
    const effects = join(dirname(db), 'effects.log');
    const kills: string[] = [];
    for (let i = 0; i < 3; i++) {
      kills.push(await run(db, effects, 50 + Math.floor(Math.random() * 250)));
      if (i === 0) expect(existsSync(effects) ? readFileSync(effects, 'utf8').trim().split('\n').length : 0).toBeLessThan(12);
    }
    // the kills really interrupted the job (otherwise this test would prove nothing)
    expect(kills.filter((o) => o.includes('KILLED SIGKILL') && !o.includes('FINAL')).length).toBeGreaterThanOrEqual(2);
    const out = await run(db, effects);
    expect(out).toContain('FINAL succeeded');
    const lines = readFileSync(effects, 'utf8').trim().split('\n');
    const expected = ['a', 'b', 'c', 'd'].flatMap((s) => [0, 1, 2].map((i) => `${s}:${i}`));
    expect(existsSync(effects)).toBe(true);
    expect([...lines].sort()).toEqual([...expected].sort());
  }, 60_000);
});
