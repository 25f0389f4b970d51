import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import type { TaskOptions } from './spec';
import { FEATURES, tabularDataset } from './testing/synthetic';
import { train } from './train';

const TASKS: TaskOptions[] = [
  { name: 'price', kind: 'regression', target: 'price' },
  { name: 'buys', kind: 'binary', target: 'buys' },
  { name: 'segment', kind: 'multiclass', target: 'segment' },
  { name: 'tags', kind: 'multilabel', target: ['tagA', 'tagB'] },
];

describe('train', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('learns each head kind on a known function', async () => {
    const data = tabularDataset(1200, 1);
    const validation = tabularDataset(400, 2);
    const result = await train({
      spec: {
        features: FEATURES,
        backbone: { kind: 'mlp', widths: [32, 32] },
        tasks: TASKS,
      },
      data: {
        schema: data.schema,
        train: data.batches,
        validation: validation.batches,
      },
      epochs: 8,
      batchSize: 32,
      optimizer: { kind: 'adam', learningRate: 0.01 },
    });
    const last = result.history.epochs.at(-1)!.validation;
    result.model.dispose();

    expect(result.status).toBe('completed');
    expect(result.backend).toBe('wasm');
    expect(last.price.r2).toBeGreaterThan(0.95);
    expect(last.buys.accuracy).toBeGreaterThan(0.93);
    expect(last.buys.auc).toBeGreaterThan(0.98);
    expect(last.segment.accuracy).toBeGreaterThan(0.85);
    expect(last.tags.microF1).toBeGreaterThan(0.93);
  });

  it('trains a single-task model (one output)', async () => {
    const data = tabularDataset(300, 3);
    const result = await train({
      spec: {
        features: ['x1', 'x2', 'x3'],
        backbone: { kind: 'mlp', widths: [8] },
        tasks: [{ name: 'buys', kind: 'binary', target: 'buys' }],
      },
      data: {
        schema: data.schema,
        train: data.batches,
        validation: data.batches,
      },
      epochs: 5,
      optimizer: { kind: 'adam', learningRate: 0.02 },
    });
    result.model.dispose();

    expect(
      result.history.epochs.at(-1)!.validation.buys.accuracy,
    ).toBeGreaterThan(0.9);
  });

  it('is reproducible from its seed', async () => {
    const data = tabularDataset(200, 4);
    const run = async (seed: number) => {
      const result = await train({
        spec: {
          features: FEATURES,
          backbone: { kind: 'mlp', widths: [8], dropout: 0.3 },
          tasks: [TASKS[0], TASKS[2]],
        },
        data: { schema: data.schema, train: data.batches },
        epochs: 2,
        seed,
        augmentation: { tabular: { noise: 0.1, mixup: 0.2 } },
      });
      result.model.dispose();

      return result.history.steps.map((s) => s.loss);
    };
    const first = await run(7);

    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
  });
});
