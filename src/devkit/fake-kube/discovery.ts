/** Legacy discovery documents (/api, /apis, resource lists). Aggregated (v2) requests get these too, as application/json, so clients fall back. */
import { RESOURCES, groups, type ResourceType } from './resources.ts';

export function coreVersions(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, versions: string[]): object {
  const vs = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function groupList(): object {
  const out: object[] = [];
  for (const [name, versions] of groups()) if (name) out.push(groupDoc(name, versions));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: out };
}

export function group(name: string): object | undefined {
  const versions = groups().get(name);
  return name && versions ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(name, versions) } : undefined;
}

function entries(t: ResourceType): object[] {
  const main: Record<string, unknown> = { name: t.name, singularName: t.singularName, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs };
  if (t.shortNames) main.shortNames = t.shortNames;
  if (t.categories) main.categories = t.categories;
  main.storageVersionHash = Buffer.from(`${t.group}/${t.name}`).toString('base64').slice(0, 11);
  const subs = (t.subresources ?? []).map((s) => {
    const e: Record<string, unknown> = { name: `${t.name}/${s.name}`, singularName: '', namespaced: t.namespaced, kind: s.kind, verbs: s.verbs };
    if (s.kind === 'Scale') Object.assign(e, { group: 'autoscaling', version: 'v1' });
    return e;
  });
  return [main, ...subs];
}

export function resourceList(groupName: string, version: string): object | undefined {
  const ts = RESOURCES.filter((t) => t.group === groupName && t.version === version);
  if (!ts.length) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupName ? `${groupName}/${version}` : version, resources: ts.flatMap(entries) };
}
