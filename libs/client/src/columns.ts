import type { ColumnBatch, DatasetSchema } from '#libs/datasets';

/**
 * Encodes plain rows ({ column: value }) as the column batches libs/training
 * reads, with the run's schema: numbers as float32 (missing = NaN),
 * booleans as 0/1, categories as codes into the schema's vocabulary
 * (unknown or missing = -1). Columns the schema lacks are ignored.
 */
export function rowsToBatches(
  rows: Record<string, unknown>[],
  schema: DatasetSchema,
  batchSize = 1024,
): ColumnBatch[] {
  const batches: ColumnBatch[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const slice = rows.slice(start, start + batchSize);
    const columns: ColumnBatch['columns'] = {};
    for (const column of schema.columns) {
      if (column.type === 'categorical') {
        const index = new Map(
          (column.vocabulary ?? []).map((value, i) => [value, i]),
        );
        columns[column.name] = Int32Array.from(slice, (row) => {
          const value = row[column.name];

          return value === undefined || value === null
            ? -1
            : (index.get(String(value)) ?? -1);
        });
      } else if (
        column.type === 'numeric' ||
        column.type === 'integer' ||
        column.type === 'boolean'
      ) {
        columns[column.name] = Float32Array.from(slice, (row) =>
          toNumber(row[column.name]),
        );
      }
    }
    batches.push({ rowCount: slice.length, columns });
  }

  return batches;
}

function toNumber(value: unknown): number {
  if (typeof value === 'number') {
    return value;
  }
  if (typeof value === 'boolean') {
    return value ? 1 : 0;
  }
  if (typeof value === 'string' && value.trim() !== '') {
    const lower = value.trim().toLowerCase();
    if (lower === 'true') {
      return 1;
    }
    if (lower === 'false') {
      return 0;
    }
    const parsed = Number(value);

    return Number.isFinite(parsed) ? parsed : NaN;
  }

  return NaN;
}
