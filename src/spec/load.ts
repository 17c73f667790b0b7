/** Reads a spec file (YAML or JSON). The only I/O of the spec module. */
import { open } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { redact } from '../redact.ts';
import { MAX_SPEC_BYTES, parseSpec, type ParseResult, type SetupSpec, type SpecError } from './schema.ts';

/** yaml's own default; an alias bomb ("billion laughs") exceeds it long before it costs memory. */
export const MAX_YAML_ALIASES = 100;

function sizeText(bytes: number): string {
  const unit = (n: number, u: string) => `${Number.isInteger(n) ? n : n.toFixed(1)} ${u}`;
  if (bytes >= 1024 * 1024) return unit(bytes / (1024 * 1024), 'MiB');
  if (bytes >= 1024) return unit(bytes / 1024, 'KiB');
  return `${bytes} bytes`;
}

/**
 * Loads and validates a spec file. `{ file: PATH }` secret references are resolved relative to the spec
 * file's directory (absolute paths stay as they are), so a spec works from any working directory.
 */
export async function loadSpecFile(path: string): Promise<ParseResult> {
  const fileError = (message: string): ParseResult => ({ ok: false, errors: [{ path: '(file)', message }] });
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_SPEC_BYTES) return fileError(tooBig(path, size));
      // read at most one byte past the limit: a pipe or special file reports no size
      const buf = Buffer.alloc(MAX_SPEC_BYTES + 1);
      let n = 0;
      for (;;) {
        const r = await fh.read(buf, n, buf.length - n, null);
        if (r.bytesRead === 0) break;
        n += r.bytesRead;
        if (n > MAX_SPEC_BYTES) return fileError(tooBig(path, n, true));
      }
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    return fileError(`cannot read spec file ${path}: ${code}${code === 'ENOENT' ? ' (no such file)' : code === 'EISDIR' ? ' (a directory, not a file)' : ''}`);
  }
  const r = parseSpecText(text);
  return r.ok ? { ok: true, spec: withFileRefsFrom(dirname(resolve(path)), r.spec) } : r;
}

function tooBig(path: string, size: number, atLeast = false): string {
  return `spec file ${path} is ${atLeast ? 'more than ' : ''}${sizeText(size)} (${size} bytes); the limit is ${sizeText(MAX_SPEC_BYTES)}: a setup spec is a few KiB, check that this is the right file`;
}

/** A copy of `spec` whose relative `{ file: PATH }` references are made absolute against `baseDir`. */
export function withFileRefsFrom(baseDir: string, spec: SetupSpec): SetupSpec {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    // a file secret reference is exactly { file: string } (the schema's strict fileRefSchema)
    if (keys.length === 1 && keys[0] === 'file' && typeof o.file === 'string') {
      return { file: isAbsolute(o.file) ? o.file : resolve(baseDir, o.file) };
    }
    return Object.fromEntries(keys.map((k) => [k, walk(o[k])]));
  };
  return walk(spec) as SetupSpec;
}

/** The parser's reason, first line only: yaml's pretty errors quote the source line, which may hold a pasted secret. */
function reasonOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const first = m.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return redact(first.length > 200 ? `${first.slice(0, 200)}…` : first);
}

/** The key a DUPLICATE_KEY error points at, when it is a plain short key. */
function keyAt(text: string, offset: number): string | undefined {
  const m = /^(?:"([^"\n]{1,64})"|'([^'\n]{1,64})'|([A-Za-z0-9_.\-]{1,64}))\s*:/.exec(text.slice(offset, offset + 80));
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

export function parseSpecText(text: string): ParseResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) {
    return { ok: false, errors: [{ path: '(file)', message: `the spec is ${sizeText(bytes)} (${bytes} bytes); the limit is ${sizeText(MAX_SPEC_BYTES)}` }] };
  }
  const lineCounter = new LineCounter();
  let raw: unknown;
  try {
    // uniqueKeys (the default) makes a repeated key an error rather than a silent override
    const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
    if (doc.errors.length) {
      const errors: SpecError[] = doc.errors.slice(0, 10).map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        const where = `at line ${line}, column ${col}`;
        if (e.code === 'DUPLICATE_KEY') {
          const key = keyAt(text, e.pos[0]);
          return { path: '(file)', message: `invalid YAML ${where}: ${key ? `key "${key}" appears twice in the same mapping` : 'a key appears twice in the same mapping'} (${reasonOf(e)}); keep one` };
        }
        return { path: '(file)', message: `invalid YAML ${where}: ${reasonOf(e)}` };
      });
      if (doc.errors.length > 10) errors.push({ path: '(file)', message: `… and ${doc.errors.length - 10} more YAML error(s)` });
      return { ok: false, errors };
    }
    raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    const reason = reasonOf(e);
    if (/alias count|resource exhaustion/i.test(reason)) {
      return {
        ok: false,
        errors: [{ path: '(file)', message: `the YAML uses too many aliases (*name references to &name anchors expand to more than ${MAX_YAML_ALIASES} copies); re-bot refuses alias expansion above ${MAX_YAML_ALIASES}: write the values out instead` }],
      };
    }
    return { ok: false, errors: [{ path: '(file)', message: `invalid YAML: ${reason}` }] };
  }
  if (raw === null || raw === undefined) {
    return { ok: false, errors: [{ path: '(root)', message: 'the spec is empty: expected a mapping with deployment, cluster, agent, xcomBackend … (see examples/)' }] };
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [{ path: '(root)', message: `expected a mapping with deployment, cluster, agent, xcomBackend …, got ${Array.isArray(raw) ? 'a list' : `a ${typeof raw}`}` }] };
  }
  return parseSpec(raw);
}
