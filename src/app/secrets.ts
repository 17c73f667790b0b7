import { readFile } from 'node:fs/promises';
import { registerSecret } from '../redact.ts';
import { StepFailure } from '../checklist/types.ts';

export type AnySecretRef = { env: string } | { file: string } | { stored: string };

/** Opens secrets sealed by the Slack wizard; absent in CLI-only runtimes. */
export type SealedSecretOpener = (id: string) => string | null;

/**
 * Resolves a secret reference to its value and registers the value with the redactor before anyone
 * can print it. Errors name the reference (env var / file / stored id), never a value.
 */
export function createSecretResolver(openStored?: SealedSecretOpener, env: NodeJS.ProcessEnv = process.env) {
  /** `scope`: the job id; the redactor forgets the value when that job ends */
  return async function resolveSecret(ref: AnySecretRef, scope?: string): Promise<string> {
    let value: string | null | undefined;
    if ('env' in ref) {
      value = env[ref.env];
      if (!value) throw new StepFailure(`secret reference env:${ref.env} is not set`, { hint: `export ${ref.env}=… before starting re-bot` });
    } else if ('file' in ref) {
      try {
        value = (await readFile(ref.file, 'utf8')).trim();
      } catch (err) {
        throw new StepFailure(`secret reference file:${ref.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (!value) throw new StepFailure(`secret reference file:${ref.file} is empty`);
    } else {
      value = openStored?.(ref.stored) ?? null;
      if (!value) throw new StepFailure(`stored secret ${ref.stored} is gone (already erased or never saved); enter it again with /re setup`);
    }
    registerSecret(value, { scope });
    return value;
  };
}
