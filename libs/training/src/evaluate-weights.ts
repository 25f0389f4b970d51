import * as tf from '@tensorflow/tfjs';

import type { DataSourceOptions } from './data';
import { TrainingConfigError } from './errors';
import { evaluate, type EvaluationResult } from './evaluate';
import { buildModel } from './model';
import { planModel, type BaseStatistics } from './plan';
import { Random } from './random';
import type { ModelSpec } from './spec';

/** Weights by originalName, as float32 values with their shape. */
type Weights = Map<string, { shape: number[]; values: Float32Array }>;

/**
 * Validation metrics of given weights on the sources' validation streams,
 * with the model planned from `spec` and `data` as training would plan it.
 * Every weight of the model must be given, with its shape.
 */
export async function evaluateWeights(options: {
  spec: ModelSpec;
  data: DataSourceOptions[];
  weights: Weights;
  /** The statistics the weights were trained with (see planModel). */
  statistics?: BaseStatistics;
  batchSize?: number;
}): Promise<EvaluationResult | undefined> {
  const { plan, taskSources, sources } = planModel(
    options.spec,
    options.data,
    options.statistics,
  );
  const built = buildModel(plan, new Random(1));
  try {
    for (const weight of built.training.weights) {
      const given = options.weights.get(weight.originalName);
      if (!given || given.shape.join('x') !== weight.shape.join('x')) {
        throw new TrainingConfigError(
          'weights',
          `weight ${weight.originalName} is ` +
            (given ? `of shape [${given.shape.join(',')}]` : 'missing') +
            `; the model needs [${weight.shape.join(',')}].`,
        );
      }
      tf.tidy(() => {
        weight.write(tf.tensor(given.values, given.shape));
      });
    }

    return await evaluate({
      plan,
      model: built,
      sources,
      taskSources,
      batchSize: options.batchSize ?? 256,
    });
  } finally {
    built.training.dispose();
  }
}
