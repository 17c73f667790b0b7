/** `re-bot doctor`: which external tools were found (path + version), and which checklist step needs a missing one. */
import { probeTool, type ToolName, type ToolStatus } from '../infra/tools.ts';

const NEEDED_FOR: Record<ToolName, string> = {
  helm: 'step 2 (agents: helm upgrade --install) and step 7 (deploy roll)',
  buildah: 'step 7 (image build) — default builder',
  docker: 'step 7 (image build) — alternative builder',
  podman: 'step 7 (image build) — alternative builder',
  skopeo: 'optional: reading image digests from registries that need a token login',
  kubectl: 'optional: manual debugging only',
};

const ORDER: ToolName[] = ['helm', 'kubectl', 'buildah', 'docker', 'podman', 'skopeo'];
const BUILDERS: ToolName[] = ['buildah', 'docker', 'podman'];

export interface DoctorResult {
  tools: ToolStatus[];
  ok: boolean;
  lines: string[];
}

export async function doctor(env: NodeJS.ProcessEnv = process.env): Promise<DoctorResult> {
  const tools = await Promise.all(ORDER.map((t) => probeTool(t, env)));
  const found = (name: ToolName) => Boolean(tools.find((t) => t.name === name)?.version);
  const width = Math.max(...ORDER.map((t) => t.length));
  const lines = tools.map((t) =>
    t.version
      ? `  ✓ ${t.name.padEnd(width)}  ${t.version}  ${t.path}`
      : `  ✗ ${t.name.padEnd(width)}  missing — ${t.reason}; needed for ${NEEDED_FOR[t.name]}`,
  );
  const problems: string[] = [];
  if (!found('helm')) problems.push('helm is required (set RE_BOT_HELM or put helm on PATH)');
  if (!BUILDERS.some(found)) problems.push('an image builder is required: install buildah (or docker / podman)');
  const ok = problems.length === 0;
  return {
    tools,
    ok,
    lines: ['re-bot doctor — external tools', ...lines, '', ok ? 'OK: helm and an image builder are available.' : `NOT READY: ${problems.join('; ')}.`],
  };
}

export async function run(_args: string[]): Promise<number> {
  const result = await doctor();
  process.stdout.write(result.lines.join('\n') + '\n');
  return result.ok ? 0 : 1;
}
