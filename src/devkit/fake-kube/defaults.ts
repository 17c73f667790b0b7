/** Per-kind defaulting and normalisation the real API server does on write. */
import type { Obj } from './store.ts';
import { invalid } from './status.ts';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function validateName(kind: string, name: string): void {
  if (!name) throw invalid(kind, name, 'metadata.name: Required value: name or generateName is required');
  if (name.length > 253 || !NAME.test(name)) {
    throw invalid(kind, name, `metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`);
  }
}

/** Applied to every create and update: the object as it would be stored. */
export function normalise(kind: string, o: Obj): Obj {
  switch (kind) {
    case 'Secret':
      return secret(o);
    case 'Namespace':
      o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name };
      o.spec = { finalizers: ['kubernetes'], ...o.spec };
      o.status = { phase: 'Active', ...o.status };
      return o;
    case 'Deployment':
      o.spec = { replicas: 1, revisionHistoryLimit: 10, progressDeadlineSeconds: 600, ...o.spec };
      o.spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
      podSpec(o.spec.template?.spec);
      o.status ??= {};
      return o;
    case 'Pod':
      podSpec(o.spec);
      o.status ??= { phase: 'Pending' };
      return o;
    case 'ServiceAccount':
    case 'ConfigMap':
      return o;
    default:
      return o;
  }
}

function secret(o: Obj): Obj {
  o.type ??= 'Opaque';
  if (o.stringData) {
    o.data = { ...o.data };
    for (const [k, v] of Object.entries(o.stringData as Record<string, string>)) o.data[k] = Buffer.from(String(v)).toString('base64');
    delete o.stringData;
  }
  for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
      throw invalid('Secret', o.metadata.name, `data[${k}]: Invalid value: illegal base64 data`);
    }
  }
  return o;
}

function podSpec(spec: Obj | undefined): void {
  if (!spec) return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const c of spec.containers ?? []) {
    c.imagePullPolicy ??= String(c.image ?? '').endsWith(':latest') || !String(c.image ?? '').includes(':') ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
  }
}
