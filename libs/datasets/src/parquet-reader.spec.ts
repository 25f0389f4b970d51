import { describe, expect, it } from 'vitest';

import { inferDataset } from './infer';
import { bufferInput, type DatasetInput } from './input';
import { openTable } from './open-table';
import { DEFAULT_LIMITS } from './table';
import { parquetBytes } from './testing/parquet-writer';

const file = parquetBytes(
  [
    { name: 'x', type: 'double', values: [1.5, 2.5, null, 4.5, 5.5] },
    { name: 'n', type: 'int64', values: [1, 2, 3, 4, 5] },
    { name: 'ok', type: 'boolean', values: [true, false, true, true, false] },
    { name: 'tag', type: 'string', values: ['a', 'b', 'a', 'a', 'b'] },
  ],
  2,
);

/** Counts the bytes read, to show reads go through ranges. */
function countingInput(bytes: Buffer) {
  const base = bufferInput(bytes, 'data.parquet');
  const ranges: [number, number][] = [];
  const input: DatasetInput = {
    ...base,
    open: () => {
      throw new Error('Parquet must be read through ranges');
    },
    openRange: (start, end) => {
      ranges.push([start, end]);

      return base.openRange!(start, end);
    },
  };

  return { input, ranges };
}

describe('Parquet', () => {
  it('infers types from a file of three row groups', async () => {
    const result = await inferDataset(bufferInput(file, 'data.parquet'));

    expect(result.report.problems.map((p) => p.code)).toEqual([
      'MISSING_VALUES',
    ]);
    expect(result.settings.format).toBe('parquet');
    expect(result.schema.rowCount).toBe(5);
    expect(result.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['x', 'numeric'],
      ['n', 'integer'],
      ['ok', 'boolean'],
      ['tag', 'categorical'],
    ]);
    // x: 1.5 + 2.5 + 4.5 + 5.5 = 14 over 4 values.
    expect(result.schema.columns[0].statistics).toMatchObject({
      count: 4,
      missing: 1,
      mean: 3.5,
    });
  });

  it('reads one row group at a time through byte ranges', async () => {
    const { input, ranges } = countingInput(file);
    const table = await openTable(
      input,
      { format: 'parquet' },
      {
        limits: DEFAULT_LIMITS,
      },
    );
    const sizes: number[] = [];
    const rows = [];
    for await (const batch of table.batches) {
      sizes.push(batch.rows.length);
      rows.push(...batch.rows);
    }

    expect(sizes).toEqual([2, 2, 1]);
    expect(rows[2]).toEqual([null, 3, true, 'a']);
    // The footer, then one read per row group.
    expect(ranges.length).toBeGreaterThanOrEqual(4);
  });

  it('refuses a row group over the size limit', async () => {
    const result = await inferDataset(bufferInput(file, 'data.parquet'), {
      limits: { maxRowGroupBytes: 10 },
    });

    expect(result.report.problems[0]).toMatchObject({
      code: 'ROW_GROUP_TOO_LARGE',
      row: 1,
    });
  });

  it('reports a truncated file', async () => {
    const result = await inferDataset(
      bufferInput(file.subarray(0, file.length - 12), 'data.parquet'),
    );

    expect(result.report.problems[0]).toMatchObject({
      code: 'INVALID_PARQUET',
    });
  });
});
