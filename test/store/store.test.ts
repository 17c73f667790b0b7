import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { describe, it, expect } from 'vitest';
import { openStore, sqliteSynchronous } from '../../src/store/db.ts';
import { ConfigError } from '../../src/config-error.ts';
import { createSecretBox, loadSecretKey } from '../../src/store/crypto.ts';
import { forgetAllSecrets, redact } from '../../src/redact.ts';
import { appendAudit, verifyAuditChain } from '../../src/store/audit.ts';

const tmp = () => join(mkdtempSync(join(tmpdir(), 'rebot-store-')), 'nested', 're-bot.db');

describe('store', () => {
  it('creates the DB with migrations, WAL and foreign keys', () => {
    const s = openStore({ path: tmp() });
    expect(s.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
    const tables = s.sqlite.prepare("select name from sqlite_master where type='table'").all().map((r: any) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['jobs', 'job_steps', 'approvals', 'approval_votes', 'slack_outbox', 'audit_events', 'sealed_secrets', 'deployments']));
    s.close();
  });

  it('commits wait for the disk only with RE_BOT_SQLITE_SYNCHRONOUS=full; a wrong value names the variable and what it takes', () => {
    const before = process.env.RE_BOT_SQLITE_SYNCHRONOUS;
    try {
      delete process.env.RE_BOT_SQLITE_SYNCHRONOUS;
      const dflt = openStore({ path: tmp() });
      expect(dflt.sqlite.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
      dflt.close();
      process.env.RE_BOT_SQLITE_SYNCHRONOUS = 'FULL';
      const full = openStore({ path: tmp() });
      expect(full.sqlite.pragma('synchronous', { simple: true })).toBe(2);
      full.close();
      process.env.RE_BOT_SQLITE_SYNCHRONOUS = 'off';
      expect(() => openStore({ path: tmp() })).toThrow(ConfigError);
      expect(() => sqliteSynchronous({ RE_BOT_SQLITE_SYNCHRONOUS: 'off' })).toThrow(/RE_BOT_SQLITE_SYNCHRONOUS.*expected "normal" \(the default\) or "full", got "off"/s);
    } finally {
      if (before === undefined) delete process.env.RE_BOT_SQLITE_SYNCHRONOUS;
      else process.env.RE_BOT_SQLITE_SYNCHRONOUS = before;
    }
  });

  it('sealed secrets never appear in plaintext in the DB file, open back, and can be erased', () => {
    delete process.env.RE_BOT_SECRET_KEY;
    const path = tmp();
    const s = openStore({ path });
    const box = createSecretBox(s);
    const plain = 'astro-agent-token-ZZ9-plural-z-alpha';
    const id = box.sealSecret(plain, 'agent-token');
    expect(box.openSecret(id)).toBe(plain);
    s.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const dir = join(path, '..');
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f)).includes(Buffer.from(plain))).toBe(false);
    expect(statSync(join(dir, 're-bot.key')).mode & 0o777).toBe(0o600);
    box.eraseSecret(id);
    expect(() => box.openSecret(id)).toThrow(/erased/);
    s.close();
  });

  // process.umask(mask) throws in a worker thread, where Stryker's vitest runner runs this file (npm run mutate);
  // npm test runs it in a forked process, so the file modes stay covered there
  it.skipIf(!isMainThread)('the DB and its -wal/-shm files are readable by the owner only, whatever the umask, also when an older file was 0644', () => {
    const old = process.umask(0o000); // the loosest umask: files SQLite creates itself would be 0644 or 0666
    try {
      const path = tmp();
      const s = openStore({ path });
      appendAudit(s, { actor: 'U1', action: 'job.submitted', jobId: 'j1' });
      for (const f of [path, `${path}-wal`, `${path}-shm`]) expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
      expect(statSync(join(path, '..')).mode & 0o077).toBe(0);
      s.close();

      // files left 0644 by an older re-bot (the first connection keeps -wal/-shm in place)
      const legacy = tmp();
      const first = openStore({ path: legacy });
      for (const f of [legacy, `${legacy}-wal`, `${legacy}-shm`]) chmodSync(f, 0o644);
      const again = openStore({ path: legacy });
      for (const f of [legacy, `${legacy}-wal`, `${legacy}-shm`]) expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
      again.close();
      first.close();
    } finally {
      process.umask(old);
    }
  });

  it('audit chain verifies and detects tampering', () => {
    const s = openStore({ path: tmp() });
    appendAudit(s, { actor: 'U1', action: 'job.submitted', jobId: 'j1', valuesHash: 'h1' });
    appendAudit(s, { actor: 'U2', action: 'approval.decided', jobId: 'j1', decision: 'approve', result: 'ok' });
    appendAudit(s, { actor: 'system', action: 'job.finished', jobId: 'j1', result: 'succeeded' });
    expect(verifyAuditChain(s)).toEqual({ ok: true, count: 3 });
    s.sqlite.prepare("update audit_events set decision='reject' where seq=2").run();
    expect(verifyAuditChain(s)).toMatchObject({ ok: false, brokenAtSeq: 2 });
    s.close();
  });
});

