import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { TrainingDivergedError } from './errors';
import { taskLoss } from './losses';
import { planTask } from './tasks';
import { datasetFrom, FEATURES, tabularDataset } from './testing/synthetic';
import { train } from './train';
import type { TrainOptions } from './train-options';

const data = tabularDataset(320, 11);

function options(extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    spec: {
      features: FEATURES,
      backbone: { kind: 'mlp', widths: [16] },
      tasks: [
        { name: 'price', kind: 'regression', target: 'price' },
        { name: 'buys', kind: 'binary', target: 'buys' },
      ],
    },
    data: { schema: data.schema, train: data.batches },
    epochs: 3,
    batchSize: 32,
    shuffleBuffer: 0,
    ...extra,
  };
}

describe('stopping', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('stops on an infinite loss, naming the task and step', async () => {
    const columns = { ...data.columns, price: data.columns.price.slice() };
    columns.price[100] = Infinity;
    const broken = datasetFrom(
      columns,
      { colour: 'categorical', segment: 'categorical' },
      { colour: ['red', 'green', 'blue'], segment: ['a', 'b', 'c'] },
    );
    const before = tf.memory().numTensors;
    const run = train(
      options({ data: { schema: data.schema, train: broken.batches } }),
    );

    // Row 100 is in the fourth batch of 32 (step 3) with shuffling off.
    await expect(run).rejects.toBeInstanceOf(TrainingDivergedError);
    await expect(run).rejects.toMatchObject({ task: 'price', step: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops within one batch when the signal aborts', async () => {
    const controller = new AbortController();
    const result = await train(
      options({
        signal: controller.signal,
        onBatch: ({ step }) => {
          if (step === 5) {
            controller.abort();
          }
        },
      }),
    );
    result.model.dispose();

    expect(result.status).toBe('cancelled');
    expect(result.history.steps).toHaveLength(6);
    expect(result.checkpoint).toBeNull();
  });

  it('clips the global gradient norm of a step', async () => {
    const weightsAfter = async (steps: number) => {
      const controller = new AbortController();
      if (steps === 0) {
        controller.abort();
      }
      const result = await train(
        options({
          optimizer: { kind: 'sgd', learningRate: 1, momentum: 0 },
          clipNorm: 0.001,
          signal: controller.signal,
          onBatch: ({ step }) => {
            if (step + 1 === steps) {
              controller.abort();
            }
          },
        }),
      );
      const values = result.model.training.weights.flatMap((w) =>
        Array.from(w.read().dataSync()),
      );
      result.model.dispose();

      return values;
    };
    const before = await weightsAfter(0);
    const after = await weightsAfter(1);
    const moved = Math.sqrt(
      before.reduce((sum, v, i) => sum + (v - after[i]) ** 2, 0),
    );

    // With learning rate 1 and no momentum the update is the clipped gradient.
    expect(moved).toBeGreaterThan(0.0009);
    expect(moved).toBeLessThanOrEqual(0.001 + 1e-6);
  });

  it('stops early when the monitored metric stops improving', async () => {
    const validation = tabularDataset(64, 12);
    const result = await train(
      options({
        data: {
          schema: data.schema,
          train: data.batches,
          validation: validation.batches,
        },
        epochs: 40,
        optimizer: { kind: 'sgd', learningRate: 1e-9 },
        earlyStopping: { monitor: 'price.rmse', patience: 2, minDelta: 0.01 },
      }),
    );
    result.model.dispose();

    // Epoch 0 sets the best; epochs 1 and 2 do not improve by 0.01.
    expect(result.status).toBe('early-stopped');
    expect(result.history.epochs).toHaveLength(3);
    expect(result.best?.epoch).toBe(0);
  });
});

describe('masked labels', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('a masked row does not change the loss, whatever its label', () => {
    const task = planTask(
      { name: 'price', kind: 'regression', target: 'price' },
      data.schema,
      'task',
    );
    const [withGarbage, withoutRow] = tf.tidy(() => {
      const logits = tf.tensor2d([[0.5], [1], [3]]);
      const mask = tf.tensor2d([[1], [1], [0]]);

      return [
        taskLoss(task, logits, tf.tensor2d([[1], [2], [1e6]]), mask),
        taskLoss(
          task,
          logits.slice([0, 0], [2, 1]),
          tf.tensor2d([[1], [2]]),
          tf.tensor2d([[1], [1]]),
        ),
      ].map((t) => t.dataSync()[0]);
    });

    // ((0.5 - 1)^2 + (1 - 2)^2) / 2 = 0.625
    expect(withGarbage).toBeCloseTo(0.625, 6);
    expect(withoutRow).toBeCloseTo(0.625, 6);
  });

  it('learns from the labelled half when the other half is missing', async () => {
    const price = data.columns.price.slice();
    const segment = new Int32Array(data.columns.segment as Int32Array);
    for (let i = 0; i < price.length; i += 2) {
      price[i] = NaN;
      segment[i + 1] = -1;
    }
    const half = datasetFrom(
      { ...data.columns, price, segment },
      { colour: 'categorical', segment: 'categorical', buys: 'boolean' },
      { colour: ['red', 'green', 'blue'], segment: ['a', 'b', 'c'] },
    );
    const validation = tabularDataset(200, 13);
    const result = await train(
      options({
        spec: {
          ...options().spec,
          tasks: [
            { name: 'price', kind: 'regression', target: 'price' },
            { name: 'segment', kind: 'multiclass', target: 'segment' },
          ],
        },
        data: {
          schema: half.schema,
          train: half.batches,
          validation: validation.batches,
        },
        epochs: 10,
        shuffleBuffer: 320,
        optimizer: { kind: 'adam', learningRate: 0.01 },
      }),
    );
    result.model.dispose();
    const last = result.history.epochs.at(-1)!;

    expect(result.history.steps.every((s) => Number.isFinite(s.loss))).toBe(
      true,
    );
    expect(last.validation.price.r2).toBeGreaterThan(0.9);
    expect(last.validation.segment.accuracy).toBeGreaterThan(0.8);
  });
});
