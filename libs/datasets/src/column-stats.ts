import type {
  ColumnSchema,
  ColumnStatistics,
  ColumnType,
  ImageShape,
} from './contract';
import { type Cell, type ImageCell, isImageCell } from './input';
import { DatasetProblemCode, type ProblemExample, preview } from './problems';
import type { ReportBuilder } from './report-builder';

export interface ColumnStatsOptions {
  /** Distinct values above which a column is text, not categorical. */
  maxVocabulary: number;
  /** Examples kept per problem. */
  maxExamples: number;
  /** Categories listed in `statistics.top`. */
  topCount: number;
}

/** Values longer than this never go into a vocabulary. */
const MAX_CATEGORY_LENGTH = 200;
/** Share of numbers from which a column is taken as numeric with errors. */
const MOSTLY_NUMERIC = 0.9;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;
/** Spellings of "no value" that spreadsheet and R exports write. */
const MISSING_MARKERS = new Set(['NA', 'N/A', 'n/a', '#N/A', 'null', 'NULL']);

/** Whether a cell counts as missing: null or a marker such as "NA". */
export function isMissing(cell: Cell): boolean {
  return (
    cell === null ||
    (typeof cell === 'string' && cell.length <= 4 && MISSING_MARKERS.has(cell))
  );
}

/**
 * The vocabulary entry of a value: the text itself, booleans and their
 * spellings in lower case, numbers as `String` prints them.
 */
export function categoryKey(cell: string | number | boolean): string {
  if (typeof cell === 'number') return String(cell);
  if (typeof cell === 'boolean') return cell ? 'true' : 'false';
  if (mayBeSpecial(cell)) {
    const lower = cell.trim().toLowerCase();
    if (lower === 'true' || lower === 'false') return lower;
  }

  return cell;
}

/**
 * Watches one column's values in a single pass with memory that does not
 * grow with the row count: counters, Welford's running mean and variance,
 * and a vocabulary that is dropped once it passes `maxVocabulary`.
 */
export class ColumnAccumulator {
  count = 0;
  missing = 0;
  private numbers = 0;
  private integers = 0;
  private nonFinite = 0;
  private booleans = 0;
  private others = 0;
  private images = 0;
  private mean = 0;
  private m2 = 0;
  private min = Infinity;
  private max = -Infinity;
  private distinct: Map<string, number> | undefined = new Map();
  private imageShape: ImageShape | undefined;
  private allGray = true;
  private readonly nonFiniteExamples: ProblemExample[] = [];
  private readonly otherExamples: ProblemExample[] = [];
  private readonly missingRows: number[] = [];

  /**
   * @param categorical the reader knows the column is a class label (the
   *   folders of an image archive): categorical unless it overflows.
   */
  constructor(
    readonly name: string,
    private readonly options: ColumnStatsOptions,
    private readonly categorical = false,
  ) {}

  push(cell: Cell, row: number): void {
    if (isMissing(cell)) {
      this.missing += 1;
      if (this.missingRows.length < this.options.maxExamples) {
        this.missingRows.push(row);
      }

      return;
    }
    this.count += 1;
    if (typeof cell === 'string') this.pushString(cell, row);
    else if (typeof cell === 'number') this.pushNumber(cell, cell, row);
    else if (typeof cell === 'boolean') {
      this.booleans += 1;
      this.track(cell ? 'true' : 'false');
    } else if (isImageCell(cell)) this.pushImage(cell);
  }

  private pushString(value: string, row: number): void {
    const number = Number(value);
    if (number === number) {
      this.pushNumber(number, value, row);
    } else if (mayBeSpecial(value) && NON_FINITE.test(value.trim())) {
      this.pushNumber(NaN, value, row);
    } else {
      const lower = mayBeSpecial(value) ? value.trim().toLowerCase() : '';
      if (lower === 'true' || lower === 'false') {
        this.booleans += 1;
        this.track(lower);

        return;
      }
      this.others += 1;
      if (this.otherExamples.length < this.options.maxExamples) {
        this.otherExamples.push({ row, value: preview(value) });
      }
    }
    this.track(value);
  }

