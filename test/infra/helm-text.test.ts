import { describe, expect, it } from 'vitest';
import { helmErrorMessage, lineDiff, scrubHelmOutput } from '../../src/infra/helm.js';

// survivors of the infra-argv mutation run (TESTING.md, "gaps"): what helm echoes of a Secret and the diff approvers read
describe('helm output shown to users', () => {
  it('masks a base64 Secret value without padding, and one with padding', () => {
    expect(scrubHelmOutput('data: c2VjcmV0MTIz')).toBe('data: [REDACTED]');
    expect(scrubHelmOutput('stringData=c2VjcmV0MTIzNA==')).toBe('stringData=[REDACTED]');
  });

  it('masks YAML data blocks with aligned values and at the very start of the text', () => {
    const out = scrubHelmOutput('data:\n  token:    c2VjcmV0MTIz\n  url:      aHR0cHM6Ly94\nkind: Secret');
    expect(out).not.toContain('c2VjcmV0MTIz');
    expect(out).not.toContain('aHR0cHM6Ly94');
    expect(out).toContain('kind: Secret');
  });

  it('masks a JSON rendering of data with a space before the colon', () => {
    expect(scrubHelmOutput('"data" : {"token":"c2VjcmV0"}')).toBe('"data" : [REDACTED]');
  });

  it("takes only lines that start with Error:, not a warning that mentions 'error:' inside", () => {
    const msg = helmErrorMessage('upgrade', 'WARNING: retrying after error: timeout\nWARNING: the last Error: was transient\nError: UPGRADE FAILED: boom', 1);
    expect(msg).toBe('helm upgrade failed: UPGRADE FAILED: boom');
  });

  it('shows a key removed at the end of a resource as a removed line', () => {
    expect(lineDiff(['a', 'b'], ['a'])).toEqual(['  a', '- b']);
    expect(lineDiff(['a'], ['a', 'b'])).toEqual(['  a', '+ b']);
  });
});
