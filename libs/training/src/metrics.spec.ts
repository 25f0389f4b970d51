import { describe, expect, it } from 'vitest';

import { MetricAccumulator, rocAuc } from './metrics';
import type { TaskPlan } from './tasks';

function task(
  kind: TaskPlan['kind'],
  units: number,
  extra: Partial<TaskPlan> = {},
): TaskPlan {
  return {
    name: 't',
    kind,
    columns: ['y'],
    units,
    labels: [],
    targetMean: 0,
    targetStd: 1,
    loss: 'mse',
    huberDelta: 1,
    labelSmoothing: 0,
    topK: 2,
    hidden: [],
    weight: 1,
    ...extra,
  };
}

describe('metrics', () => {
  it('computes RMSE, MAE and R² in target units', () => {
    // Standardised with mean 10, std 2: labels 8, 10, 12; predictions 8, 12, 12.
    const m = new MetricAccumulator(
      task('regression', 1, { targetMean: 10, targetStd: 2 }),
    );
    m.add(
      Float32Array.of(-1, 1, 1),
      Float32Array.of(-1, 0, 1),
      Float32Array.of(1, 1, 1),
    );
    const result = m.compute();

    // errors 0, 2, 0: RMSE sqrt(4/3), MAE 2/3, R² 1 - 4/8 = 0.5
    expect(result.rmse).toBeCloseTo(Math.sqrt(4 / 3), 6);
    expect(result.mae).toBeCloseTo(2 / 3, 6);
    expect(result.r2).toBeCloseTo(0.5, 6);
  });

  it('computes ROC AUC with ties sharing ranks', () => {
    // Pairs (pos, neg): (0.8, 0.1) win, (0.8, 0.4) win, (0.4, 0.1) win,
    // (0.4, 0.4) tie = 0.5: AUC = 3.5 / 4.
    expect(rocAuc([0.8, 0.4, 0.4, 0.1], [1, 1, 0, 0])).toBeCloseTo(0.875, 6);
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNaN();
  });

  it('computes binary accuracy and F1, skipping masked rows', () => {
    const m = new MetricAccumulator(task('binary', 1));
    m.add(
      Float32Array.of(0.9, 0.6, 0.2, 0.1, 0.99),
      Float32Array.of(1, 0, 1, 0, 0),
      Float32Array.of(1, 1, 1, 1, 0),
    );
    const result = m.compute();

    // tp 1, fp 1, fn 1, tn 1: accuracy 0.5, F1 2/(2+1+1) = 0.5
    expect(result.count).toBe(4);
    expect(result.accuracy).toBe(0.5);
    expect(result.f1).toBe(0.5);
  });

  it('computes multiclass accuracy, macro F1 and top-k', () => {
    const m = new MetricAccumulator(task('multiclass', 3));
    m.add(
      Float32Array.of(0.7, 0.2, 0.1, 0.5, 0.3, 0.2, 0.1, 0.3, 0.6),
      Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1),
      Float32Array.of(1, 1, 1),
    );
    const result = m.compute();

    // Row 2 (class 1) is predicted 0 but is second: top-2 = 1.
    // F1: class 0 = 2/(2+1) , class 1 = 0, class 2 = 1; macro = (2/3 + 0 + 1)/3
    expect(result.accuracy).toBeCloseTo(2 / 3, 6);
    expect(result.top2).toBe(1);
    expect(result.macroF1).toBeCloseTo((2 / 3 + 1) / 3, 6);
  });

  it('computes multilabel micro and macro F1 over present labels', () => {
    const m = new MetricAccumulator(task('multilabel', 2));
    m.add(
      Float32Array.of(0.9, 0.9, 0.1, 0.9),
      Float32Array.of(1, 0, 1, 1),
      Float32Array.of(1, 0, 1, 1),
    );
    const result = m.compute();

    // label 0: tp 1, fn 1 -> 2/3; label 1 (one present): tp 1 -> 1.
    // micro: tp 2, fn 1 -> 4/5
    expect(result.microF1).toBeCloseTo(0.8, 6);
    expect(result.macroF1).toBeCloseTo((2 / 3 + 1) / 2, 6);
  });
});
