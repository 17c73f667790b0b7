import { readFile } from 'node:fs/promises';
import { registerSecret } from '../redact.ts';
import { StepFailure } from '../checklist/types.ts';
import { secretRefsOf, type SetupSpec } from '../spec/schema.ts';

export type AnySecretRef = { env: string } | { file: string } | { stored: string };

/** Opens secrets sealed by the Slack wizard (null: gone); absent in CLI-only runtimes. */
export type SealedSecretOpener = (id: string) => Promise<string | null>;

export type SecretResolver = (ref: AnySecretRef) => Promise<string>;

/**
 * Resolves a secret reference to its value and registers the value with the redactor before anyone
 * can print it. Errors name the reference (env var / file / stored id), never a value.
 * A `{ file }` path is read as given: `loadSpecFile` has already made it absolute against the spec's directory.
 */
export function createSecretResolver(openStored?: SealedSecretOpener, env: NodeJS.ProcessEnv = process.env) {
  /** `scope`: the job id; the redactor forgets the value when that job ends */
  return async function resolveSecret(ref: AnySecretRef, scope?: string): Promise<string> {
    let value: string | null | undefined;
    if ('env' in ref) {
      value = env[ref.env];
      if (!value) throw new StepFailure(`environment variable ${ref.env} is not set (export it before starting re-bot, or use { file: PATH })`, { hint: `export ${ref.env}=… before starting re-bot` });
    } else if ('file' in ref) {
      try {
        value = (await readFile(ref.file, 'utf8')).trim();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new StepFailure(`secret file ${ref.file} cannot be read (${code}${code === 'ENOENT' ? ': no such file' : code === 'EACCES' ? ': permission denied' : ''})`);
      }
      if (!value) throw new StepFailure(`secret file ${ref.file} is empty`);
    } else {
      value = (await openStored?.(ref.stored)) ?? null;
      if (!value) throw new StepFailure(`stored secret ${ref.stored} is gone (already erased or never saved); enter it again with /re setup`);
    }
    registerSecret(value, { scope });
    return value;
  };
}

const sameRef = (a: AnySecretRef, b: AnySecretRef) => JSON.stringify(a) === JSON.stringify(b);

/** A reference that cannot be resolved, named by its spec field: "deployment.apiToken: environment variable … is not set". */
export class UnresolvedSecretError extends StepFailure {
  constructor(readonly field: string, readonly reason: string, hint?: string) {
    super(`${field}: ${reason}`, { field, hint });
    this.name = 'UnresolvedSecretError';
  }
}

/** Every secret reference of `spec` that cannot be resolved now, as `<field>: <reason>`. */
export async function unresolvedSecretRefs(spec: SetupSpec, resolve: SecretResolver): Promise<string[]> {
  const out: string[] = [];
  for (const r of secretRefsOf(spec)) {
    try {
      await resolve(r.ref);
    } catch (err) {
      out.push(`${r.field}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** One failure listing every unresolvable reference of `spec` (or `fallback` when, after all, none is). */
export async function unresolvedSecretsFailure(spec: SetupSpec, resolve: SecretResolver, fallback: unknown): Promise<unknown> {
  const all = await unresolvedSecretRefs(spec, resolve);
  if (!all.length) return fallback;
  return new StepFailure(`${all.length} secret reference(s) cannot be resolved: ${all.join('; ')}`, {
    field: all[0].split(':')[0],
    hint: 'set the environment variables or files the spec refers to (re-bot plan lists them), or enter the secrets again with /re setup',
  });
}

/** A job's resolver: a failure names the spec field(s) the reference belongs to. */
export function secretResolverForSpec(spec: SetupSpec, resolve: SecretResolver): SecretResolver {
  return async (ref) => {
    try {
      return await resolve(ref);
    } catch (err) {
      const fields = secretRefsOf(spec).filter((r) => sameRef(r.ref, ref)).map((r) => r.field);
      if (!fields.length) throw err;
      throw new UnresolvedSecretError(fields.join(' and '), (err as Error).message, err instanceof StepFailure ? err.details.hint : undefined);
    }
  };
}
