import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { selectBackend } from './backend';
import { learningRateAt, Optimizer } from './optimizer';

function minimise(step: (v: tf.Variable, g: tf.Tensor) => void): number[] {
  const v = tf.variable(tf.tensor1d([3, -2]));
  for (let i = 0; i < 5; i++) {
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(v));
    step(v, g);
    g.dispose();
  }
  const values = Array.from(v.dataSync());
  v.dispose();

  return values;
}

describe('optimizer', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('Adam matches tf.train.adam step for step', () => {
    const reference = tf.train.adam(0.1);
    const expected = minimise((v, g) =>
      reference.applyGradients([{ name: v.name, tensor: g }]),
    );
    reference.dispose();
    let ours: Optimizer | undefined;
    const actual = minimise((v, g) => {
      ours ??= new Optimizer({ kind: 'adam', learningRate: 0.1 }, [
        { variable: v, decay: false },
      ]);
      ours.apply([g], 0.1);
    });
    ours?.dispose();

    actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 5));
  });

  it('SGD with momentum matches tf.train.momentum', () => {
    const reference = tf.train.momentum(0.05, 0.9);
    const expected = minimise((v, g) =>
      reference.applyGradients([{ name: v.name, tensor: g }]),
    );
    reference.dispose();
    let ours: Optimizer | undefined;
    const actual = minimise((v, g) => {
      ours ??= new Optimizer({ kind: 'sgd', momentum: 0.9 }, [
        { variable: v, decay: false },
      ]);
      ours.apply([g], 0.05);
    });
    ours?.dispose();

    actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i], 5));
  });

  it('AdamW also decays weights toward zero', () => {
    const run = (kind: 'adam' | 'adamw') => {
      let ours: Optimizer | undefined;
      const values = minimise((v, g) => {
        ours ??= new Optimizer({ kind, weightDecay: 0.5 }, [
          { variable: v, decay: true },
        ]);
        ours.apply([tf.zerosLike(g)], 0.1);
      });
      ours?.dispose();

      return values;
    };

    // Zero gradients: Adam leaves 3 alone; AdamW multiplies by (1 - 0.05) 5 times.
    expect(run('adam')[0]).toBeCloseTo(3, 6);
    expect(run('adamw')[0]).toBeCloseTo(3 * Math.pow(0.95, 5), 5);
  });

  it('schedules warm up, then decay by cosine or steps', () => {
    const cosine = { kind: 'cosine' as const, warmupSteps: 10 };

    expect(learningRateAt(1, cosine, 0, 110)).toBeCloseTo(0.1, 6);
    expect(learningRateAt(1, cosine, 9, 110)).toBeCloseTo(1, 6);
    expect(learningRateAt(1, cosine, 60, 110)).toBeCloseTo(0.5, 6);
    expect(learningRateAt(1, cosine, 110, 110)).toBeCloseTo(0, 6);
    const step = { kind: 'step' as const, stepSize: 10, gamma: 0.5 };
    expect(learningRateAt(1, step, 25, 100)).toBeCloseTo(0.25, 6);
    expect(learningRateAt(1, undefined, 25, 100)).toBe(1);
  });
});
