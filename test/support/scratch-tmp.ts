/**
 * vitest globalSetup: every temporary file of one `npm test` run goes under one directory (TMPDIR, which
 * os.tmpdir() reads and the forked test workers inherit), removed when the run ends. Without it each run left
 * thousands of `re-bot-*` directories (SQLite files, key files, fake cluster state) in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  if (process.env.RE_BOT_TEST_KEEP_TMP === '1') return () => {};
  const dir = mkdtempSync(join(tmpdir(), 're-bot-test-run-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}
