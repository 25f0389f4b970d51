import { describe, expect, it } from 'vitest';

import { parseRange } from './datasets.service';

describe('parseRange', () => {
  it('reads start-end, open-ended and suffix ranges', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=95-200', 100)).toEqual({ start: 95, end: 99 });
  });

  it('refuses ranges it cannot satisfy, naming the Range header', () => {
    for (const header of ['bytes=100-', 'bytes=5-2', 'items=0-1', 'bytes=-']) {
      expect(() => parseRange(header, 100)).toThrow(
        expect.objectContaining({ code: 'RANGE_NOT_SATISFIABLE' }),
      );
    }
  });

  it('means the whole file without a header', () => {
    expect(parseRange(undefined, 100)).toBeUndefined();
  });
});
