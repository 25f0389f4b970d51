import type {
  ColumnBatch,
  ColumnData,
  ColumnSchema,
  DatasetSchema,
} from '#libs/datasets';

import { Random } from '../random';

/** A generated dataset: its schema and a fresh batch stream per call. */
export interface SyntheticDataset {
  schema: DatasetSchema;
  batches: () => AsyncIterable<ColumnBatch>;
  columns: Record<string, ColumnData>;
}

/** Builds a dataset (schema with statistics) from whole columns. */
export function datasetFrom(
  columns: Record<string, ColumnData>,
  types: Record<string, ColumnSchema['type']>,
  vocabularies: Record<string, string[]> = {},
  batchRows = 64,
): SyntheticDataset {
  const rowCount = Object.values(columns)[0].length;
  const schema: DatasetSchema = {
    rowCount,
    columns: Object.entries(columns).map(([name, data]) => {
      const type = types[name] ?? 'numeric';
      const present = Array.from(data).filter(
        (v) => !Number.isNaN(v) && !(type === 'categorical' && v < 0),
      );
      const mean = present.reduce((a, b) => a + b, 0) / present.length;
      const std = Math.sqrt(
        present.reduce((a, b) => a + (b - mean) ** 2, 0) / present.length,
      );
      const counts = new Map<number, number>();
      present.forEach((v) => counts.set(v, (counts.get(v) ?? 0) + 1));

      return {
        name,
        type,
        statistics: {
          count: present.length,
          missing: rowCount - present.length,
          min: Math.min(...present),
          max: Math.max(...present),
          mean,
          std,
          top: [...counts.entries()]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 20)
            .map(([value, count]) => ({
              value:
                type === 'categorical'
                  ? vocabularies[name][value]
                  : String(value),
              count,
            })),
        },
        vocabulary: vocabularies[name],
      };
    }),
  };
  const batches = async function* () {
    for (let start = 0; start < rowCount; start += batchRows) {
      const end = Math.min(start + batchRows, rowCount);
      yield {
        rowCount: end - start,
        columns: Object.fromEntries(
          Object.entries(columns).map(([name, data]) => [
            name,
            data.slice(start, end),
          ]),
        ),
      } as ColumnBatch;
    }
  };

  return { schema, batches, columns };
}

/**
 * Tabular rows with known targets: x1..x3 ~ N(0, 1), colour in {red, green,
 * blue}; `price` = 2 x1 - x2 + (colour = green) + noise(0.1); `buys` =
 * x1 + x3 > 0; `segment` = argmax(x1, x2, x3) as a, b, c; `tagA` = x1 > 0,
 * `tagB` = x2 > 0.
 */
export function tabularDataset(rows: number, seed: number): SyntheticDataset {
  const random = new Random(seed);
  const x1 = new Float32Array(rows);
  const x2 = new Float32Array(rows);
  const x3 = new Float32Array(rows);
  const colour = new Int32Array(rows);
  const price = new Float32Array(rows);
  const buys = new Float32Array(rows);
  const segment = new Int32Array(rows);
  const tagA = new Float32Array(rows);
  const tagB = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    x1[i] = random.normal();
    x2[i] = random.normal();
    x3[i] = random.normal();
    colour[i] = random.int(3);
    price[i] =
      2 * x1[i] - x2[i] + (colour[i] === 1 ? 1 : 0) + 0.1 * random.normal();
    buys[i] = x1[i] + x3[i] > 0 ? 1 : 0;
    const values = [x1[i], x2[i], x3[i]];
    segment[i] = values.indexOf(Math.max(...values));
    tagA[i] = x1[i] > 0 ? 1 : 0;
    tagB[i] = x2[i] > 0 ? 1 : 0;
  }

  return datasetFrom(
    { x1, x2, x3, colour, price, buys, segment, tagA, tagB },
    {
      colour: 'categorical',
      buys: 'boolean',
      segment: 'categorical',
      tagA: 'boolean',
      tagB: 'boolean',
    },
    { colour: ['red', 'green', 'blue'], segment: ['a', 'b', 'c'] },
  );
}

export const FEATURES = ['x1', 'x2', 'x3', 'colour'];

/**
 * 8x8 grayscale images holding one bright 3-pixel bar: `vertical` says its
 * orientation (binary), `half` says whether it lies in the left or right
 * half (multiclass over left, right).
 */
export function barImages(rows: number, seed: number): SyntheticDataset {
  const random = new Random(seed);
  const size = 8;
  const image = new Uint8Array(rows * size * size);
  const vertical = new Float32Array(rows);
  const half = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const isVertical = random.next() < 0.5;
    const x = random.int(size - 2);
    const y = random.int(size - 2);
    for (let k = 0; k < 3; k++) {
      const px = isVertical ? x : x + k;
      const py = isVertical ? y + k : y;
      image[i * size * size + py * size + px] = 200 + random.int(56);
    }
    vertical[i] = isVertical ? 1 : 0;
    half[i] = x + (isVertical ? 0 : 1) < size / 2 ? 0 : 1;
  }
  const dataset = datasetFrom(
    { vertical, half },
    { vertical: 'boolean', half: 'categorical' },
    { half: ['left', 'right'] },
  );
  dataset.schema.columns.unshift({
    name: 'image',
    type: 'image',
    statistics: { count: rows, missing: 0 },
    image: { height: size, width: size, channels: 1 },
  });
  dataset.columns.image = image;
  const pixels = size * size;
  dataset.batches = async function* () {
    for (let start = 0; start < rows; start += 64) {
      const end = Math.min(start + 64, rows);
      yield {
        rowCount: end - start,
        columns: {
          image: image.slice(start * pixels, end * pixels),
          vertical: vertical.slice(start, end),
          half: half.slice(start, end),
        },
      };
    }
  };

  return dataset;
}
