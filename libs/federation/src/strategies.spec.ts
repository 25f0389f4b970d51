import { describe, expect, it } from 'vitest';

import { weightedMean } from './strategies';

/** The mean as written in the docs, one coordinate at a time, in float64. */
function plainMean(values: Float32Array[], weights: number[]): Float32Array {
  return values[0].map((_, i) =>
    values.reduce((sum, v, k) => sum + weights[k] * v[i], 0),
  );
}

describe('weightedMean', () => {
  it('matches the per-coordinate sum bit for bit for any source count', () => {
    // 2,500 coordinates span three blocks; 1 to 9 sources cover groups of
    // four and the remainders.
    for (let sources = 1; sources <= 9; sources++) {
      const values = Array.from({ length: sources }, (_, k) =>
        Float32Array.from({ length: 2500 }, (_, i) =>
          Math.sin((i + 1) * (k + 1.5)),
        ),
      );
      const weights = values.map((_, k) => (k + 1) / 45);

      expect(weightedMean(values, weights)).toEqual(plainMean(values, weights));
    }
  });

  it('weighs each source by its weight', () => {
    const values = [
      Float32Array.of(1, 10),
      Float32Array.of(3, 20),
      Float32Array.of(5, 30),
      Float32Array.of(7, 40),
      Float32Array.of(9, 50),
    ];

    // 0.5·1 + 0.5·9 = 5 and 0.5·10 + 0.5·50 = 30.
    expect(weightedMean(values, [0.5, 0, 0, 0, 0.5])).toEqual(
      Float32Array.of(5, 30),
    );
  });
});
