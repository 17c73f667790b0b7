#!/usr/bin/env node
// Compiles src/ to dist/ (tsconfig.build.json) so `re-bot` runs plain JavaScript: no tsx loader, no
// transpiling at start. Runs as `npm run build` and as the `prepare` step of `npm ci`/`npm install`.
// A production install (`npm ci --omit=dev`) has no typescript: it skips, and the image copies a dist/
// built in its build stage instead.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  console.log('re-bot build: typescript is not installed (production install); skipping, dist/ comes from the build stage');
  process.exit(0);
}
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true }); // no stale modules of deleted sources
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
if (r.status !== 0) {
  rmSync(dist, { recursive: true, force: true }); // half a build must not be preferred over the sources
  process.exit(r.status ?? 1);
}
// bin/re-bot.mjs compares this stamp with the sources: an edited checkout runs its sources, not an old build
writeFileSync(join(dist, '.built'), new Date().toISOString() + '\n');
