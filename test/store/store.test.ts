import { chmodSync, mkdtempSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import { openStore } from '../../src/store/db.ts';
import { createSecretBox } from '../../src/store/crypto.ts';
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

  it('the DB and its -wal/-shm files are readable by the owner only, whatever the umask, also when an older file was 0644', () => {
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
