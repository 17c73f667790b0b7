#!/usr/bin/env -S node --max-semi-space-size=4
// Runs the compiled JavaScript in dist/ (`npm run build`; the container image and `npm ci` build it), or the
// TypeScript sources through tsx when there is no build, the build is older than a source file (an edited
// checkout), or RE_BOT_FROM_SOURCE=1.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', '.built');

/** newest mtime of the .ts files under dir (≈ 1 ms for this tree); 0 when there are no sources (the image) */
function newestSource(dir) {
  let newest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function useDist() {
  if (process.env.RE_BOT_FROM_SOURCE === '1' || !existsSync(built)) return false;
  return newestSource(join(root, 'src')) <= statSync(built).mtimeMs;
}

let main;
if (useDist()) {
  ({ main } = await import(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
