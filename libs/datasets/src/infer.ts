import { ColumnAccumulator, type ColumnStatsOptions } from './column-stats';
import type { DatasetSchema } from './contract';
import { type Cell, type DatasetInput, isImageCell } from './input';
import { openTable } from './open-table';
import { DatasetError, type ValidationReport } from './problems';
import { ReportBuilder } from './report-builder';
import {
  DEFAULT_LIMITS,
  type ReadLimits,
  type ReadSettings,
  type RowBatch,
  type Table,
} from './table';

export interface InferOptions {
  /** Forces parts of the layout instead of detecting them. */
  settings?: Partial<ReadSettings>;
  /** Caps on record size, archive size and the like; see `ReadLimits`. */
  limits?: Partial<ReadLimits>;
  /**
   * Distinct values above which a column is text rather than categorical.
   * Default 1,000.
   */
  maxVocabulary?: number;
  /** Examples kept per problem in the report. Default 5. */
  maxExamples?: number;
  /** Rows kept as a sample for display. Default 20. */
  sampleRows?: number;
  /**
   * CSV/TSV: split quote-free lines directly (default true); false sends
   * every line through csv-parse. Both give the same rows.
   */
  fastUnquoted?: boolean;
  /** Called every 10,000 rows with the number of rows read so far. */
  onProgress?: (rows: number) => void;
}

export type SampleValue = string | number | boolean | null;

export interface InferenceResult {
  /** The resolved layout; pass it to `writeShards` for the second pass. */
  settings: ReadSettings;
  /** Best effort even when the report is not ok. */
  schema: DatasetSchema;
  report: ValidationReport;
  /** The first rows as read (images shown as their shape). */
  sample: Record<string, SampleValue>[];
}

/**
 * The first pass over a dataset: reads every row once, infers each column's
 * type and statistics, and lists problems. Memory stays flat in the number
 * of rows. Problems in the data end up in `report`; only failures to read
 * the input itself (storage errors) are thrown.
 */
export async function inferDataset(
  input: DatasetInput,
  options: InferOptions = {},
): Promise<InferenceResult> {
  return runInference(input, options);
}

/** Sees every batch of rows inference reads, after inference has. */
export type BatchObserver = (
  table: Pick<Table, 'columns' | 'settings'>,
  batch: RowBatch,
) => Promise<void> | void;

/** `inferDataset`, with a hook for writing shards in the same pass. */
export async function runInference(
  input: DatasetInput,
  options: InferOptions,
  observe?: BatchObserver,
): Promise<InferenceResult> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const statsOptions: ColumnStatsOptions = {
    maxVocabulary: options.maxVocabulary ?? 1000,
    maxExamples: options.maxExamples ?? 5,
    topCount: 20,
  };
  const report = new ReportBuilder(statsOptions.maxExamples);
  const sampleRows = options.sampleRows ?? 20;
  const sample: Record<string, SampleValue>[] = [];
  let settings: ReadSettings = { format: 'csv', ...options.settings };
  let accumulators: ColumnAccumulator[] = [];
  let rowCount = 0;
  try {
    const table = await openTable(input, options.settings ?? {}, {
      limits,
      report,
      fastUnquoted: options.fastUnquoted,
    });
    settings = table.settings;
    accumulators = table.columns.map(
      (name) =>
        new ColumnAccumulator(
          name,
          statsOptions,
          settings.format === 'images' && name === 'label',
        ),
    );
    let nextProgress = 10_000;
    for await (const batch of table.batches) {
      const { rows, rowNumbers } = batch;
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        const at = rowNumbers[r];
        for (let c = 0; c < accumulators.length; c++) {
          accumulators[c].push(row[c], at);
        }
        if (sample.length < sampleRows) {
          sample.push(sampleOf(table.columns, row));
        }
      }
      rowCount += rows.length;
      if (observe) await observe(table, batch);
      if (rowCount >= nextProgress) {
        options.onProgress?.(rowCount);
        nextProgress = rowCount + 10_000;
      }
    }
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    report.addGrouped(error.toProblem());
  }
  const columns = accumulators.map((a) => a.finish(report, rowCount));

  return {
    settings: withImageShape(settings, columns),
    schema: { columns, rowCount },
    report: report.build(),
    sample,
  };
}

function sampleOf(columns: string[], row: Cell[]): Record<string, SampleValue> {
  const out: Record<string, SampleValue> = {};
  columns.forEach((name, i) => {
    const cell = row[i];
    out[name] = isImageCell(cell)
      ? `image ${cell.height}x${cell.width}x${cell.channels}`
      : cell;
  });

  return out;
}

function withImageShape(
  settings: ReadSettings,
  columns: DatasetSchema['columns'],
): ReadSettings {
  const image = columns.find((c) => c.type === 'image')?.image;

  return image ? { ...settings, imageShape: image } : settings;
}
