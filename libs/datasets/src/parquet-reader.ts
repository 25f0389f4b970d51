import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
} from 'hyparquet';

import { type Cell, type DatasetInput, readRange } from './input';
import { DatasetError, DatasetProblemCode } from './problems';
import type { ReaderOptions, ReadSettings, RowBatch, Table } from './table';

const BATCH_ROWS = 4096;

/**
 * Reads Parquet through byte ranges: the footer first, then one row group
 * at a time, so memory holds at most one row group's column chunks.
 */
export async function readParquet(
  input: DatasetInput,
  _settings: ReadSettings,
  options: ReaderOptions,
): Promise<Table> {
  if (input.openRange === undefined || input.size === undefined) {
    throw new Error('Reading Parquet needs DatasetInput.openRange and size.');
  }
  const file = asyncBufferOf(input, input.size);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new DatasetError(
      DatasetProblemCode.InvalidParquet,
      `The Parquet footer cannot be read (${(error as Error).message}); ` +
        'the file may be truncated or not Parquet.',
    );
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (Number(metadata.num_rows) === 0) {
    throw new DatasetError(
      DatasetProblemCode.HeaderOnly,
      'The Parquet file has a schema but no rows; add at least one row.',
    );
  }

  return {
    settings: { format: 'parquet' },
    columns,
    batches: batchesOf(file, metadata, columns.length, options),
  };
}

async function* batchesOf(
  file: AsyncBuffer,
  metadata: FileMetaData,
  width: number,
  options: ReaderOptions,
): AsyncGenerator<RowBatch> {
  let rowStart = 0;
  for (const [index, group] of metadata.row_groups.entries()) {
    const rows = Number(group.num_rows);
    const bytes = group.columns.reduce(
      (sum, chunk) => sum + Number(chunk.meta_data?.total_compressed_size ?? 0),
      0,
    );
    if (bytes > options.limits.maxRowGroupBytes) {
      throw new DatasetError(
        DatasetProblemCode.RowGroupTooLarge,
        `Row group ${index} is ${bytes} bytes compressed, over the limit of ` +
          `${options.limits.maxRowGroupBytes}; write the file with smaller ` +
          'row groups.',
        { row: rowStart + 1 },
      );
    }
    const decoded = await readGroup(file, metadata, rowStart, rowStart + rows);
    for (let offset = 0; offset < decoded.length; offset += BATCH_ROWS) {
      const slice = decoded.slice(offset, offset + BATCH_ROWS);
      yield {
        rows: slice.map((values) => toRow(values, width)),
        rowNumbers: slice.map((_, i) => rowStart + offset + i + 1),
      };
    }
    rowStart += rows;
  }
}

async function readGroup(
  file: AsyncBuffer,
  metadata: FileMetaData,
  rowStart: number,
  rowEnd: number,
): Promise<unknown[][]> {
  let rows: unknown[][] = [];
  try {
    await parquetRead({
      file,
      metadata,
      rowStart,
      rowEnd,
      rowFormat: 'array',
      onComplete: (result) => {
        rows = result;
      },
    });
  } catch (error) {
    throw new DatasetError(
      DatasetProblemCode.InvalidParquet,
      `Rows ${rowStart + 1} to ${rowEnd} cannot be decoded ` +
        `(${(error as Error).message}).`,
      { row: rowStart + 1 },
    );
  }

  return rows;
}

function toRow(values: unknown[], width: number): Cell[] {
  const cells = new Array<Cell>(width);
  for (let i = 0; i < width; i++) cells[i] = toCell(values[i]);

  return cells;
}

function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value.trim() === '' ? null : value;
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');

  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'bigint' ? Number(v) : v,
  );
}

function asyncBufferOf(input: DatasetInput, size: number): AsyncBuffer {
  return {
    byteLength: size,
    slice: async (start: number, end?: number) => {
      const bytes = await readRange(input, start, end ?? size);

      return bytes.buffer.slice(
        bytes.byteOffset,
        bytes.byteOffset + bytes.byteLength,
      ) as ArrayBuffer;
    },
  };
}
