/**
 * Agent tokens created through the Astro API (issue 17 parts 2 and 3), end to end: the real engine and steps,
 * real helm against the fake Kubernetes API, the Astro stand-in's agent-token routes, SQLite on disk.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSetupJob } from '../../src/cli/run.ts';
import { formatStatus } from '../../src/cli/status.ts';
import { startFakeKube, type FakeKube } from '../../src/devkit/fake-kube/index.ts';
import { helmArgvLog } from '../../src/infra/helm.ts';
import { statusReport } from '../../src/jobs/status.ts';
import { ROTATE_TOKEN } from '../../src/spec/rotate-plan.ts';
import { agentComponents } from '../../src/spec/plan.ts';
import { secretNames } from '../../src/spec/values.ts';
import { openStore } from '../../src/store/db.ts';
import { agentTokenRows } from '../../src/store/agent-tokens.ts';
import { TOKEN_ID_ANNOTATION } from '../../src/checklist/agent-token.ts';
import { captureLogs, demoSpec, localSetup, scratchDir, setSecretEnv } from './support.ts';

let kube: FakeKube;
const logs = captureLogs();
const sink = () => {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d) => (text += d));
  return { stream: s as unknown as NodeJS.WriteStream, text: () => text };
};

beforeAll(async () => {
  setSecretEnv();
  kube = await startFakeKube({ dir: scratchDir('kube'), podReadyDelayMs: 50 });
});
afterAll(async () => {
  await kube?.close();
});

const NAME = 'tok';

describe('agent token created through the Astro API, then rotated', () => {
  const work = scratchDir('e2e-token');
  const dbPath = join(work, 're-bot.db');
  let local: Awaited<ReturnType<typeof localSetup>>;
  const outs: string[] = [];
  const run = async (kind?: string) => {
    const out = sink();
    const r = await runSetupJob({ spec: local.spec, yes: true, dbPath, outDir: join(work, 'out'), out: out.stream, pollMs: 50, ...(kind ? { kind } : {}) });
    outs.push(out.text());
    return { ...r, text: out.text() };
  };
  const secretValue = () => {
    const s = kube.get('v1', 'Secret', NAME, secretNames(local.spec).agentToken);
    return { value: Buffer.from(s.data.token, 'base64').toString('utf8'), annotations: s.metadata.annotations as Record<string, string> };
  };
  const tokens = () => local.astro.agentTokens;
  const everyTokenValue = () => tokens().all().map((t) => t.value);
  /** where a token value must never be: the DB (and WAL), the logs, the terminal, helm's argv */
  const leaks = () => {
    const db = ['', '-wal', '-shm'].map((x) => { try { return readFileSync(dbPath + x).toString('latin1'); } catch { return ''; } }).join('');
    const places = { db, logs: logs.text(), terminal: outs.join('\n'), argv: JSON.stringify(helmArgvLog) };
    return everyTokenValue().flatMap((v) => Object.entries(places).filter(([, text]) => text.includes(v) || text.includes(Buffer.from(v).toString('base64'))).map(([k]) => k));
  };

  beforeAll(async () => {
    local = await localSetup(await demoSpec(NAME, (s) => {
      s.agent.token = { create: { expiresInDays: 10 } };
      delete (s.images as { client?: unknown }).client;
    }), { sharedKube: kube, dag: { durationMs: 200 } });
  }, 60_000);
  afterAll(() => local?.stop());

  it('the setup creates one token after the approval and writes its value only into the Secret', async () => {
    const r = await run();
    expect(r.exitCode, r.text).toBe(0);
    const live = tokens().live(local.spec.deployment.id);
    expect(live).toHaveLength(1);
    expect(live[0].name).toMatch(new RegExp(`^re-bot-${NAME}-\\d{4}-\\d{2}-\\d{2}$`));
    expect(live[0].expiryPeriodInDays).toBe(10);
    const s = secretValue();
    expect(s.value).toBe(live[0].value);
    expect(s.annotations[TOKEN_ID_ANNOTATION]).toBe(live[0].id);
    expect(tokens().accepts(s.value)).toBe(true);
    // the approver saw the token line before anything was created
    const approval = r.job!.approvals[0];
    expect(approval.diffText).toMatch(new RegExp(`create agent token re-bot-${NAME}-\\S+ through the Astro API \\(expires in 10 days\\)`));
    expect(leaks()).toEqual([]);
    // the value was sealed in flight and the sealed copy is erased
    const store = openStore({ path: dbPath });
    try {
      const sealed = store.sqlite.prepare("SELECT ciphertext, erased_at FROM sealed_secrets WHERE purpose LIKE 'agent token %'").all() as Array<{ ciphertext: string | null; erased_at: string | null }>;
      expect(sealed).toHaveLength(1);
      expect(sealed[0].ciphertext).toBeNull();
      expect(sealed[0].erased_at).not.toBeNull();
      expect(agentTokenRows(store, NAME).map((t) => t.id)).toEqual([live[0].id]);
      // ten days left: within the 14-day warning
      const report = statusReport(store, NAME)!;
      expect(report.agentToken?.warning).toMatch(/expires in 9 days .*rotate-token/);
      expect(formatStatus(report)).toMatch(/agent token re-bot-tok-\S+ \(\S+\): expires \S+ \(in 9 days\)\n {2}WARNING: the agent token expires in 9 days/);
    } finally {
      store.close();
    }
  }, 180_000);

  it('running the setup again creates no second token (the Secret holds a live one)', async () => {
    const before = secretValue().value;
    const r = await run();
    expect(r.exitCode, r.text).toBe(0);
    expect(tokens().all()).toHaveLength(1);
    expect(secretValue().value).toBe(before);
    expect(tokens().log.filter((l) => l.startsWith('create'))).toHaveLength(1);
  }, 180_000);

  it('a failure before the delete (agents crash after the roll) leaves the old token working', async () => {
    const old = tokens().live(local.spec.deployment.id)[0];
    const crashing = agentComponents(local.spec)[0];
    kube.crashLoop(crashing, { reason: 'CrashLoopBackOff', restarts: 3 });
    try {
      const r = await run(ROTATE_TOKEN);
      expect(r.exitCode, r.text).toBe(1);
      const steps = Object.fromEntries(r.job!.steps.map((s) => [s.stepId, s.state]));
      expect(steps).toMatchObject({ 'token-create': 'succeeded', 'token-secret': 'succeeded', 'token-roll': 'failed', 'token-delete-old': 'pending' });
      expect(r.job!.approvals.filter((a) => a.state === 'approved')).toHaveLength(1);
      expect(tokens().accepts(old.value)).toBe(true);
      expect(tokens().all().find((t) => t.id === old.id)!.deletedAt).toBeUndefined();
    } finally {
      kube.heal(crashing);
    }
  }, 180_000);

  it('retried, the rotation finishes without a second approval or token: old token deleted, agents on the new Secret', async () => {
    const store = openStore({ path: dbPath });
    let jobId: string;
    try {
      jobId = statusReport(store, NAME)!.job!.id;
    } finally {
      store.close();
    }
    const { createRuntime } = await import('../../src/app/wire.ts');
    const rt = await createRuntime({ dbPath, pollMs: 50 });
    try {
      await rt.engine.retry(jobId, { id: 'cli:test' });
      rt.engine.start();
      const v = await rt.engine.settled(jobId);
      expect(v.state, v.error).toBe('succeeded');
      expect(v.approvals).toHaveLength(1);
    } finally {
      await rt.close();
    }
    const all = tokens().all();
    expect(all).toHaveLength(2);
    const [old, fresh] = all;
    expect(old.deletedAt).toBeDefined();
    expect(tokens().accepts(old.value)).toBe(false);
    expect(tokens().accepts(fresh.value)).toBe(true);
    expect(secretValue().value).toBe(fresh.value);
    expect(secretValue().annotations[TOKEN_ID_ANNOTATION]).toBe(fresh.id);
    // every agent Deployment rolled to a template marked with the new token; its pods are the new template's
    for (const c of agentComponents(local.spec)) {
      const d = kube.get('apps/v1', 'Deployment', NAME, c);
      expect(d.spec.template.metadata.annotations[TOKEN_ID_ANNOTATION], c).toBe(fresh.id);
      const pods = kube.list('v1', 'Pod', NAME).filter((p) => p.metadata.name.startsWith(`${c}-`));
      expect(pods.length, c).toBeGreaterThan(0);
      for (const p of pods) expect(p.metadata.annotations?.[TOKEN_ID_ANNOTATION], p.metadata.name).toBe(fresh.id);
    }
    expect(tokens().log.map((l) => l.split(' ')[0])).toEqual(['create', 'create', 'delete']);
    expect(leaks()).toEqual([]);
    const store2 = openStore({ path: dbPath });
    try {
      const rows = agentTokenRows(store2, NAME);
      expect(rows.find((r) => r.id === old.id)?.deletedAt).toBeDefined();
      expect(statusReport(store2, NAME)!.agentToken?.id).toBe(fresh.id);
    } finally {
      store2.close();
    }
  }, 180_000);
});
