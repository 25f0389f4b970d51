import type { ImageShape } from './contract';
import type { Cell, DatasetFormat } from './input';
import type { ReportBuilder } from './report-builder';

/**
 * How a file is read, settled by the first pass (detected or given) and
 * passed unchanged to the second, so both see the same rows.
 */
export interface ReadSettings {
  format: DatasetFormat;
  /** CSV/TSV: the field delimiter. */
  delimiter?: string;
  /** CSV/TSV: whether the first record names the columns. */
  hasHeader?: boolean;
  /** Image archives: the shape every image is resized to. */
  imageShape?: ImageShape;
}

/** Caps that keep a hostile or broken file from exhausting the worker. */
export interface ReadLimits {
  /** Largest record (CSV/TSV row, JSON line) in bytes. Default 1 MiB. */
  maxRecordBytes: number;
  /** Most columns a table may have. Default 10,000. */
  maxColumns: number;
  /** Most entries in a zip archive, directories included. Default 200,000. */
  maxArchiveEntries: number;
  /** Most bytes all entries of an archive may inflate to. Default 8 GiB. */
  maxInflatedBytes: number;
  /** Largest inflated size of one archive entry. Default 64 MiB. */
  maxEntryBytes: number;
  /**
   * Highest inflated/compressed ratio of an entry, checked once it has
   * inflated past `ratioFloorBytes`. Default 100.
   */
  maxCompressionRatio: number;
  /** Size under which the ratio is not checked. Default 1 MiB. */
  ratioFloorBytes: number;
  /** Most pixels (width x height) of one image. Default 40 million. */
  maxImagePixels: number;
  /**
   * Largest compressed Parquet row group read at once. Decoded rows take
   * several times this in memory. Default 128 MiB.
   */
  maxRowGroupBytes: number;
}

export const DEFAULT_LIMITS: ReadLimits = {
  maxRecordBytes: 1024 * 1024,
  maxColumns: 10_000,
  maxArchiveEntries: 200_000,
  maxInflatedBytes: 8 * 1024 ** 3,
  maxEntryBytes: 64 * 1024 * 1024,
  maxCompressionRatio: 100,
  ratioFloorBytes: 1024 * 1024,
  maxImagePixels: 40_000_000,
  maxRowGroupBytes: 128 * 1024 * 1024,
};

/** Rows of a table, a batch at a time; `rowNumbers[i]` is 1-based. */
export interface RowBatch {
  rows: Cell[][];
  rowNumbers: number[];
}

export interface Table {
  settings: ReadSettings;
  columns: string[];
  batches: AsyncIterable<RowBatch>;
}

export interface ReaderOptions {
  limits: ReadLimits;
  /** Where non-fatal problems go; absent in passes that only re-read. */
  report?: ReportBuilder;
  /**
   * CSV/TSV: split lines without quotes directly, handing the file to
   * csv-parse from its first quote on. Default true; false reads every
   * line with csv-parse.
   */
  fastUnquoted?: boolean;
}

/** Gives every column a usable, unique name, reporting what it changed. */
export function normalizeHeader(
  names: string[],
  report: ReportBuilder | undefined,
): string[] {
  const seen = new Set<string>();

  return names.map((raw, index) => {
    let name = raw.trim();
    if (name === '') {
      name = `column_${index + 1}`;
      report?.add({
        code: 'EMPTY_HEADER',
        severity: 'error',
        message:
          `Column ${index + 1} has an empty name in the header; give every ` +
          'column a name.',
        example: { row: 0, column: name },
      });
    }
    if (seen.has(name)) {
      const original = name;
      let suffix = 2;
      while (seen.has(`${original}_${suffix}`)) suffix += 1;
      name = `${original}_${suffix}`;
      report?.add({
        code: 'DUPLICATE_HEADER',
        severity: 'error',
        message:
          `The header names column "${original}" more than once (again at ` +
          `column ${index + 1}); column names must be unique.`,
        example: { row: 0, column: original, value: original },
      });
    }
    seen.add(name);

    return name;
  });
}
