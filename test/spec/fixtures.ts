import { parseSpec, type SetupSpec } from '../../src/spec/schema.ts';

export const AGENT_IMAGE = 'images.astronomer.cloud/baseimages/astro-remote-execution-agent:3.2-5-python-3.14-astro-agent-1.7.1';

export function baseInput(over: Record<string, unknown> = {}): Record<string, any> {
  return {
    deployment: {
      id: 'cldep0000000001',
      name: 'sales',
      organizationId: 'clorg000000001',
      workspaceId: 'clws0000000001',
      namespace: 'cosmic-nebula-1234',
      apiUrl: 'https://clcluster.external.astronomer.run/d0000001',
      airflowApiUrl: 'https://clorg.astronomer.run/d0000001/api/v2',
      apiToken: { env: 'T_API' },
    },
    cluster: { namespace: 'astro-agents', chart: { version: '2.3.3' } },
    agent: { image: AGENT_IMAGE, token: { env: 'T_AGENT' } },
    xcomBackend: { type: 's3', bucket: 'acme-xcom', region: 'us-east-1' },
    ...over,
  };
}

export function spec(over: Record<string, unknown> = {}): SetupSpec {
  const r = parseSpec(baseInput(over));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

export function envOf(list: unknown, name: string): string | undefined {
  return (list as Array<{ name: string; value?: string }>).find((e) => e.name === name)?.value;
}
