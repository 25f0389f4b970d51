import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { FEATURES, tabularDataset } from './testing/synthetic';
import { train, type TrainResult } from './train';
import type { TrainOptions } from './train-options';

const data = tabularDataset(300, 5);
const validation = tabularDataset(100, 6);

function options(extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    spec: {
      features: FEATURES,
      backbone: {
        kind: 'mlp',
        widths: [16, 16],
        dropout: 0.2,
        batchNorm: true,
        residual: true,
      },
      tasks: [
        { name: 'price', kind: 'regression', target: 'price' },
        { name: 'segment', kind: 'multiclass', target: 'segment' },
      ],
    },
    data: {
      schema: data.schema,
      train: data.batches,
      validation: validation.batches,
    },
    epochs: 4,
    batchSize: 32,
    shuffleBuffer: 100,
    optimizer: { kind: 'adamw', learningRate: 0.01 },
    schedule: { kind: 'cosine', warmupSteps: 5 },
    balancing: { strategy: 'uncertainty' },
    augmentation: { tabular: { noise: 0.05, featureDropout: 0.1 } },
    ...extra,
  };
}

function weightsOf(result: TrainResult): Float32Array[] {
  return result.model.training.weights.map(
    (w) => w.read().dataSync() as Float32Array,
  );
}

describe('checkpoint and resume', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('a run stopped after epoch 2 and resumed ends like an uninterrupted one', async () => {
    const whole = await train(options());
    const controller = new AbortController();
    const stopped = await train(
      options({
        signal: controller.signal,
        onEpoch: ({ epoch }) => {
          if (epoch === 1) {
            controller.abort();
          }
        },
      }),
    );
    stopped.model.dispose();
    const checkpoint = stopped.checkpoint!;
    // The checkpoint survives a trip through JSON and bytes.
    const stored = {
      manifest: JSON.parse(JSON.stringify(checkpoint.manifest)),
      data: new Uint8Array(checkpoint.data),
    };
    // The spec may come back from storage with its keys in another order.
    const reordered = options({ resumeFrom: stored });
    reordered.spec = {
      tasks: reordered.spec.tasks,
      backbone: reordered.spec.backbone,
      features: reordered.spec.features,
    };
    const resumed = await train(reordered);

    expect(stopped.status).toBe('cancelled');
    expect(checkpoint.manifest.epoch).toBe(2);
    expect(resumed.history.epochs).toHaveLength(4);
    const expected = weightsOf(whole);
    weightsOf(resumed).forEach((values, i) => {
      expect(values.length).toBe(expected[i].length);
      values.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 5));
    });
    const final = (r: TrainResult) => r.history.epochs.at(-1)!.validation;
    expect(final(resumed).price.rmse).toBeCloseTo(final(whole).price.rmse, 5);
    expect(final(resumed).segment.accuracy).toBe(final(whole).segment.accuracy);
    whole.model.dispose();
    resumed.model.dispose();
  });

  it('refuses a checkpoint made for another spec', async () => {
    const controller = new AbortController();
    const first = await train(
      options({
        epochs: 1,
        signal: controller.signal,
      }),
    );
    first.model.dispose();
    const other = options({ resumeFrom: first.checkpoint! });
    other.spec = { ...other.spec, backbone: { kind: 'mlp', widths: [8] } };

    await expect(train(other)).rejects.toMatchObject({
      name: 'TrainingConfigError',
      field: 'resumeFrom',
    });
  });

  it.each(['pcgrad', 'uncertainty'] as const)(
    'keeps tf.memory().numTensors flat over 50 epochs (%s)',
    async (strategy) => {
      const small = tabularDataset(64, 9);
      const before = tf.memory().numTensors;
      const counts: number[] = [];
      const result = await train(
        options({
          data: {
            schema: small.schema,
            train: small.batches,
            validation: small.batches,
          },
          epochs: 50,
          recordSteps: false,
          balancing: { strategy },
          onEpoch: () => {
            counts.push(tf.memory().numTensors);
          },
        }),
      );
      result.model.dispose();

      expect(counts).toHaveLength(50);
      expect(counts[49]).toBe(counts[1]);
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
