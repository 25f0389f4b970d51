import * as tf from '@tensorflow/tfjs';

import { openStream, rowBatches, type DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import { taskLoss } from './losses';
import { MetricAccumulator, PRIMARY_METRIC, type TaskMetrics } from './metrics';
import { inputTensors, type BuiltModel, type ModelPlan } from './model';
import { encodeRows } from './preprocessing';
import { Random } from './random';
import { encodeLabels, type TaskPlan } from './tasks';

export interface EvaluationResult {
  /** Per task, for tasks whose labels some validation stream carries. */
  metrics: Record<string, TaskMetrics>;
  combinedScore: number;
}

/** Applies a task's output activation to logits. */
export function activate(task: TaskPlan, logits: tf.Tensor): tf.Tensor {
  switch (task.kind) {
    case 'regression':
      return logits;
    case 'multiclass':
      return tf.softmax(logits);
    default:
      return tf.sigmoid(logits);
  }
}

/**
 * Runs the model (inference mode) over each source's validation stream and
 * computes every task's metrics on the sources that carry its labels.
 */
export async function evaluate(options: {
  plan: ModelPlan;
  model: BuiltModel;
  sources: DataSourceOptions[];
  /** taskSources[t][s]: whether source s has labels for task t. */
  taskSources: boolean[][];
  batchSize: number;
  signal?: AbortSignal;
}): Promise<EvaluationResult | undefined> {
  const { plan, model, sources, taskSources } = options;
  const accumulators = plan.tasks.map((task) => new MetricAccumulator(task));
  const covered = plan.tasks.map(() => false);
  for (let s = 0; s < sources.length; s++) {
    const stream = sources[s].validation;
    if (!stream) {
      continue;
    }
    const tasks = plan.tasks.map((_, t) => t).filter((t) => taskSources[t][s]);
    tasks.forEach((t) => (covered[t] = true));
    const batches = rowBatches(
      openStream(stream, `data[${s}].validation`),
      { batchSize: options.batchSize, shuffleBuffer: 0, prefetch: 2 },
      new Random(0),
    );
    let seen = 0;
    for await (const rows of batches) {
      if (options.signal?.aborted) {
        return undefined;
      }
      seen += rows.length;
      const features = encodeRows(plan.features, plan.layout, rows);
      const inputs = inputTensors(plan.layout, features);
      const logits = model.training.predict(inputs, {
        batchSize: rows.length,
      }) as tf.Tensor | tf.Tensor[];
      const outputs = Array.isArray(logits) ? logits : [logits];
      for (const t of tasks) {
        const task = plan.tasks[t];
        const labels = encodeLabels(task, rows);
        // Typed arrays are read outside tidy: tidy walks whatever its
        // callback returns, element by element.
        const tensors = tf.tidy(() => {
          const y = tf.tensor2d(labels.values, [rows.length, task.units]);
          const mask = tf.tensor2d(labels.mask, [
            rows.length,
            labels.mask.length / rows.length,
          ]);

          return [
            activate(task, outputs[t]),
            taskLoss(task, outputs[t], y, mask),
            tf.sum(mask),
          ];
        });
        const [predictions, loss, count] = tensors.map((x) => x.dataSync());
        tf.dispose(tensors);
        accumulators[t].add(predictions, labels.values, labels.mask);
        accumulators[t].addLoss(loss[0], count[0]);
      }
      tf.dispose([...inputs, ...outputs]);
    }
    if (seen === 0) {
      throw new TrainingConfigError(
        `data[${s}].validation`,
        'the validation stream yielded no rows; pass a function that ' +
          'returns a fresh stream for every epoch.',
      );
    }
  }
  if (!covered.some(Boolean)) {
    return undefined;
  }
  const metrics: Record<string, TaskMetrics> = {};
  const primaries: number[] = [];
  plan.tasks.forEach((task, t) => {
    if (!covered[t]) {
      return;
    }
    metrics[task.name] = accumulators[t].compute();
    const primary = metrics[task.name][PRIMARY_METRIC[task.kind]];
    if (primary !== undefined && Number.isFinite(primary)) {
      primaries.push(primary);
    }
  });

  return {
    metrics,
    combinedScore: primaries.length
      ? primaries.reduce((a, b) => a + b, 0) / primaries.length
      : NaN,
  };
}
