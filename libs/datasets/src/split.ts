import type { ColumnBatch, ColumnData } from './contract';
import { DatasetError, DatasetProblemCode } from './problems';
import { seededRandom } from './random';

export type SplitName = 'train' | 'validation' | 'test';

/** Codes stored per row: 0 train, 1 validation, 2 test. */
export const SPLIT_CODES: Record<SplitName, number> = {
  train: 0,
  validation: 1,
  test: 2,
};

export interface SplitSpec {
  /** Shares of rows per split; they must add up to 1. */
  ratios: Record<SplitName, number>;
  /** Any integer; the same seed and data give the same split. */
  seed: number;
  /**
   * A categorical, boolean or integer column: each of its values is split by
   * the ratios on its own, so every split keeps the class balance.
   */
  stratifyBy?: string;
}

const MAX_BLOCK = 1000;

/**
 * Assigns rows to splits as they stream past, with exact ratios. Rows of
 * each stratum (one stratum without `stratifyBy`) are taken in blocks of B
 * rows, B the smallest size the ratios divide (10 for 0.8/0.1/0.1); each
 * block holds the exact counts, in an order shuffled by a generator seeded
 * from the seed, the stratum and the block number. Memory is B bytes per
 * stratum; the result depends only on the spec and the row order.
 */
export class SplitAssigner {
  private readonly pattern: Uint8Array;
  private readonly strata = new Map<
    string,
    { position: number; block: Uint8Array }
  >();
  readonly counts: Record<SplitName, number> = {
    train: 0,
    validation: 0,
    test: 0,
  };

  constructor(private readonly spec: SplitSpec) {
    this.pattern = blockPattern(spec.ratios);
  }

  /** The split code of the next row, whose stratum key is `key`. */
  next(key = ''): number {
    let stratum = this.strata.get(key);
    if (stratum === undefined) {
      stratum = { position: 0, block: this.pattern };
      this.strata.set(key, stratum);
    }
    const size = this.pattern.length;
    const at = stratum.position % size;
    if (at === 0) {
      const block = stratum.position / size;
      stratum.block = shuffled(
        this.pattern,
        `${this.spec.seed}:${key}:${block}`,
      );
    }
    stratum.position += 1;
    const code = stratum.block[at];
    if (code === 0) this.counts.train += 1;
    else if (code === 1) this.counts.validation += 1;
    else this.counts.test += 1;

    return code;
  }
}

/** Checks a spec and says what is wrong with it. */
export function validateSplitSpec(spec: SplitSpec): void {
  const { train, validation, test } = spec.ratios;
  const values = [train, validation, test];
  const sum = values.reduce((a, b) => a + b, 0);
  if (
    values.some((v) => !Number.isFinite(v) || v < 0) ||
    Math.abs(sum - 1) > 1e-9
  ) {
    throw new DatasetError(
      DatasetProblemCode.InvalidOptions,
      `Split ratios ${values.join('/')} must be non-negative and add up ` +
        'to 1 (for example 0.8/0.1/0.1).',
    );
  }
  if (!Number.isInteger(spec.seed)) {
    throw new DatasetError(
      DatasetProblemCode.InvalidOptions,
      `Split seed ${spec.seed} must be an integer.`,
    );
  }
}

function blockPattern(ratios: Record<SplitName, number>): Uint8Array {
  const shares = [ratios.train, ratios.validation, ratios.test];
  let size = MAX_BLOCK;
  for (let b = 1; b <= MAX_BLOCK; b++) {
    if (shares.every((s) => Math.abs(s * b - Math.round(s * b)) < 1e-6)) {
      size = b;
      break;
    }
  }
  // Largest remainder, so the counts add up to the block size.
  const raw = shares.map((s) => s * size);
  const counts = raw.map(Math.floor);
  const order = raw
    .map((r, i) => [r - Math.floor(r), i] as const)
    .sort((a, b) => b[0] - a[0]);
  let missing = size - counts.reduce((a, b) => a + b, 0);
  for (const [, i] of order) {
    if (missing-- <= 0) break;
    counts[i] += 1;
  }
  const pattern = new Uint8Array(size);
  let at = 0;
  counts.forEach((count, code) => {
    pattern.fill(code, at, at + count);
    at += count;
  });

  return pattern;
}

function shuffled(pattern: Uint8Array, key: string): Uint8Array {
  const random = seededRandom(hash32(key));
  const out = Uint8Array.from(pattern);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }

  return out;
}

/** FNV-1a over UTF-16 code units. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }

  return h >>> 0;
}

/** Packs split codes at 2 bits a row, as base64 for a JSON manifest. */
export function packSplitCodes(codes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(codes.length / 4));
  for (let i = 0; i < codes.length; i++) {
    out[i >> 2] |= (codes[i] & 3) << ((i & 3) * 2);
  }

  return Buffer.from(out).toString('base64');
}

export function unpackSplitCodes(packed: string, rowCount: number): Uint8Array {
  const bytes = Buffer.from(packed, 'base64');
  const out = new Uint8Array(rowCount);
  for (let i = 0; i < rowCount; i++) {
    out[i] = (bytes[i >> 2] >> ((i & 3) * 2)) & 3;
  }

  return out;
}

/** The rows of `batch` whose code is `split`, as a new batch. */
export function selectSplit(
  batch: ColumnBatch,
  codes: Uint8Array,
  split: SplitName,
): ColumnBatch {
  const wanted = SPLIT_CODES[split];
  const rows: number[] = [];
  for (let i = 0; i < batch.rowCount; i++)
    if (codes[i] === wanted) rows.push(i);
  const columns: Record<string, ColumnData> = {};
  for (const [name, data] of Object.entries(batch.columns)) {
    const width = data.length / Math.max(batch.rowCount, 1);
    const out = new (data.constructor as new (n: number) => ColumnData)(
      rows.length * width,
    );
    rows.forEach((row, i) => {
      out.set(data.subarray(row * width, (row + 1) * width), i * width);
    });
    columns[name] = out;
  }

  return { rowCount: rows.length, columns };
}
