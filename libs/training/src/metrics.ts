import type { TaskPlan } from './tasks';

/** Metric name to value, for one task. */
export type TaskMetrics = Record<string, number>;

/**
 * The metric each kind contributes to the combined score (all higher is
 * better): R² for regression, ROC AUC for binary, accuracy for multiclass,
 * micro F1 for multilabel.
 */
export const PRIMARY_METRIC: Record<TaskPlan['kind'], string> = {
  regression: 'r2',
  binary: 'auc',
  multiclass: 'accuracy',
  multilabel: 'microF1',
};

/**
 * Collects a task's predictions and labels over an evaluation pass; only rows
 * (or labels) whose mask is 1 are kept.
 */
export class MetricAccumulator {
  private readonly predictions: number[] = [];
  private readonly labels: number[] = [];
  private readonly masks: number[] = [];
  private lossSum = 0;
  private lossCount = 0;

  constructor(readonly task: TaskPlan) {}

  /** `predictions` are the inference outputs (probabilities or values). */
  add(
    predictions: Float32Array | Int32Array | Uint8Array,
    labels: Float32Array,
    mask: Float32Array,
  ): void {
    const units = this.task.units;
    const rows = mask.length / (this.task.kind === 'multilabel' ? units : 1);
    for (let row = 0; row < rows; row++) {
      if (this.task.kind === 'multilabel') {
        for (let u = 0; u < units; u++) {
          this.predictions.push(predictions[row * units + u]);
          this.labels.push(labels[row * units + u]);
          this.masks.push(mask[row * units + u]);
        }
      } else if (mask[row] > 0) {
        for (let u = 0; u < units; u++) {
          this.predictions.push(predictions[row * units + u]);
          this.labels.push(labels[row * units + u]);
        }
      }
    }
  }

  addLoss(loss: number, count: number): void {
    this.lossSum += loss * count;
    this.lossCount += count;
  }

  compute(): TaskMetrics {
    const loss = this.lossCount > 0 ? this.lossSum / this.lossCount : NaN;
    const count =
      this.task.kind === 'multilabel'
        ? this.masks.filter((m) => m > 0).length
        : this.predictions.length / this.task.units;
    const base = { loss, count };
    if (count === 0) {
      return base;
    }
    switch (this.task.kind) {
      case 'regression':
        return {
          ...base,
          ...regression(this.task, this.predictions, this.labels),
        };
      case 'binary':
        return { ...base, ...binary(this.predictions, this.labels) };
      case 'multiclass':
        return {
          ...base,
          ...multiclass(this.task, this.predictions, this.labels),
        };
      case 'multilabel':
        return {
          ...base,
          ...multilabel(this.task, this.predictions, this.labels, this.masks),
        };
    }
  }
}

function regression(
  task: TaskPlan,
  predictions: number[],
  labels: number[],
): TaskMetrics {
  const n = labels.length;
  const y = labels.map((v) => v * task.targetStd + task.targetMean);
  const p = predictions.map((v) => v * task.targetStd + task.targetMean);
  const mean = y.reduce((a, b) => a + b, 0) / n;
  let squared = 0;
  let absolute = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    squared += (p[i] - y[i]) ** 2;
    absolute += Math.abs(p[i] - y[i]);
    total += (y[i] - mean) ** 2;
  }

  return {
    rmse: Math.sqrt(squared / n),
    mae: absolute / n,
    r2: total > 0 ? 1 - squared / total : 0,
  };
}

function f1(tp: number, fp: number, fn: number): number {
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** ROC AUC by the rank-sum formula, ties sharing their average rank. */
export function rocAuc(scores: number[], labels: number[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const positives = labels.filter((l) => l > 0.5).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) {
    return NaN;
  }
  let rankSum = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) {
      j++;
    }
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]] > 0.5) {
        rankSum += rank;
      }
    }
    i = j + 1;
  }

  return (
    (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives)
  );
}

function binary(predictions: number[], labels: number[]): TaskMetrics {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let correct = 0;
  predictions.forEach((p, i) => {
    const predicted = p >= 0.5;
    const actual = labels[i] > 0.5;
    correct += Number(predicted === actual);
    tp += Number(predicted && actual);
    fp += Number(predicted && !actual);
    fn += Number(!predicted && actual);
  });

  return {
    accuracy: correct / labels.length,
    f1: f1(tp, fp, fn),
    auc: rocAuc(predictions, labels),
  };
}

function multiclass(
  task: TaskPlan,
  predictions: number[],
  labels: number[],
): TaskMetrics {
  const units = task.units;
  const rows = labels.length / units;
  const k = Math.min(task.topK, units);
  const tp = new Array<number>(units).fill(0);
  const fp = new Array<number>(units).fill(0);
  const fn = new Array<number>(units).fill(0);
  let correct = 0;
  let inTopK = 0;
  for (let row = 0; row < rows; row++) {
    const p = predictions.slice(row * units, (row + 1) * units);
    const actual = labels.slice(row * units, (row + 1) * units).indexOf(1);
    const ranked = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    const predicted = ranked[0];
    correct += Number(predicted === actual);
    inTopK += Number(ranked.slice(0, k).includes(actual));
    if (predicted === actual) {
      tp[actual]++;
    } else {
      fp[predicted]++;
      fn[actual]++;
    }
  }
  const present = tp.map((_, c) => c).filter((c) => tp[c] + fp[c] + fn[c] > 0);
  const macroF1 =
    present.reduce((sum, c) => sum + f1(tp[c], fp[c], fn[c]), 0) /
    Math.max(present.length, 1);

  return {
    accuracy: correct / rows,
    macroF1,
    [`top${k}`]: inTopK / rows,
  };
}

function multilabel(
  task: TaskPlan,
  predictions: number[],
  labels: number[],
  masks: number[],
): TaskMetrics {
  const units = task.units;
  const tp = new Array<number>(units).fill(0);
  const fp = new Array<number>(units).fill(0);
  const fn = new Array<number>(units).fill(0);
  predictions.forEach((p, i) => {
    if (masks[i] === 0) {
      return;
    }
    const u = i % units;
    const predicted = p >= 0.5;
    const actual = labels[i] > 0.5;
    tp[u] += Number(predicted && actual);
    fp[u] += Number(predicted && !actual);
    fn[u] += Number(!predicted && actual);
  });
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

  return {
    microF1: f1(sum(tp), sum(fp), sum(fn)),
    macroF1: sum(tp.map((_, u) => f1(tp[u], fp[u], fn[u]))) / units,
  };
}
