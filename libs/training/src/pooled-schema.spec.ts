import type { ColumnBatch } from '#libs/datasets';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { openStream, type DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import { planModel } from './plan';
import { poolSchemas, unionVocabularies } from './pooled-schema';
import { datasetFrom, tabularDataset } from './testing/synthetic';
import { train } from './train';

const spec = (features: string[], target: string, kind = 'regression') => ({
  features,
  backbone: { kind: 'mlp' as const, widths: [16] },
  tasks: [{ name: 't', kind: kind as 'regression', target }],
});

/**
 * Two sources of the same rows, coded differently: `colour` and `band` (x1
 * low, mid or high) under other codes in b; `green` says colour is green.
 */
function reordered(rows: number, seed: number) {
  const { x1, colour } = tabularDataset(rows, seed).columns as {
    x1: Float32Array;
    colour: Int32Array;
  };
  const green = Float32Array.from(colour, (c) => (c === 1 ? 1 : 0));
  const band = Int32Array.from(x1, (x) => (x < -0.43 ? 0 : x < 0.43 ? 1 : 2));
  const types = { colour: 'categorical', band: 'categorical' } as const;

  return {
    a: datasetFrom({ x1, colour, band, green }, types, {
      colour: ['red', 'green', 'blue'],
      band: ['low', 'mid', 'high'],
    }),
    b: datasetFrom(
      {
        x1,
        // red (0) -> 2, green (1) -> 0, blue (2) -> 1
        colour: Int32Array.from(colour, (c) => [2, 0, 1][c]),
        // low (0) -> 1, mid (1) -> 2, high (2) -> 0
        band: Int32Array.from(band, (c) => [1, 2, 0][c]),
        green,
      },
      types,
      { colour: ['green', 'blue', 'red'], band: ['high', 'low', 'mid'] },
    ),
  };
}

async function collect(source: DataSourceOptions): Promise<ColumnBatch[]> {
  const batches: ColumnBatch[] = [];
  for await (const batch of openStream(source.train, 'train')) {
    batches.push(batch);
  }

  return batches;
}

describe('pooled statistics of several sources', () => {
  it('gives the statistics of the rows pooled', () => {
    const x = Float32Array.from({ length: 300 }, (_, i) => (i * 7919) % 101);
    const parts = [x.slice(0, 50), x.slice(50, 170), x.slice(170)].map(
      (part, i) => part.map((v) => v * (i + 1) + 10 * i) as Float32Array,
    );
    const whole = datasetFrom(
      { x: Float32Array.from(parts.flatMap((p) => [...p])) },
      {},
    );
    const named = parts.map((part, i) => ({
      name: `s${i}`,
      schema: datasetFrom({ x: part }, {}).schema,
    }));
    const [pooled] = poolSchemas(
      named,
      [{ column: 'x', field: 'x' }],
      unionVocabularies(named),
    ).columns;
    const [expected] = whole.schema.columns;

    expect(pooled.statistics.count).toBe(300);
    expect(pooled.statistics.mean).toBeCloseTo(expected.statistics.mean!, 9);
    expect(pooled.statistics.std).toBeCloseTo(expected.statistics.std!, 9);
    expect(pooled.statistics.min).toBe(expected.statistics.min);
    expect(pooled.statistics.max).toBe(expected.statistics.max);
  });

  it('plans numeric inputs and regression targets on every source, not the first', () => {
    const a = datasetFrom(
      { x: Float32Array.of(0, 1, 2, 3), y: Float32Array.of(1, 2, 3, 4) },
      {},
    );
    const b = datasetFrom(
      {
        x: Float32Array.of(100, 101, 102, 103),
        y: Float32Array.of(10, 20, 30, 40),
      },
      {},
    );
    const { plan } = planModel(spec(['x'], 'y'), [
      { schema: a.schema, train: a.batches },
      { schema: b.schema, train: b.batches },
    ]);
    const [feature] = plan.features;
    const [task] = plan.tasks;

    expect(feature).toMatchObject({ kind: 'numeric' });
    expect(feature.kind === 'numeric' && feature.mean).toBeCloseTo(51.5, 9);
    // Pooled std of 0..3 and 100..103: sqrt(1.25 + 50^2).
    expect(feature.kind === 'numeric' && feature.std).toBeCloseTo(
      Math.sqrt(1.25 + 2500),
      9,
    );
    expect(task.targetMean).toBeCloseTo(13.75, 9);
  });

  it('keeps one source as it is', () => {
    const a = tabularDataset(50, 3);
    const source = { schema: a.schema, train: a.batches };
    const { plan, sources } = planModel(spec(['x1', 'colour'], 'price'), [
      source,
    ]);

    expect(sources[0]).toBe(source);
    expect(plan.features[0]).toMatchObject({
      mean: a.schema.columns[0].statistics.mean,
      std: a.schema.columns[0].statistics.std,
    });
  });

  it('puts categorical values of every source in one vocabulary and recodes later sources onto it', async () => {
    const { a, b } = reordered(40, 5);
    const first = { name: 'a', schema: a.schema, train: a.batches };
    const { plan, sources } = planModel(
      spec(['x1', 'colour'], 'band', 'multiclass'),
      [first, { name: 'b', schema: b.schema, train: b.batches }],
    );
    const codes = async (source: DataSourceOptions, column: string) =>
      (await collect(source)).flatMap((batch) => [
        ...(batch.columns[column] as Int32Array),
      ]);

    expect(plan.features[1]).toMatchObject({
      vocabulary: ['red', 'green', 'blue'],
    });
    expect(plan.tasks[0].labels).toEqual(['low', 'mid', 'high']);
    expect(sources[0]).toBe(first);
    // Source b holds the same rows as a, each value under another code.
    expect(await codes(sources[1], 'colour')).toEqual(
      await codes(first, 'colour'),
    );
    expect(await codes(sources[1], 'band')).toEqual(await codes(first, 'band'));
  });

  it('keeps the values of a base model, in its order, for inputs and labels it shares', async () => {
    const { a, b } = reordered(40, 5);
    const base = planModel(spec(['x1', 'colour'], 'band', 'multiclass'), [
      { schema: a.schema, train: a.batches },
    ]).plan;
    const { plan, sources } = planModel(
      spec(['x1', 'colour'], 'band', 'multiclass'),
      [{ schema: b.schema, train: b.batches }],
      base,
    );
    const codes = async (source: DataSourceOptions, column: string) =>
      (await collect(source)).flatMap((batch) => [
        ...(batch.columns[column] as Int32Array),
      ]);
    const unchanged = { schema: a.schema, train: a.batches };

    expect(plan.features[1]).toMatchObject({
      vocabulary: ['red', 'green', 'blue'],
    });
    expect(plan.tasks[0].labels).toEqual(['low', 'mid', 'high']);
    expect(await codes(sources[0], 'colour')).toEqual(
      await codes(unchanged, 'colour'),
    );
    expect(await codes(sources[0], 'band')).toEqual(
      await codes(unchanged, 'band'),
    );
  });

  it('adds the values only later sources have after the first source’s', () => {
    const a = datasetFrom(
      { c: Int32Array.of(0, 1), y: Float32Array.of(0, 1) },
      { c: 'categorical' },
      { c: ['x', 'y'] },
    );
    const b = datasetFrom(
      { c: Int32Array.of(0, 1, -1), y: Float32Array.of(0, 1, 2) },
      { c: 'categorical' },
      { c: ['z', 'x'] },
    );
    const { plan } = planModel(spec(['c'], 'y'), [
      { schema: a.schema, train: a.batches },
      { schema: b.schema, train: b.batches },
    ]);

    expect(plan.features[0]).toMatchObject({ vocabulary: ['x', 'y', 'z'] });
  });

  it('pools a boolean column with a whole-number one as numbers', () => {
    const a = datasetFrom(
      { f: Float32Array.of(1, 1, 1, 0), y: Float32Array.of(0, 1, 2, 3) },
      { f: 'boolean' },
    );
    const b = datasetFrom(
      { f: Float32Array.of(0, 0, 0, 0), y: Float32Array.of(0, 1, 2, 3) },
      { f: 'integer' },
    );
    const { plan } = planModel(spec(['f'], 'y'), [
      { schema: a.schema, train: a.batches },
      { schema: b.schema, train: b.batches },
    ]);

    expect(plan.features[0]).toMatchObject({ kind: 'numeric', mean: 0.375 });
  });

  it('refuses an input column one source lacks, or one with two types, naming the field', () => {
    const a = datasetFrom(
      {
        x: Float32Array.of(0, 1),
        c: Int32Array.of(0, 1),
        y: Float32Array.of(0, 1),
      },
      { c: 'categorical' },
      { c: ['p', 'q'] },
    );
    const b = datasetFrom(
      { x: Float32Array.of(0, 1), y: Float32Array.of(0, 1) },
      {},
    );
    const c = datasetFrom(
      {
        x: Float32Array.of(0, 1),
        c: Float32Array.of(0, 1),
        y: Float32Array.of(0, 1),
      },
      {},
    );
    const plan = (features: string[], other: typeof b) => () =>
      planModel(spec(features, 'y'), [
        { name: 'a', schema: a.schema, train: a.batches },
        { name: 'other', schema: other.schema, train: other.batches },
      ]);

    expect(plan(['x', 'c'], b)).toThrow(TrainingConfigError);
    expect(plan(['x', 'c'], b)).toThrow(
      'spec.features[1].column: column "c" is not in source "other"',
    );
    expect(plan(['c'], c)).toThrow(
      'spec.features[0].column: column "c" is categorical in source "a" but numeric in source "other"',
    );
  });
});

describe('training on sources coded differently', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('learns from sources that code inputs and labels in their own orders', async () => {
    const rows = reordered(600, 11);
    const valid = reordered(200, 12);
    const result = await train({
      spec: {
        features: ['x1', 'colour'],
        backbone: { kind: 'mlp', widths: [16] },
        tasks: [
          { name: 'green', kind: 'binary', target: 'green' },
          { name: 'band', kind: 'multiclass', target: 'band' },
        ],
      },
      data: (['a', 'b'] as const).map((name) => ({
        name,
        schema: rows[name].schema,
        train: rows[name].batches,
        validation: valid[name].batches,
      })),
      epochs: 8,
      optimizer: { kind: 'adam', learningRate: 0.02 },
    });
    result.model.dispose();
    const last = result.history.epochs.at(-1)!.validation;

    // With b's own codes read as a's, the same colour code is green in one
    // source and not in the other, and each band label names another band.
    expect(last.green.auc).toBeGreaterThan(0.99);
    expect(last.band.accuracy).toBeGreaterThan(0.85);
  });
});
