/** How a merge combines the same weight of several sources. */
export type MergeStrategy = 'fedavg' | 'uniform' | 'median' | 'trimmed-mean';

/** Σ weights[k] · values[k], coordinate by coordinate (weights sum to 1). */
export function weightedMean(
  values: readonly Float32Array[],
  weights: readonly number[],
): Float32Array {
  const out = new Float32Array(values[0].length);
  const n = values.length;
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let k = 0; k < n; k++) {
      sum += weights[k] * values[k][i];
    }
    out[i] = sum;
  }

  return out;
}

/**
 * Sorts each coordinate's values and averages what is left after dropping
 * `trim` values at each end; `trim` = (n - 1) / 2 rounded down gives the
 * median (the mean of the two middle values when n is even).
 */
export function trimmedMean(
  values: readonly Float32Array[],
  trim: number,
): Float32Array {
  const n = values.length;
  const out = new Float32Array(values[0].length);
  const sorted = new Float64Array(n);
  const keep = n - 2 * trim;
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) {
      // Insertion sort: n is the number of sources, a handful.
      const v = values[k][i];
      let j = k - 1;
      while (j >= 0 && sorted[j] > v) {
        sorted[j + 1] = sorted[j];
        j--;
      }
      sorted[j + 1] = v;
    }
    let sum = 0;
    for (let k = trim; k < n - trim; k++) {
      sum += sorted[k];
    }
    out[i] = sum / keep;
  }

  return out;
}

/** Options for {@link combine}. */
export interface CombineOptions {
  strategy: MergeStrategy;
  /** Relative weights per source (fedavg); normalised here. */
  weights: readonly number[];
  /** Share of values dropped at each end by trimmed-mean. */
  trimRatio: number;
}

/** Combines the same weight of several sources by the merge strategy. */
export function combine(
  values: readonly Float32Array[],
  options: CombineOptions,
): Float32Array {
  const n = values.length;
  switch (options.strategy) {
    case 'fedavg': {
      const total = options.weights.reduce((a, b) => a + b, 0);

      return weightedMean(
        values,
        options.weights.map((w) => w / total),
      );
    }
    case 'uniform':
      return weightedMean(values, new Array<number>(n).fill(1 / n));
    case 'median':
      return trimmedMean(values, Math.floor((n - 1) / 2));
    case 'trimmed-mean':
      return trimmedMean(values, Math.floor(options.trimRatio * n));
  }
}
