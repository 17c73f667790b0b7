import { describe, expect, it } from 'vitest';
import { bcryptHash } from '../../src/devkit/bcrypt.ts';

describe('bcrypt for the local registry htpasswd', () => {
  it('matches known answers (OpenBSD / jBCrypt vectors, and crypt(3) $2b$)', () => {
    expect(bcryptHash('', 6, 'DCq7YPn5Rq63x1Lad4cll.')).toBe('$2b$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.');
    expect(bcryptHash('demo-api-token-abc', 5, 'abcdefghijklmnopqrstuu')).toBe('$2b$05$abcdefghijklmnopqrstuur3cFoa5cpijI/zkMR9pCzOchp1qfZ8m');
  });
  it('a random salt each time, cost in the prefix', () => {
    const [a, b] = [bcryptHash('same', 4), bcryptHash('same', 4)];
    expect(a).toMatch(/^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    expect(a).not.toBe(b);
  });
});
