import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { newOwnerId, ownerIsDeadLocalProcess } from '../../src/jobs/lease.ts';

describe('lease owners', () => {
  it('an owner id names this host and process, and is unique per engine', () => {
    const a = newOwnerId();
    expect(a).toMatch(new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${process.pid}:[0-9a-f]{8}$`));
    expect(newOwnerId()).not.toBe(a);
  });

  it('a process on this host that exited is dead: its jobs can be reclaimed at once', () => {
    const child = spawnSync(process.execPath, ['-e', '0']);
    expect(child.pid).toBeGreaterThan(0);
    expect(ownerIsDeadLocalProcess(`${hostname()}:${child.pid}:abcd1234`)).toBe(true);
  });

  it('is never "dead" for this process, a live one, another host, or an owner id it cannot read', () => {
    expect(ownerIsDeadLocalProcess(newOwnerId())).toBe(false);
    expect(ownerIsDeadLocalProcess(`${hostname()}:${process.ppid}:abcd1234`)).toBe(false);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(ownerIsDeadLocalProcess(`not-${hostname()}:${dead}:abcd1234`)).toBe(false);
    expect(ownerIsDeadLocalProcess(`${hostname()}:x12:abcd1234`)).toBe(false);
    expect(ownerIsDeadLocalProcess(`${hostname()}:0:abcd1234`)).toBe(false);
    expect(ownerIsDeadLocalProcess(`${hostname()}:-5:abcd1234`)).toBe(false);
    expect(ownerIsDeadLocalProcess(`${hostname()}:1.5:abcd1234`)).toBe(false);
    expect(ownerIsDeadLocalProcess('garbage')).toBe(false);
  });
});
