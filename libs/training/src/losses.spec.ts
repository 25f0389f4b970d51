import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { augment } from './augmentation';
import { selectBackend } from './backend';
import { taskLoss } from './losses';
import { inputLayout, type FeaturePlan } from './preprocessing';
import { Random } from './random';
import type { TaskPlan } from './tasks';

const base: TaskPlan = {
  name: 't',
  kind: 'binary',
  columns: ['y'],
  units: 1,
  labels: ['0', '1'],
  targetMean: 0,
  targetStd: 1,
  loss: 'mse',
  huberDelta: 1,
  labelSmoothing: 0,
  topK: 3,
  hidden: [],
  weight: 1,
};

function loss(task: TaskPlan, logits: number[][], labels: number[][]): number {
  return tf.tidy(
    () =>
      taskLoss(
        task,
        tf.tensor2d(logits),
        tf.tensor2d(labels),
        tf.ones([logits.length, 1]),
      ).dataSync()[0],
  );
}

describe('losses', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('binary cross-entropy weighs classes by their class weight', () => {
    // logit 0: loss ln 2 per row; weights 1 (negative) and 3 (positive).
    const plain = loss(base, [[0], [0]], [[1], [0]]);
    const weighted = loss(
      { ...base, classWeights: [1, 3] },
      [[0], [0]],
      [[1], [0]],
    );

    expect(plain).toBeCloseTo(Math.LN2, 5);
    expect(weighted).toBeCloseTo((3 * Math.LN2 + Math.LN2) / 2, 5);
  });

  it('multiclass label smoothing spreads the target', () => {
    const task = {
      ...base,
      kind: 'multiclass' as const,
      units: 2,
      labels: ['a', 'b'],
    };
    // Equal logits: -log(0.5) whatever the smoothing.
    expect(
      loss({ ...task, labelSmoothing: 0.2 }, [[0, 0]], [[1, 0]]),
    ).toBeCloseTo(Math.LN2, 5);
    // Confident and right: smoothing adds the cost of the 0.1 mass on b.
    const sharp = loss(task, [[10, 0]], [[1, 0]]);
    const smoothed = loss(
      { ...task, labelSmoothing: 0.2 },
      [[10, 0]],
      [[1, 0]],
    );
    expect(smoothed).toBeGreaterThan(sharp + 0.9);
  });

  it('huber is quadratic inside delta and linear outside', () => {
    const task = {
      ...base,
      kind: 'regression' as const,
      loss: 'huber' as const,
    };

    expect(loss(task, [[0.5]], [[0]])).toBeCloseTo(0.125, 6);
    // |d| = 3 > 1: 1 * (3 - 0.5) = 2.5
    expect(loss(task, [[3]], [[0]])).toBeCloseTo(2.5, 6);
  });
});

describe('tabular augmentation', () => {
  const plans: FeaturePlan[] = [
    { kind: 'numeric', column: 'a', mean: 0, std: 1, missingIndicator: true },
    {
      kind: 'categorical',
      column: 'c',
      vocabulary: ['x', 'y'],
      encoding: 'onehot',
      embeddingDim: 2,
    },
  ];
  const layout = inputLayout(plans);
  const rows = () => ({
    size: 2,
    embeddings: [],
    // row 0: a = 1, c = x; row 1: a = -1, c = y
    tabular: Float32Array.of(1, 0, 1, 0, 0, -1, 0, 0, 1, 0),
  });

  it('feature dropout marks hidden features as missing', () => {
    const features = rows();
    augment(
      { tabular: { featureDropout: 1 } },
      plans,
      layout,
      features,
      [],
      new Random(1),
    );

    expect(Array.from(features.tabular)).toEqual([
      0, 1, 0, 0, 1, 0, 1, 0, 0, 1,
    ]);
  });

  it('mixup blends rows and labels and keeps a label only where both have it', () => {
    const features = rows();
    const labels = [
      { values: Float32Array.of(1, 0), mask: Float32Array.of(1, 0) },
    ];
    augment(
      { tabular: { mixup: 0.4 } },
      plans,
      layout,
      features,
      labels,
      new Random(3),
    );
    const a0 = features.tabular[0];
    const mixed = a0 !== 1;
    // a mixes 1 and -1 with the same lambda as the labels mix 1 and 0.
    const lambda = mixed ? (a0 + 1) / 2 : 1;

    expect(labels[0].values[0]).toBeCloseTo(mixed ? lambda : 1, 5);
    expect(labels[0].mask[0]).toBe(mixed ? 0 : 1);
  });

  it('noise moves present numeric values only', () => {
    const features = rows();
    features.tabular[5] = 0;
    features.tabular[6] = 1;
    augment(
      { tabular: { noise: 0.5 } },
      plans,
      layout,
      features,
      [],
      new Random(5),
    );

    expect(features.tabular[0]).not.toBe(1);
    expect(features.tabular[5]).toBe(0);
    expect(Array.from(features.tabular.slice(2, 5))).toEqual([1, 0, 0]);
  });
});
