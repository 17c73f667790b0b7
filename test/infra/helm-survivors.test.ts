/**
 * The last survivors of the infra-argv mutation run in src/infra/helm.ts (TESTING.md): Secret data helm echoes
 * with a blank where the tests had none, helm's message when it printed no `Error:` line, and the order of the
 * approval diff when lines move or are inserted at the top.
 */
import { describe, expect, it } from 'vitest';
import { helmErrorMessage, lineDiff, scrubHelmOutput } from '../../src/infra/helm.ts';

describe('Secret data in helm output, written with blanks', () => {
  it('a data: block with a trailing blank after "data:" is still masked', () => {
    expect(scrubHelmOutput('x data: \n  license: c2VjcmV0MTIz\nkind: Secret')).toBe('x data: \n  license: [REDACTED]\nkind: Secret');
  });

  it('data = <base64> and data : <base64> (a blank before the separator) are masked', () => {
    expect(scrubHelmOutput('data = c2VjcmV0MTIz')).toBe('data = [REDACTED]');
    expect(scrubHelmOutput('stringData : c2VjcmV0MTIz')).toBe('stringData : [REDACTED]');
  });
});

describe('helm’s message without an Error: line', () => {
  it('the last lines are kept whole: an "error:" inside them is not cut out', () => {
    expect(helmErrorMessage('upgrade', 'first\nfailed with error: boom', 1)).toBe('helm upgrade failed: first failed with error: boom');
  });

  it('the Error: prefix goes with all the blanks after it', () => {
    expect(helmErrorMessage('upgrade', 'Error:  two blanks', 1)).toBe('helm upgrade failed: two blanks');
    expect(helmErrorMessage('upgrade', 'Error:none', 1)).toBe('helm upgrade failed: none');
  });
});

describe('the approval diff is the smallest one, in order', () => {
  it('a line inserted at the top is one added line', () => {
    expect(lineDiff(['x'], ['y', 'x'])).toEqual(['+ y', '  x']);
  });

  it('two lines swapped: one removed, one kept, one added', () => {
    expect(lineDiff(['a', 'b'], ['b', 'a'])).toEqual(['- a', '  b', '+ a']);
  });

  it('a changed first line of two equal lines: the change first, then the kept line', () => {
    expect(lineDiff(['y', 'y'], ['z', 'y'])).toEqual(['- y', '+ z', '  y']);
  });
});
