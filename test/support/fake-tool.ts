/**
 * A stand-in for an external binary (helm, buildah, podman, docker, skopeo): a small node script that records
 * every start — its argv, its environment, and every file it was pointed at (content and mode, read while the
 * call runs, since the adapters remove their temp files afterwards) — and answers as the test planned.
 * The plan and the record live next to the script, so nothing goes through the (allow-listed) environment.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FakeAnswer {
  /** every one of these must be in argv for the answer to apply; the first matching answer is used */
  when?: string[];
  stdout?: string;
  stderr?: string;
  exit?: number;
  /** wait before answering (for timeouts and aborts) */
  sleepMs?: number;
  /** written to the path after `--digestfile` */
  digest?: string;
}

export interface FakeFile {
  content: string;
  /** octal, e.g. '600' */
  mode: string;
  /** the mode of the directory holding it */
  dirMode: string;
}

export interface FakeCall {
  argv: string[];
  env: Record<string, string>;
  /** argv elements (and $DOCKER_CONFIG/config.json, <file>.dockerignore) that were files when the tool ran */
  files: Record<string, FakeFile>;
  pid: number;
  /** what fd 0 was: 'device' (/dev/null), 'pipe', 'socket', … */
  stdin: string;
}

export interface FakeTool {
  path: string;
  plan(answers: FakeAnswer[]): void;
  calls(): FakeCall[];
  reset(): void;
}

const SCRIPT = `#!/usr/bin/env node
const fs = require('node:fs'); const path = require('node:path');
const dir = path.dirname(process.argv[1]);
const argv = process.argv.slice(2);
const files = {};
const look = (p) => {
  try {
    const st = fs.statSync(p);
    if (!st.isFile() || st.size > 1e6) return;
    files[p] = { content: fs.readFileSync(p, 'utf8'), mode: (st.mode & 0o777).toString(8), dirMode: (fs.statSync(path.dirname(p)).mode & 0o777).toString(8) };
  } catch {}
};
for (const a of argv) { look(a); look(a + '.dockerignore'); }
if (process.env.DOCKER_CONFIG) look(path.join(process.env.DOCKER_CONFIG, 'config.json'));
const stdin = (() => { try { const s = fs.fstatSync(0); return s.isFIFO() ? 'pipe' : s.isCharacterDevice() ? 'device' : s.isSocket() ? 'socket' : 'other'; } catch { return 'closed'; } })();
fs.appendFileSync(path.join(dir, 'calls.jsonl'), JSON.stringify({ argv, env: process.env, files, pid: process.pid, stdin }) + '\\n');
const plan = JSON.parse(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8'));
const answer = plan.find((p) => (p.when || []).every((w) => argv.includes(w))) || {};
const finish = () => {
  if (answer.digest !== undefined) fs.writeFileSync(argv[argv.indexOf('--digestfile') + 1], answer.digest);
  if (answer.stdout) process.stdout.write(answer.stdout);
  if (answer.stderr) process.stderr.write(answer.stderr);
  process.exitCode = answer.exit || 0;
};
if (answer.sleepMs) setTimeout(finish, answer.sleepMs); else finish();
`;

/** `name` becomes the script's file name inside its own directory under `root`. */
export function fakeTool(root: string, name: string): FakeTool {
  const dir = join(root, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, SCRIPT);
  chmodSync(path, 0o755);
  const t: FakeTool = {
    path,
    plan: (answers) => writeFileSync(join(dir, 'plan.json'), JSON.stringify(answers)),
    calls: () => {
      const f = join(dir, 'calls.jsonl');
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FakeCall) : [];
    },
    reset: () => {
      writeFileSync(join(dir, 'calls.jsonl'), '');
      t.plan([]);
    },
  };
  t.reset();
  return t;
}
