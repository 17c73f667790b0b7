/**
 * A bad environment variable or setting: the CLI prints the message (no stack) and exits 2, like a
 * usage or spec error. The message names each variable and what it expects, never its value when secret.
 */
export class ConfigError extends Error {
  constructor(
    readonly problems: Array<{ variable: string; message: string }>,
    heading = 'invalid configuration',
  ) {
    super(
      problems.length === 1 && heading === 'invalid configuration'
        ? `${problems[0].variable}: ${problems[0].message}`
        : `${heading}:\n` + problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}
