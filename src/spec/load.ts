/** Reads a spec file (YAML or JSON). The only I/O of the spec module. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { parseSpec, type ParseResult } from './schema.ts';

export async function loadSpecFile(path: string): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    return { ok: false, errors: [{ path: '(file)', message: `cannot read spec file ${path}: ${code}` }] };
  }
  return parseSpecText(text);
}

export function parseSpecText(text: string): ParseResult {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    // YAML errors quote the line; only report its position, the line may hold a pasted secret
    const pos = (e as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    return { ok: false, errors: [{ path: '(file)', message: `invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}` }] };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [{ path: '(root)', message: 'expected a mapping with deployment, cluster, agent, xcomBackend …' }] };
  }
  return parseSpec(raw);
}
