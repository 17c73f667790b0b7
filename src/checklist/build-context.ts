/**
 * A digest of an image build context: what the step 7 approval covers, so that the image built after the
 * approval is the one that was approved. Honours the context's .dockerignore for simple patterns (names,
 * `dir/`, `*.ext`, leading `/`); symbolic links are hashed as links, never followed.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

export interface ContextDigest {
  /** sha256 of the sorted (path, mode, content) list */
  digest: string;
  files: number;
  dockerfileDigest: string;
}

function ignoreMatcher(dir: string, extra: string[] = []): (rel: string) => boolean {
  const file = join(dir, '.dockerignore');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const patterns = [...text.split('\n'), ...extra].map((l) => l.trim()).filter((l) => l && !l.startsWith('#') && !l.startsWith('!'));
  const res = patterns.map((p) => {
    const body = p.replace(/^\/+/, '').replace(/\/+$/, '');
    const re = body.split('').map((ch) => (ch === '*' ? '[^/]*' : ch === '?' ? '[^/]' : /[.+^${}()|[\]\\]/.test(ch) ? `\\${ch}` : ch)).join('');
    // a pattern without a slash matches at any depth, like most ignore files users write
    return new RegExp(body.includes('/') ? `^${re}(/|$)` : `(^|/)${re}(/|$)`);
  });
  return (rel) => res.some((r) => r.test(rel));
}

/** `exclude`: extra ignore patterns on top of the .dockerignore, e.g. `/dags/` for the server image */
export function contextDigest(contextDir: string, dockerfile: string, exclude: string[] = []): ContextDigest {
  if (!existsSync(contextDir) || !lstatSync(contextDir).isDirectory()) throw new Error(`build context ${contextDir} is not a directory`);
  const ignored = ignoreMatcher(contextDir, exclude);
  const h = createHash('sha256');
  let files = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const rel = relative(contextDir, p).split(sep).join('/');
      if (ignored(rel)) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) { h.update(`L ${rel} -> ${readlinkSync(p)}\n`); files++; }
      else if (st.isFile()) {
        h.update(`F ${rel} ${st.mode & 0o777} ${st.size}\n`);
        h.update(readFileSync(p));
        files++;
      }
    }
  };
  walk(contextDir);
  const df = join(contextDir, dockerfile);
  if (!existsSync(df)) throw new Error(`Dockerfile ${dockerfile} not found in ${contextDir}`);
  return { digest: h.digest('hex'), files, dockerfileDigest: createHash('sha256').update(readFileSync(df)).digest('hex') };
}