describe('secret box (AES-256-GCM)', () => {
  const key = randomBytes(32);
  const row = (s: ReturnType<typeof openStore>, id: string) =>
    s.sqlite.prepare('select ciphertext, iv, tag, purpose, erased_at from sealed_secrets where id = ?').get(id) as { ciphertext: string | null; iv: string | null; tag: string | null; purpose: string; erased_at: string | null };

  it('sealing the same value twice uses a fresh 12-byte IV each time (no nonce reuse) and gives different ciphertexts', () => {
    const s = openStore({ path: tmp() });
    const box = createSecretBox(s, key);
    const a = box.sealSecret('same-secret-value-123');
    const b = box.sealSecret('same-secret-value-123');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^sec_[0-9a-f-]{36}$/);
    const [ra, rb] = [row(s, a), row(s, b)];
    expect(Buffer.from(ra.iv!, 'base64')).toHaveLength(12);
    expect(ra.iv).not.toBe(rb.iv);
    expect(ra.ciphertext).not.toBe(rb.ciphertext);
    expect(Buffer.from(ra.iv!, 'base64').equals(Buffer.alloc(12))).toBe(false);
    expect(box.openSecret(a)).toBe('same-secret-value-123');
    expect(box.openSecret(b)).toBe('same-secret-value-123');
    s.close();
  });

  it('a row copied under another id does not open (the id is authenticated data)', () => {
    const s = openStore({ path: tmp() });
    const box = createSecretBox(s, key);
    const victim = box.sealSecret('prod-agent-token-AAAA-1111', 'agent-token');
    const mine = box.sealSecret('my-own-harmless-value', 'agent-token');
    const v = row(s, victim);
    s.sqlite.prepare('update sealed_secrets set ciphertext = ?, iv = ?, tag = ? where id = ?').run(v.ciphertext, v.iv, v.tag, mine);
    expect(() => box.openSecret(mine)).toThrow();
    expect(box.openSecret(victim)).toBe('prod-agent-token-AAAA-1111');
    s.close();
  });

  it('a tampered ciphertext or a different key does not open', () => {
    const s = openStore({ path: tmp() });
    const box = createSecretBox(s, key);
    const id = box.sealSecret('tamper-me-please-42');
    expect(() => createSecretBox(s, randomBytes(32)).openSecret(id)).toThrow();
    const ct = Buffer.from(row(s, id).ciphertext!, 'base64');
    ct[0] ^= 1;
    s.sqlite.prepare('update sealed_secrets set ciphertext = ? where id = ?').run(ct.toString('base64'), id);
    expect(() => box.openSecret(id)).toThrow();
    s.close();
  });

  it('records the purpose, registers opened values with the redactor, erases for good and names unknown ids', () => {
    forgetAllSecrets();
    const s = openStore({ path: tmp() });
    const box = createSecretBox(s, key);
    const id = box.sealSecret('registered-on-seal-777', 'git-token');
    expect(row(s, id)).toMatchObject({ purpose: 'git-token', erased_at: null });
    expect(row(s, box.sealSecret('default-purpose-888'))).toMatchObject({ purpose: 'secret' });
    expect(redact('x registered-on-seal-777')).toBe('x [REDACTED]');
    forgetAllSecrets();
    // a new process opening the secret must register it too before any output can carry it
    expect(createSecretBox(s, key).openSecret(id)).toBe('registered-on-seal-777');
    expect(redact('x registered-on-seal-777')).toBe('x [REDACTED]');
    box.eraseSecret(id);
    expect(row(s, id)).toMatchObject({ ciphertext: null, iv: null, tag: null, erased_at: expect.any(String) });
    expect(() => box.openSecret(id)).toThrow(`sealed secret ${id} was erased`);
    expect(() => box.openSecret('sec_nope')).toThrow('sealed secret sec_nope not found');
    s.close();
  });

  it('a row marked erased, or missing any of ciphertext/iv/tag, never opens and says it was erased', () => {
    const s = openStore({ path: tmp() });
    const box = createSecretBox(s, key);
    for (const set of ["erased_at = '2026-01-01T00:00:00Z'", 'ciphertext = null', 'iv = null', 'tag = null']) {
      const id = box.sealSecret('half-erased-secret-99');
      s.sqlite.prepare(`update sealed_secrets set ${set} where id = ?`).run(id);
      expect(() => box.openSecret(id), set).toThrow(`sealed secret ${id} was erased`);
    }
    s.close();
  });

  it('RE_BOT_SECRET_KEY must be base64 of exactly 32 bytes; the key file is created once and reused', () => {
    const s = openStore({ path: tmp() });
    const saved = process.env.RE_BOT_SECRET_KEY;
    try {
      process.env.RE_BOT_SECRET_KEY = randomBytes(16).toString('base64');
      expect(() => loadSecretKey(s)).toThrow('RE_BOT_SECRET_KEY: expected base64 of exactly 32 bytes');
      process.env.RE_BOT_SECRET_KEY = key.toString('base64');
      expect(loadSecretKey(s).equals(key)).toBe(true);
      delete process.env.RE_BOT_SECRET_KEY;
      const k1 = loadSecretKey(s);
      expect(k1).toHaveLength(32);
      expect(loadSecretKey(s).equals(k1)).toBe(true);
      const file = join(s.path, '..', 're-bot.key');
      chmodSync(file, 0o644);
      loadSecretKey(s);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      writeFileSync(file, randomBytes(31).toString('base64'));
      expect(() => loadSecretKey(s)).toThrow(/re-bot\.key: expected base64 of exactly 32 bytes/);
    } finally {
      if (saved === undefined) delete process.env.RE_BOT_SECRET_KEY;
      else process.env.RE_BOT_SECRET_KEY = saved;
      s.close();
    }
  });
});
