/**
 * Tests that need an optional system tool (Debian packages buildah, skopeo, docker-registry, postgresql).
 * Tool present → the test runs. Tool missing → the test is skipped under a name that says what is missing and
 * how to install it, so vitest's summary names the gap. With RE_BOT_REQUIRE_TOOLS=1 (CI) a missing tool is a
 * failure instead: `required tool missing: buildah (RE_BOT_REQUIRE_TOOLS=1)`.
 */
import { describe, it, type TestFunction } from 'vitest';
import { REGISTRY_BIN, registryAvailable } from '../../src/devkit/registry.ts';
import { findTool } from '../../src/infra/tools.ts';
import { postgresMissing } from './postgres.ts';

export type SystemTool = 'buildah' | 'skopeo' | 'docker-registry' | 'postgresql';

export interface ToolCheck {
  ok: boolean;
  missing: SystemTool[];
  /** e.g. "needs buildah: not on PATH — sudo apt-get install -y buildah"; empty when ok */
  reason: string;
}

const where: Record<SystemTool, () => string | null> = {
  buildah: () => (findTool('buildah') ? null : 'not on PATH'),
  skopeo: () => (findTool('skopeo') ? null : 'not on PATH'),
  'docker-registry': () => (registryAvailable() ? null : `no ${REGISTRY_BIN} (or set RE_BOT_REGISTRY_BIN)`),
  // a throwaway cluster (test/support/postgres.ts): initdb, pg_ctl, and as root the postgres user
  postgresql: postgresMissing,
};

export const toolsRequired = (): boolean => process.env.RE_BOT_REQUIRE_TOOLS === '1';

export function needsTools(tools: SystemTool[]): ToolCheck {
  const problems = tools.map((t) => [t, where[t]()] as const).filter(([, p]) => p !== null);
  const missing = problems.map(([t]) => t);
  if (!missing.length) return { ok: true, missing, reason: '' };
  const what = problems.map(([t, p]) => `${t}: ${p}`).join(', ');
  return { ok: false, missing, reason: `needs ${what} — sudo apt-get install -y ${missing.join(' ')}` };
}

const missingError = (c: ToolCheck) => new Error(`required tool missing: ${c.missing.join(', ')} (RE_BOT_REQUIRE_TOOLS=1)`);

/** A describe block whose every test needs the tools. */
export function describeWithTools(tools: SystemTool[], name: string, fn: () => void): void {
  const c = needsTools(tools);
  if (c.ok) describe(name, fn);
  else if (toolsRequired()) describe(name, () => it('has its tools', () => { throw missingError(c); }));
  else describe.skip(`[${c.reason}] ${name}`, fn);
}

/** One test that needs the tools. */
export function itWithTools(tools: SystemTool[], name: string, fn: TestFunction, timeout?: number): void {
  const c = needsTools(tools);
  if (c.ok) it(name, fn, timeout);
  else if (toolsRequired()) it(name, () => { throw missingError(c); });
  else it.skip(`[${c.reason}] ${name}`, fn);
}

/**
 * For a test that runs either way but checks more when the tools exist (call at file level): true when the test
 * should expect what the tools do. Missing tools → false plus a skipped entry naming `what` is not covered;
 * missing and RE_BOT_REQUIRE_TOOLS=1 → true (the full expectation) plus a failing test naming the tool.
 */
export function usesToolsIfPresent(tools: SystemTool[], what: string): boolean {
  const c = needsTools(tools);
  if (c.ok) return true;
  if (toolsRequired()) {
    it(what, () => { throw missingError(c); });
    return true;
  }
  it.skip(`[${c.reason}] ${what}`, () => {});
  return false;
}
