/**
 * A lease owner on this host that the bot may not signal (another user's process, when the bot does not run
 * as root) is alive: its jobs are not taken from it. The test process runs as root here, where kill(pid, 0)
 * never answers EPERM, so kill's answer is simulated.
 */
import { hostname } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ownerIsDeadLocalProcess } from '../../src/jobs/lease.ts';

afterEach(() => { vi.restoreAllMocks(); });

const killAnswers = (code: string) => vi.spyOn(process, 'kill').mockImplementation(() => { throw Object.assign(new Error(`kill ${code}`), { code }); });

describe('a lease owner on this host', () => {
  it('that exists but may not be signalled (EPERM) is alive; one that does not exist (ESRCH) is dead', () => {
    const kill = killAnswers('EPERM');
    expect(ownerIsDeadLocalProcess(`${hostname()}:4242:abcd1234`)).toBe(false);
    expect(kill).toHaveBeenCalledWith(4242, 0);
    killAnswers('ESRCH');
    expect(ownerIsDeadLocalProcess(`${hostname()}:4242:abcd1234`)).toBe(true);
  });
});
