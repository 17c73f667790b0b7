/** `npm run demo` end to end, twice: a newcomer's first command must work and leave nothing that breaks a rerun. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/cli/demo.ts';
import { usesToolsIfPresent } from '../support/tools.ts';
import { scratchDir } from './support.ts';

async function demo(workDir: string): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += d));
  const code = await runDemo({ workDir, out: out as unknown as NodeJS.WriteStream });
  return { code, text };
}

describe('npm run demo', () => {
  const buildable = usesToolsIfPresent(['buildah', 'docker-registry'], 'npm run demo: step 7 builds and pushes the client image');
  it('runs all eight steps for real, says where values, DB and audit log are, and runs again cleanly', async () => {
    const workDir = join(scratchDir('demo'), '.demo');
    for (const round of [1, 2]) {
      const { code, text } = await demo(workDir);
      expect(code, text).toBe(0);
      const final = text.slice(text.lastIndexOf('succeeded\n'));
      // a green run: the fake cluster and the Astro stand-in are set up as the checklist advises (nodes with
      // singleProcessOOMKill, the Deployment's task log bucket and OPENLINEAGE_DISABLED=False), so no step warns
      for (const [n, title] of [[1, 'Prerequisites'], [2, 'Agents'], [3, 'Secrets backend'], [4, 'XCom backend'], [5, 'DAG sources'], [6, 'Logging, OpenLineage and Sentinel'], [8, 'Verify']] as const) {
        expect(final, `round ${round} step ${n}`).toMatch(new RegExp(`✔ ${n}\\. ${title}[^\\n]*?\\s+succeeded `));
      }
      expect(final).not.toMatch(/⚠|warned/);
      expect(final).toMatch(buildable ? /7\. Deploy images\s+succeeded.*pushed 127\.0\.0\.1:\d+\/re-bot\/demo-client:deploy-/ : /7\. Deploy images\s+skipped/);
      if (buildable) {
        // the server image went through the Astro Deploys API stand-in, and its registry holds <imageRepository>:<imageTag>
        expect(text).toMatch(/7\. Deploy images\s+succeeded\s+\([^)]*\)\s+deployed the server image 127\.0\.0\.1:\d+\/clorgdemo000001\/cldemo0000000001:deploy-/);
        expect(text).toMatch(/Astro API stand-in, server image deploy:\n {2}create .*\n {2}push .*\n {2}finalize .*\n {2}HEALTHY .*\n {2}registry holds 127\.0\.0\.1:\d+\/clorgdemo000001\/cldemo0000000001:deploy-\S+ \(sha256:/);
      }
      expect(text).toMatch(/auto-approving as cli:\S+ \(--yes/);
      expect(text).toMatch(/test DAG re_bot_smoke run .* succeeded/);
      // the agent token is created through the Astro API stand-in after the approval, and its expiry recorded
      expect(text).toMatch(/create agent token re-bot-demo-\d{4}-\d{2}-\d{2} through the Astro API \(expires in 90 days\)/);
      expect(text).toMatch(/agent token re-bot-demo-\d{4}-\d{2}-\d{2} \(\S+\): expires \S+ \(in 89 days\)/);
      expect(text).toContain(`Rendered values   ${join(workDir, 'out', 'values.yaml')}`);
      expect(text).toMatch(/Audit log .*audit\.jsonl .*hash chain intact/);
      expect(existsSync(join(workDir, 're-bot.db'))).toBe(true);
      expect(readFileSync(join(workDir, 'out', 'values.yaml'), 'utf8')).toContain('agentTokenSecretName: demo-agent-token');
      // the demo's random credentials never reach the terminal
      for (const v of ['RE_BOT_DEMO_API_TOKEN', 'RE_BOT_DEMO_AGENT_TOKEN', 'RE_BOT_DEMO_GIT_TOKEN']) expect(text).not.toContain(process.env[v]!);
    }
  }, 180_000);
});
