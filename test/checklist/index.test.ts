import { describe, expect, it } from 'vitest';
import { handlerFor, STEP_HANDLERS } from '../../src/checklist/index.ts';
import { STEP_IDS } from '../../src/spec/plan.ts';

describe('checklist handlers', () => {
  it('one handler per plan step, in checklist order', () => {
    expect(STEP_HANDLERS.map((h) => h.id)).toEqual([...STEP_IDS]);
  });

  it('handlerFor finds a step by id and nothing for an unknown id', () => {
    expect(handlerFor('dag-sources')?.id).toBe('dag-sources');
    expect(handlerFor('release')).toBeUndefined();
  });
});
