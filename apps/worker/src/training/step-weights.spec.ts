import { describe, expect, it } from 'vitest';

import { keepsStep } from './step-weights';

const kept = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => from + i).filter(keepsStep)
    .length;

describe('keepsStep', () => {
  it('keeps every step below 1,000, then 1 in 10 up to 10,000, then 1 in 100', () => {
    expect(kept(0, 1000)).toBe(1000);
    // 1,000 to 9,999: 9,000 steps, every 10th.
    expect(kept(1000, 10_000)).toBe(900);
    // 10,000 to 99,999: 90,000 steps, every 100th.
    expect(kept(10_000, 100_000)).toBe(900);
    expect(keepsStep(1005)).toBe(false);
    expect(keepsStep(10_010)).toBe(false);
    expect(keepsStep(10_100)).toBe(true);
  });
});
