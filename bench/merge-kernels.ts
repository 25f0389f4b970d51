/**
 * Times the merge arithmetic alone, in memory: the WebAssembly kernels of
 * libs/federation (Combiner) against the same per-coordinate loops in
 * JavaScript, over the values of one merge of the merge bench (8 sources of
 * 5.24M values, in blocks of 64K values as mergeArtifacts takes them).
 *
 *   npm run build && node dist/bench/merge-kernels.js
 *
 * Prints the median of 7 timed passes (after 2 warm-up passes) per strategy
 * and the ratio JavaScript / WebAssembly.
 */
import { Combiner } from '#libs/federation';

const SOURCES = 8;
const BLOCK = 64 * 1024;
/** Blocks of one 5.24M-value model. */
const BLOCKS = 80;
const PASSES = 7;

/** The weighted mean in float64, source by source over the block. */
function plainMean(
  blocks: Float32Array[],
  weights: number[],
  sums: Float64Array,
  out: Float32Array,
): void {
  sums.fill(0);
  for (let k = 0; k < blocks.length; k++) {
    const block = blocks[k];
    const weight = weights[k];
    for (let i = 0; i < sums.length; i++) {
      sums[i] += weight * block[i];
    }
  }
  for (let i = 0; i < sums.length; i++) {
    out[i] = sums[i];
  }
}

/** Per coordinate: an insertion sort across sources, the middle averaged. */
function plainMedian(blocks: Float32Array[], out: Float32Array): void {
  const n = blocks.length;
  const trim = Math.floor((n - 1) / 2);
  const column = new Float64Array(n);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) {
      const value = blocks[k][i];
      let at = k;
      while (at > 0 && column[at - 1] > value) {
        column[at] = column[at - 1];
        at--;
      }
      column[at] = value;
    }
    let sum = 0;
    for (let r = trim; r < n - trim; r++) {
      sum += column[r];
    }
    out[i] = sum / (n - 2 * trim);
  }
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);

  return sorted[sorted.length >> 1];
}

/** Milliseconds per model: the median of the timed passes. */
function time(pass: () => void): number {
  for (let i = 0; i < 2; i++) {
    pass();
  }
  const times: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const started = process.hrtime.bigint();
    pass();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }

  return medianOf(times);
}

function main() {
  const combiner = new Combiner({ sources: SOURCES, blockValues: BLOCK });
  combiner.blocks.forEach((block, k) =>
    block.forEach((_, i) => (block[i] = Math.sin(i * (k + 1)))),
  );
  const holders = combiner.blocks.map((_, k) => k);
  const raw = holders.map((k) => 1000 + k);
  const total = raw.reduce((a, b) => a + b, 0);
  const out = new Float32Array(BLOCK);
  const sums = new Float64Array(BLOCK);
  console.log(
    `${SOURCES} sources x ${((BLOCK * BLOCKS) / 1e6).toFixed(2)}M values, ` +
      `blocks of ${BLOCK}; ms per model, median of ${PASSES}`,
  );
  console.log('strategy | wasm ms | JavaScript ms | JavaScript / wasm');
  for (const strategy of ['fedavg', 'median'] as const) {
    const options = { strategy, weights: raw, trimRatio: 0.1 };
    const wasm = time(() => {
      for (let b = 0; b < BLOCKS; b++) {
        combiner.combine(holders, BLOCK, options);
      }
    });
    const weights = raw.map((w) => w / total);
    const loop = time(() => {
      for (let b = 0; b < BLOCKS; b++) {
        if (strategy === 'fedavg') {
          plainMean(combiner.blocks, weights, sums, out);
        } else {
          plainMedian(combiner.blocks, out);
        }
      }
    });
    console.log(
      `${strategy.padEnd(8)} | ${wasm.toFixed(1).padStart(7)} | ` +
        `${loop.toFixed(1).padStart(13)} | ${(loop / wasm).toFixed(2)}`,
    );
  }
}

main();