  private pushNumber(value: number, raw: string | number, row: number): void {
    if (!Number.isFinite(value)) {
      this.nonFinite += 1;
      if (this.nonFiniteExamples.length < this.options.maxExamples) {
        this.nonFiniteExamples.push({ row, value: preview(String(raw)) });
      }

      return;
    }
    this.numbers += 1;
    if (Number.isInteger(value)) this.integers += 1;
    const delta = value - this.mean;
    this.mean += delta / this.numbers;
    this.m2 += delta * (value - this.mean);
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    if (typeof raw === 'number' && this.distinct !== undefined) {
      this.track(String(raw));
    }
  }

  private pushImage(image: ImageCell): void {
    this.images += 1;
    this.imageShape ??= {
      height: image.height,
      width: image.width,
      channels: image.channels,
    };
    this.allGray &&= image.gray;
    // Chan's parallel update: fold the image's own mean and M2 into the
    // running ones.
    const pixels = image.pixels;
    let sum = 0;
    let min = 255;
    let max = 0;
    for (let i = 0; i < pixels.length; i++) {
      const v = pixels[i];
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const n = pixels.length;
    const imageMean = sum / n;
    let m2 = 0;
    for (let i = 0; i < n; i++) {
      const d = pixels[i] - imageMean;
      m2 += d * d;
    }
    const total = this.numbers + n;
    const delta = imageMean - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += m2 + (delta * delta * this.numbers * n) / total;
    this.numbers = total;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    this.distinct = undefined;
  }

  private track(value: string): void {
    const distinct = this.distinct;
    if (distinct === undefined) return;
    if (value.length > MAX_CATEGORY_LENGTH) {
      this.distinct = undefined;

      return;
    }
    distinct.set(value, (distinct.get(value) ?? 0) + 1);
    if (distinct.size > this.options.maxVocabulary) this.distinct = undefined;
  }

  /** Settles the type, writes problems to `report` and returns the schema. */
  finish(report: ReportBuilder | undefined, rowCount: number): ColumnSchema {
    const type = this.decideType();
    const statistics: ColumnStatistics = {
      count: this.count,
      missing: this.missing,
    };
    const schema: ColumnSchema = { name: this.name, type, statistics };
    if (this.numbers > 0) {
      statistics.min = this.min;
      statistics.max = this.max;
      statistics.mean = this.mean;
      statistics.std = Math.sqrt(this.m2 / this.numbers);
    }
    const counts = this.sortedCounts();
    if (counts !== undefined) {
      statistics.distinct = counts.length;
      if (type !== 'numeric') {
        statistics.top = counts
          .slice(0, this.options.topCount)
          .map(([value, count]) => ({ value, count }));
      }
    }
    if (type === 'boolean') {
      const trues = this.distinctCount('true');
      statistics.mean = this.count > 0 ? trues / this.count : undefined;
      schema.vocabulary = undefined;
    }
    if (type === 'categorical' && this.distinct !== undefined) {
      // First-seen order: a shard writer can give codes while it streams.
      schema.vocabulary = [...this.distinct.keys()];
    }
    if (type === 'image' && this.imageShape !== undefined) {
      schema.image = {
        ...this.imageShape,
        channels: this.allGray ? 1 : this.imageShape.channels,
      };
    }
    this.reportProblems(type, report, rowCount);

    return schema;
  }

  private decideType(): ColumnType {
    if (this.images > 0) return 'image';
    if (this.count === 0) return 'text';
    if (this.booleans === this.count) return 'boolean';
    const numeric = this.numbers + this.nonFinite;
    if (numeric === this.count || numeric >= MOSTLY_NUMERIC * this.count) {
      return this.integers === this.numbers ? 'integer' : 'numeric';
    }
    const size = this.distinct?.size;
    // Categorical when values repeat: at least twice on average, or (for
    // small data) some repeat and there are few of them.
    const repeats =
      size !== undefined &&
      (this.categorical ||
        size <= 2 ||
        size * 2 <= this.count ||
        (size < this.count && size <= 20));
    if (repeats) {
      return 'categorical';
    }

    return 'text';
  }

  private reportProblems(
    type: ColumnType,
    report: ReportBuilder | undefined,
    rowCount: number,
  ): void {
    if (!report) return;
    const column = this.name;
    const numeric = type === 'numeric' || type === 'integer';
    if (numeric && this.nonFinite > 0) {
      report.addGrouped({
        code: DatasetProblemCode.NonFiniteNumber,
        severity: 'error',
        message:
          `Column "${column}" is numeric but ${this.nonFinite} value(s) are ` +
          `not finite numbers (first: "${this.nonFiniteExamples[0]?.value}" ` +
          `in row ${this.nonFiniteExamples[0]?.row}); leave the cell empty ` +
          'for a missing value.',
        row: this.nonFiniteExamples[0]?.row,
        column,
        count: this.nonFinite,
        examples: this.nonFiniteExamples.map((e) => ({ ...e, column })),
      });
    }
    if (numeric && this.others + this.booleans > 0) {
      const first = this.otherExamples[0];
      report.addGrouped({
        code: DatasetProblemCode.MixedTypes,
        severity: 'error',
        message:
          `Column "${column}" holds numbers in ` +
          `${percent(this.numbers + this.nonFinite, this.count)} of its ` +
          `values, but ${this.others + this.booleans} are not numbers` +
          (first ? ` (first: "${first.value}" in row ${first.row})` : '') +
          '; correct them or leave the cells empty.',
        row: first?.row,
        column,
        count: this.others + this.booleans,
        examples: this.otherExamples.map((e) => ({ ...e, column })),
      });
    }
    const limit = 2 ** 24;
    if (
      numeric &&
      this.numbers > 0 &&
      (this.max > limit || this.min < -limit)
    ) {
      report.addGrouped({
        code: DatasetProblemCode.PrecisionLoss,
        severity: 'warning',
        message:
          `Column "${column}" has values beyond ±${limit} (from ${this.min} ` +
          `to ${this.max}); shards store 32-bit floats, so such values are ` +
          'rounded. Identifiers are better kept as text.',
        column,
        count: 1,
        examples: [],
      });
    }
    if (this.count === 0 && this.missing > 0) {
      report.addGrouped({
        code: DatasetProblemCode.EmptyColumn,
        severity: 'warning',
        message: `Column "${column}" has no values; it is kept as text and not used for training.`,
        column,
        count: this.missing,
        examples: [],
      });
    } else if (this.missing > 0) {
      report.addGrouped({
        code: DatasetProblemCode.MissingValues,
        severity: 'warning',
        message:
          `Column "${column}" is missing in ${this.missing} of ${rowCount} ` +
          `rows (${percent(this.missing, rowCount)}).`,
        row: this.missingRows[0],
        column,
        count: this.missing,
        examples: this.missingRows.map((row) => ({ row, column })),
      });
    }
  }

  private sortedCounts(): [string, number][] | undefined {
    if (this.distinct === undefined) return undefined;

    return [...this.distinct.entries()].sort(
      (a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0),
    );
  }

  private distinctCount(value: string): number {
    return this.distinct?.get(value) ?? 0;
  }
}

function percent(part: number, whole: number): string {
  return `${((100 * part) / Math.max(whole, 1)).toFixed(1)}%`;
}

/**
 * Whether a value could spell NaN, Inf, true or false (cheap first-character
 * test that spares most text a regular expression and a lower-casing).
 */
function mayBeSpecial(value: string): boolean {
  if (value.length > 12) return false;
  const first = value.charCodeAt(0) | 0x20;

  return (
    first <= 0x2d ||
    first === 0x6e ||
    first === 0x69 ||
    first === 0x74 ||
    first === 0x66
  );
}
