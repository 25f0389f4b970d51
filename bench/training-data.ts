import type { ColumnBatch, ColumnData, DatasetSchema } from '#libs/datasets';
import { Random } from '#libs/training';

/** A generated dataset held as whole columns, streamed in batches. */
export interface BenchDataset {
  schema: DatasetSchema;
  columns: Record<string, ColumnData>;
  batches: () => AsyncIterable<ColumnBatch>;
}

export function streamOf(
  columns: Record<string, ColumnData>,
  rowCount: number,
  widths: Record<string, number> = {},
  rowsPerBatch = 512,
): () => AsyncIterable<ColumnBatch> {
  return async function* () {
    for (let start = 0; start < rowCount; start += rowsPerBatch) {
      const end = Math.min(start + rowsPerBatch, rowCount);
      yield {
        rowCount: end - start,
        columns: Object.fromEntries(
          Object.entries(columns).map(([name, data]) => {
            const width = widths[name] ?? 1;

            return [name, data.slice(start * width, end * width)];
          }),
        ),
      };
    }
  };
}

/**
 * Tabular rows standing in for a customer table: 16 numeric features
 * x0..x15 ~ N(0, 1); four targets that depend on overlapping features:
 * `value` (regression), `churn` (binary), `tier` (4 classes), `tagA`/`tagB`
 * (multilabel).
 */
export function customerTable(rows: number, seed: number): BenchDataset {
  const random = new Random(seed);
  const features = 16;
  const columns: Record<string, Float32Array | Int32Array> = {};
  for (let f = 0; f < features; f++) {
    columns[`x${f}`] = new Float32Array(rows);
  }
  const value = new Float32Array(rows);
  const churn = new Float32Array(rows);
  const tier = new Int32Array(rows);
  const tagA = new Float32Array(rows);
  const tagB = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: features }, () => random.normal());
    x.forEach((v, f) => (columns[`x${f}`][i] = v));
    const signal = x[0] * x[1] + Math.sin(x[2]) + 0.5 * x[3];
    value[i] = signal + 0.1 * random.normal();
    churn[i] = signal + x[4] - x[5] > 0 ? 1 : 0;
    tier[i] = Math.min(3, Math.max(0, Math.floor(signal + 2)));
    tagA[i] = x[0] + x[6] > 0 ? 1 : 0;
    tagB[i] = x[1] * x[7] > 0 ? 1 : 0;
  }
  Object.assign(columns, { value, churn, tier, tagA, tagB });
  const schema: DatasetSchema = {
    rowCount: rows,
    columns: Object.entries(columns).map(([name, data]) => {
      const values = Array.from(data);
      const mean = values.reduce((a, b) => a + b, 0) / rows;
      const std = Math.sqrt(
        values.reduce((a, b) => a + (b - mean) ** 2, 0) / rows,
      );

      return {
        name,
        type: name === 'tier' ? 'categorical' : 'numeric',
        statistics: {
          count: rows,
          missing: 0,
          mean,
          std,
          min: Math.min(...values),
          max: Math.max(...values),
        },
        vocabulary: name === 'tier' ? ['t0', 't1', 't2', 't3'] : undefined,
      };
    }),
  };

  return { schema, columns, batches: streamOf(columns, rows) };
}

export const CUSTOMER_FEATURES = Array.from({ length: 16 }, (_, f) => `x${f}`);

export async function timed<T>(
  work: () => Promise<T>,
): Promise<{ result: T; seconds: number }> {
  const started = process.hrtime.bigint();
  const result = await work();

  return {
    result,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  };
}
