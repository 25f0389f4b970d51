import { describe, expect, it } from 'vitest';

import { Combiner, sortingNetwork, type CombineOptions } from './strategies';

/** Combines whole arrays of one length (one per source) in one block. */
function combine(
  values: readonly Float32Array[],
  options: CombineOptions,
): Float32Array {
  const length = values[0]?.length ?? 0;
  if (values.some((v) => v.length !== length)) {
    throw new Error('Combine arrays of one length.');
  }
  const combiner = new Combiner({
    sources: values.length,
    blockValues: length,
  });
  values.forEach((v, k) => combiner.blocks[k].set(v));

  return combiner
    .combine(
      values.map((_, k) => k),
      length,
      options,
    )
    .slice();
}

/** The mean as written in the docs, one coordinate at a time, in float64. */
function plainMean(values: Float32Array[], weights: number[]): Float32Array {
  return values[0].map((_, i) =>
    values.reduce((sum, v, k) => sum + weights[k] * v[i], 0),
  );
}

/** Sort each coordinate, drop `trim` at each end, average the rest. */
function plainTrimmed(values: Float32Array[], trim: number): Float32Array {
  return values[0].map((_, i) => {
    const sorted = values.map((v) => v[i]).sort((a, b) => a - b);
    const kept = sorted.slice(trim, sorted.length - trim);

    return kept.reduce((sum, v) => sum + v, 0) / kept.length;
  });
}

/** `sources` arrays of `length` seeded values, all distinct. */
function sourcesOf(sources: number, length: number): Float32Array[] {
  return Array.from({ length: sources }, (_, k) =>
    Float32Array.from({ length }, (_, i) => Math.sin((i + 1) * (k + 1.5))),
  );
}

const options = (
  strategy: CombineOptions['strategy'],
  weights: number[] = [],
  trimRatio = 0.1,
): CombineOptions => ({ strategy, weights, trimRatio });

describe('combine', () => {
  it('fedavg matches the per-coordinate sum bit for bit for 1 to 9 sources', () => {
    // 2,501 coordinates: groups of eight and a remainder of five.
    for (let n = 1; n <= 9; n++) {
      const values = sourcesOf(n, 2501);
      const weights = values.map((_, k) => k + 1);
      const total = (n * (n + 1)) / 2;

      expect(combine(values, options('fedavg', weights))).toEqual(
        plainMean(
          values,
          weights.map((w) => w / total),
        ),
      );
    }
  });

  it('weighs each source by its normalised weight', () => {
    const values = [
      Float32Array.of(1, 10),
      Float32Array.of(3, 20),
      Float32Array.of(5, 30),
      Float32Array.of(7, 40),
      Float32Array.of(9, 50),
    ];

    // Weights 1, 0, 0, 0, 1 normalise to 0.5 and 0.5:
    // 0.5·1 + 0.5·9 = 5 and 0.5·10 + 0.5·50 = 30.
    expect(combine(values, options('fedavg', [1, 0, 0, 0, 1]))).toEqual(
      Float32Array.of(5, 30),
    );
    // Uniform: (1 + 3 + 5 + 7 + 9) / 5 = 5 and (10 + ... + 50) / 5 = 30.
    expect(combine(values, options('uniform'))).toEqual(Float32Array.of(5, 30));
  });

  it('median and trimmed-mean match sorting each coordinate, bit for bit', () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33]) {
      const values = sourcesOf(n, 1003);

      expect(combine(values, options('median'))).toEqual(
        plainTrimmed(values, Math.floor((n - 1) / 2)),
      );
      expect(combine(values, options('trimmed-mean', [], 0.25))).toEqual(
        plainTrimmed(values, Math.floor(0.25 * n)),
      );
    }
  });

  it('takes the middle value, or the mean of the two middle ones', () => {
    const odd = [Float32Array.of(9, -1), Float32Array.of(1, 5)];
    odd.push(Float32Array.of(4, 2));
    const even = [...odd, Float32Array.of(100, 3)];

    // Sorted 1, 4, 9 and -1, 2, 5.
    expect(combine(odd, options('median'))).toEqual(Float32Array.of(4, 2));
    // Sorted 1, 4, 9, 100 and -1, 2, 3, 5: (4 + 9) / 2, (2 + 3) / 2.
    expect(combine(even, options('median'))).toEqual(Float32Array.of(6.5, 2.5));
    // trimRatio 0.25 of 4 drops one value at each end: the same here.
    expect(combine(even, options('trimmed-mean', [], 0.25))).toEqual(
      Float32Array.of(6.5, 2.5),
    );
  });
});

describe('sortingNetwork', () => {
  /** Applies the compare-exchanges to a copy of `values`. */
  function run(pairs: [number, number][], values: number[]): number[] {
    const wires = [...values];
    for (const [i, j] of pairs) {
      if (wires[i] > wires[j]) {
        [wires[i], wires[j]] = [wires[j], wires[i]];
      }
    }

    return wires;
  }

  it('sorts every input of 0s and 1s of up to 12 values, so every input', () => {
    for (let n = 1; n <= 12; n++) {
      const pairs = sortingNetwork(n);
      for (let bits = 0; bits < 1 << n; bits++) {
        const input = Array.from({ length: n }, (_, k) => (bits >> k) & 1);
        const sorted = [...input].sort((a, b) => a - b);

        expect(run(pairs, input), `n=${n} ${input.join('')}`).toEqual(sorted);
      }
    }
  });

  it('keeps only what the asked ranks depend on, and puts them right', () => {
    for (let n = 1; n <= 12; n++) {
      const trim = Math.floor((n - 1) / 2);
      const pairs = sortingNetwork(n, trim, n - 1 - trim);
      for (let bits = 0; bits < 1 << n; bits++) {
        const input = Array.from({ length: n }, (_, k) => (bits >> k) & 1);
        const sorted = [...input].sort((a, b) => a - b);

        expect(run(pairs, input).slice(trim, n - trim)).toEqual(
          sorted.slice(trim, n - trim),
        );
      }
    }
    // Batcher's 19 exchanges for 8 values; the middle two need 17. An
    // odd-even transposition sort takes 28.
    expect(sortingNetwork(8)).toHaveLength(19);
    expect(sortingNetwork(8, 3, 4)).toHaveLength(17);
  });
});

describe('Combiner', () => {
  it('combines only the blocks of the holders, with their weights in order', () => {
    const combiner = new Combiner({ sources: 3, blockValues: 6 });
    combiner.blocks[0].set([1, 1, 1, 1, 1, 1]);
    combiner.blocks[1].set([100, 100, 100, 100, 100, 100]);
    combiner.blocks[2].set([4, 4, 4, 4, 4, 4]);

    // Holders 2 and 0 weighted 3 : 1 → 0.75·4 + 0.25·1 = 3.25; source 1
    // is left out, and so are values past the count of 5.
    expect(combiner.combine([2, 0], 5, options('fedavg', [3, 1]))).toEqual(
      Float32Array.of(3.25, 3.25, 3.25, 3.25, 3.25),
    );
  });

  it('refuses more values than a block holds, or no sources', () => {
    const combiner = new Combiner({ sources: 2, blockValues: 8 });

    expect(() => combiner.combine([0, 1], 9, options('uniform'))).toThrow(
      /at most 8 values, not 2 of 9/,
    );
    expect(() => combiner.combine([], 4, options('uniform'))).toThrow(
      /1 to 2 sources/,
    );
  });
});
