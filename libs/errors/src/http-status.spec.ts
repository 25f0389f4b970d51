import { describe, expect, it } from 'vitest';

import { ErrorCode } from './error-code';
import { httpStatusFor } from './http-status';

describe('httpStatusFor', () => {
  it('gives every code a 4xx or 5xx status', () => {
    for (const code of Object.values(ErrorCode)) {
      const status = httpStatusFor(code);

      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
  });

  it('maps the codes users act on to their conventional statuses', () => {
    expect(httpStatusFor(ErrorCode.Unauthenticated)).toBe(401);
    expect(httpStatusFor(ErrorCode.NotFound)).toBe(404);
    expect(httpStatusFor(ErrorCode.RateLimited)).toBe(429);
  });
});
