import type { ColumnBatch } from '#libs/datasets';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { epochBatches, prefetch, rowBatches } from './data';
import { Random } from './random';
import { datasetFrom, FEATURES, tabularDataset } from './testing/synthetic';
import { train } from './train';

function numbered(rows: number, per: number) {
  const id = Float32Array.from({ length: rows }, (_, i) => i);

  return datasetFrom({ id }, {}, {}, per);
}

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of source) {
    items.push(item);
  }

  return items;
}

const ids = (rows: { batch: ColumnBatch; index: number }[]) =>
  rows.map((r) => r.batch.columns.id[r.index]);

describe('data streaming', () => {
  it('shuffles through a bounded buffer and yields every row once', async () => {
    const data = numbered(100, 7);
    const batches = await collect(
      rowBatches(
        data.batches(),
        { batchSize: 16, shuffleBuffer: 20, prefetch: 2 },
        new Random(1),
      ),
    );
    const order = batches.flatMap(ids);

    expect(batches.map((b) => b.length)).toEqual([16, 16, 16, 16, 16, 16, 4]);
    expect([...order].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i),
    );
    expect(order).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    // With a buffer of 20 the first emitted row is one of the first 21.
    expect(order[0]).toBeLessThanOrEqual(20);
  });

  it('keeps the stream order when the buffer is 0', async () => {
    const data = numbered(10, 3);
    const order = (
      await collect(
        rowBatches(
          data.batches(),
          { batchSize: 4, shuffleBuffer: 0, prefetch: 1 },
          new Random(1),
        ),
      )
    ).flatMap(ids);

    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('prefetches ahead of the consumer', async () => {
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 5; i++) {
        produced++;
        yield i;
      }
    }
    const iterator = prefetch(source(), 3)[Symbol.asyncIterator]();
    await iterator.next();
    await new Promise((resolve) => setTimeout(resolve, 0));

    expect(produced).toBeGreaterThanOrEqual(3);
    await iterator.return(undefined);
  });

  it('round-robin alternates sources; proportional follows row counts', async () => {
    const big = numbered(400, 50);
    const small = numbered(100, 50);
    const sources = [
      { schema: big.schema, train: big.batches },
      { schema: small.schema, train: small.batches },
    ];
    const options = { batchSize: 10, shuffleBuffer: 0, prefetch: 1 };
    const robin = await collect(
      epochBatches(sources, options, { kind: 'round-robin' }, new Random(1)),
    );
    const proportional = await collect(
      epochBatches(sources, options, { kind: 'proportional' }, new Random(1)),
    );
    const tempered = await collect(
      epochBatches(
        sources,
        options,
        { kind: 'temperature', temperature: 100 },
        new Random(1),
      ),
    );
    const share = (list: { source: number }[]) =>
      list.filter((b) => b.source === 1).length / list.length;

    // 40 + 10 batches of 10 rows make an epoch of 50 steps.
    expect(robin).toHaveLength(50);
    expect(robin.slice(0, 4).map((b) => b.source)).toEqual([0, 1, 0, 1]);
    expect(share(proportional)).toBeGreaterThan(0.1);
    expect(share(proportional)).toBeLessThan(0.3);
    // A high temperature pulls the mix toward half and half.
    expect(share(tempered)).toBeGreaterThan(0.35);
  });
});

describe('tasks on several datasets', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('trains each task on the source that carries its labels', async () => {
    const full = tabularDataset(800, 41);
    const { x1, x2, x3, colour, price, segment } = full.columns;
    const vocabularies = {
      colour: ['red', 'green', 'blue'],
      segment: ['a', 'b', 'c'],
    };
    const pricing = datasetFrom(
      { x1, x2, x3, colour, price },
      { colour: 'categorical' },
      vocabularies,
    );
    const segments = datasetFrom(
      {
        x1: x1.slice(0, 300),
        x2: x2.slice(0, 300),
        x3: x3.slice(0, 300),
        colour: colour.slice(0, 300),
        segment: segment.slice(0, 300),
      },
      { colour: 'categorical', segment: 'categorical' },
      vocabularies,
    );
    const validation = tabularDataset(200, 42);
    const result = await train({
      spec: {
        features: FEATURES,
        backbone: { kind: 'mlp', widths: [32] },
        tasks: [
          { name: 'price', kind: 'regression', target: 'price' },
          { name: 'segment', kind: 'multiclass', target: 'segment' },
        ],
      },
      data: [
        {
          name: 'pricing',
          schema: pricing.schema,
          train: pricing.batches,
          validation: validation.batches,
        },
        { name: 'segments', schema: segments.schema, train: segments.batches },
      ],
      sourceSchedule: { kind: 'temperature', temperature: 2 },
      epochs: 8,
      optimizer: { kind: 'adam', learningRate: 0.01 },
      balancing: { strategy: 'uncertainty' },
    });
    result.model.dispose();
    const last = result.history.epochs.at(-1)!.validation;

    expect(last.price.r2).toBeGreaterThan(0.9);
    // segment labels live only in the second source, which has no
    // validation stream, so it has no validation metrics.
    expect(last.segment).toBeUndefined();
    expect(result.history.epochs.at(-1)!.trainLoss.segment).toBeLessThan(0.4);
  });
});
