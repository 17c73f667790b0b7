/**
 * The setup the worker-loop and step-runner tests share: engines stopped after each test, submitting a job as
 * a user, and waiting (polling, with a deadline) for a job to reach a state.
 */
import { afterEach } from 'vitest';
import type { JobEngine, JobView } from '../../src/jobs/types.ts';
import { fakeSpec } from './helpers.ts';

export const alice = { id: 'UALICE' };
export const bob = { id: 'UBOB' };

/** Call at the top of a test file: every engine passed to the returned `track` is stopped after each test. */
export function stopEnginesAfterEach() {
  const engines: JobEngine[] = [];
  afterEach(async () => { for (const e of engines.splice(0)) await e.stop(); });
  return <T extends { engine: JobEngine }>(x: T) => { engines.push(x.engine); return x; };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const submit = (engine: JobEngine, name = 'sales', skip: string[] = []) => engine.submit({ spec: fakeSpec(name, skip), requestedBy: alice, origin: { kind: 'cli' } });

export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('condition never held');
    await sleep(10);
  }
}

export const waitState = async (engine: JobEngine, id: string, state: string, ms = 5000): Promise<JobView> => {
  await waitFor(async () => (await engine.job(id))!.state === state, ms).catch(async () => { throw new Error(`job is ${(await engine.job(id))!.state}, wanted ${state}`); });
  return (await engine.job(id))!;
};
