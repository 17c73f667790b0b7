/**
 * Minimal OpenAPI v3: a root index plus, per group-version, PATCH operations that declare the
 * `fieldValidation` parameter. That is what helm/kubectl look for before trusting server-side
 * field validation; without it they insist on downloading full schemas for client-side validation.
 * No schemas are served, so clients fall back to their compiled-in types for strategic merge.
 */
import { RESOURCES } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

export function openapiRoot(): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const t of RESOURCES) {
    const p = gvPath(t.group, t.version);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=fake${t.group.length}${t.version}` };
  }
  return { paths };
}

const param = (name: string) => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });

export function openapiGroupVersion(path: string): object | undefined {
  const types = RESOURCES.filter((t) => gvPath(t.group, t.version) === path);
  if (!types.length) return undefined;
  const paths: Record<string, object> = {};
  for (const t of types) {
    if (!t.verbs.includes('patch')) continue;
    const base = `/${path}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.name}/{name}`;
    paths[base] = {
      patch: {
        operationId: `patch${t.kind}`,
        parameters: ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map(param),
        responses: { '200': { description: 'OK' } },
        'x-kubernetes-action': 'patch',
        'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
      },
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (fake)', version: 'unversioned' }, paths, components: { schemas: {} } };
}
