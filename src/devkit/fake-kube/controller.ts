/** A tiny Deployment controller: Deployment → ReplicaSet per pod-template hash → Pods that become Ready after a delay. */
import { createHash, randomInt } from 'node:crypto';
import { Cluster, type CrashLoop } from './cluster.ts';
import type { Obj, WatchEvent } from './store.ts';
import type { ResourceType } from './resources.ts';
import { deploymentOf } from './special.ts';

const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function hash10(template: unknown): string {
  const h = createHash('sha256').update(JSON.stringify(template ?? {})).digest();
  return [...h.subarray(0, 10)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

function suffix5(): string {
  return Array.from({ length: 5 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
}

export class DeploymentController {
  private timers = new Set<NodeJS.Timeout>();
  private pending = new Set<string>();
  private closed = false;
  private readonly deployT: ResourceType;
  private readonly rsT: ResourceType;
  private readonly podT: ResourceType;
  private readonly onChange = (e: WatchEvent) => {
    if (e.key === 'apps/deployments' && e.type !== 'DELETED') this.schedule(e.object.metadata.namespace, e.object.metadata.name);
  };

  constructor(
    private readonly c: Cluster,
    private readonly readyDelayMs: number,
  ) {
    this.deployT = c.type('apps/v1', 'Deployment');
    this.rsT = c.type('apps/v1', 'ReplicaSet');
    this.podT = c.type('v1', 'Pod');
    c.store.events.on('change', this.onChange);
  }

  close(): void {
    this.closed = true;
    this.c.store.events.off('change', this.onChange);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  schedule(ns: string, name: string): void {
    const key = `${ns}/${name}`;
    if (this.pending.has(key) || this.closed) return;
    this.pending.add(key);
    this.later(0, () => {
      this.pending.delete(key);
      this.reconcile(ns, name);
    });
  }

  /** Re-evaluates every pod of a Deployment after crashLoop/heal. */
  refresh(deployment: string): void {
    for (const d of this.c.store.list(this.deployT).filter((x) => x.metadata.name === deployment)) {
      for (const p of this.pods(d.metadata.namespace, undefined).filter((x) => deploymentOf(x) === deployment)) this.setPodStatus(p, true);
      this.schedule(d.metadata.namespace, deployment);
    }
  }

  private pods(ns: string, rsUid: string | undefined): Obj[] {
    return this.c.store.list(this.podT, ns).filter((p) => !rsUid || (p.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === rsUid));
  }

  private ownedRs(d: Obj): Obj[] {
    return this.c.store.list(this.rsT, d.metadata.namespace).filter((rs) => (rs.metadata.ownerReferences ?? []).some((r: Obj) => r.uid === d.metadata.uid));
  }

  private reconcile(ns: string, name: string): void {
    const d = this.c.store.get(this.deployT, ns, name);
    if (!d) return;
    const hash = hash10(d.spec.template);
    const replicas: number = d.spec.replicas ?? 1;
    let current: Obj | undefined;
    for (const rs of this.ownedRs(d)) {
      if (rs.metadata.labels?.['pod-template-hash'] === hash) current = rs;
      else this.retire(rs);
    }
    current ??= this.createRs(d, hash);
    if (current.spec.replicas !== replicas) {
      current.spec.replicas = replicas;
      current = this.c.store.update(this.rsT, current);
    }
    const pods = this.pods(ns, current.metadata.uid);
    for (let i = pods.length; i < replicas; i++) this.createPod(d, current, hash);
    for (const p of pods.slice(replicas)) this.c.deleteCascade(this.podT, ns, p.metadata.name);
    this.updateStatus(d, current);
  }

  private retire(rs: Obj): void {
    for (const p of this.pods(rs.metadata.namespace, rs.metadata.uid)) this.c.deleteCascade(this.podT, rs.metadata.namespace, p.metadata.name);
    if (rs.spec.replicas !== 0 || rs.status?.replicas) {
      rs.spec.replicas = 0;
      rs.status = { replicas: 0, observedGeneration: rs.metadata.generation };
      this.c.store.update(this.rsT, rs);
    }
  }

  private createRs(d: Obj, hash: string): Obj {
    const labels = { ...d.spec.template?.metadata?.labels, 'pod-template-hash': hash };
    const template = structuredClone(d.spec.template ?? {});
    template.metadata = { ...template.metadata, labels };
    return this.c.store.create(this.rsT, {
      metadata: {
        name: `${d.metadata.name}-${hash}`,
        namespace: d.metadata.namespace,
        labels,
        annotations: { 'deployment.kubernetes.io/revision': String(this.ownedRs(d).length + 1) },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { replicas: d.spec.replicas ?? 1, selector: { matchLabels: { ...d.spec.selector?.matchLabels, 'pod-template-hash': hash } }, template },
      status: { replicas: 0 },
    });
  }

  private createPod(d: Obj, rs: Obj, hash: string): void {
    const tpl = rs.spec.template ?? {};
    const spec = structuredClone(tpl.spec ?? { containers: [] });
    spec.nodeName = [...this.c.nodes.keys()][0] ?? 'node-1';
    spec.serviceAccountName ??= 'default';
    const pod = this.c.store.create(this.podT, {
      metadata: {
        name: `${rs.metadata.name}-${suffix5()}`,
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...tpl.metadata?.labels, 'pod-template-hash': hash },
        annotations: tpl.metadata?.annotations,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec,
      status: this.podStatus(spec, 'Pending'),
    });
    this.later(this.readyDelayMs, () => {
      const p = this.c.store.get(this.podT, pod.metadata.namespace, pod.metadata.name);
      if (p) this.setPodStatus(p, false);
      this.schedule(d.metadata.namespace, d.metadata.name);
    });
  }

  /** Moves a started pod to Running: Ready, or crash-looping when its Deployment is marked so. */
  private setPodStatus(p: Obj, onlyStarted: boolean): void {
    if (onlyStarted && p.status?.phase === 'Pending') return;
    const crash = this.c.crashLoops.get(deploymentOf(p) ?? '');
    p.status = this.podStatus(p.spec, crash ? 'Crash' : 'Ready', p.status?.startTime, crash);
    this.c.store.update(this.podT, p);
  }

  private podStatus(spec: Obj, state: 'Pending' | 'Ready' | 'Crash', startTime?: string, crash?: CrashLoop): Obj {
    const t = now();
    const ready = state === 'Ready';
    const cond = (type: string, status: boolean) => ({ type, status: status ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: t });
    const containerStatuses = (spec.containers ?? []).map((c: Obj) => {
      const base = { name: c.name, image: c.image, imageID: '', ready, started: ready, restartCount: crash?.restarts ?? 0 };
      if (state === 'Pending') return { ...base, state: { waiting: { reason: 'ContainerCreating' } } };
      if (crash) {
        return {
          ...base,
          state: { waiting: { reason: crash.reason, message: crash.message ?? `back-off restarting failed container ${c.name}` } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: t, finishedAt: t } },
        };
      }
      return { ...base, containerID: `containerd://${createHash('sha1').update(String(c.name) + t).digest('hex')}`, state: { running: { startedAt: t } } };
    });
    return {
      phase: state === 'Pending' ? 'Pending' : 'Running',
      conditions: [cond('PodScheduled', true), cond('Initialized', state !== 'Pending'), cond('ContainersReady', ready), cond('Ready', ready)],
      hostIP: '10.0.0.10',
      podIP: state === 'Pending' ? undefined : `10.244.0.${randomInt(2, 250)}`,
      startTime: startTime ?? t,
      containerStatuses,
      qosClass: 'BestEffort',
    };
  }

  private updateStatus(d: Obj, rs: Obj): void {
    const pods = this.pods(d.metadata.namespace, rs.metadata.uid);
    const ready = pods.filter((p) => p.status?.conditions?.some((c: Obj) => c.type === 'Ready' && c.status === 'True')).length;
    const replicas: number = d.spec.replicas ?? 1;
    const rsStatus = { replicas: pods.length, fullyLabeledReplicas: pods.length, readyReplicas: ready, availableReplicas: ready, observedGeneration: rs.metadata.generation };
    if (JSON.stringify(rs.status) !== JSON.stringify(rsStatus)) this.c.store.update(this.rsT, { ...rs, status: rsStatus });
    const done = ready >= replicas;
    const prev: Obj[] = d.status?.conditions ?? [];
    const cond = (type: string, ok: boolean, reason: string, message: string) => {
      const old = prev.find((c) => c.type === type);
      const status = ok ? 'True' : 'False';
      const t = now();
      const same = old && old.status === status && old.reason === reason;
      return { type, status, lastUpdateTime: same ? old.lastUpdateTime : t, lastTransitionTime: old && old.status === status ? old.lastTransitionTime : t, reason, message };
    };
    const status: Obj = {
      observedGeneration: d.metadata.generation,
      replicas: pods.length,
      updatedReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      conditions: [
        cond('Available', done, done ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable', done ? 'Deployment has minimum availability.' : 'Deployment does not have minimum availability.'),
        cond('Progressing', true, done ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', `ReplicaSet "${rs.metadata.name}" ${done ? 'has successfully progressed' : 'is progressing'}.`),
      ],
    };
    if (replicas - ready > 0) status.unavailableReplicas = replicas - ready;
    if (!ready) delete status.readyReplicas;
    if (JSON.stringify(d.status) !== JSON.stringify(status)) this.c.store.update(this.deployT, { ...d, status });
  }
}
