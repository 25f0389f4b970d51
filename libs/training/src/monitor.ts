import type { EvaluationResult } from './evaluate';
import { TrainingConfigError } from './errors';
import type { ModelPlan } from './model';

const LOWER_IS_BETTER = new Set(['loss', 'rmse', 'mae']);

/** The early-stopping monitor's value for an epoch, and its direction. */
export function monitorValue(
  monitor: string | undefined,
  plan: ModelPlan,
  evaluation: EvaluationResult | undefined,
  trainLosses: number[],
): { value: number; higherIsBetter: boolean } {
  const name = monitor ?? (evaluation ? 'combined' : 'loss');
  if (name === 'combined') {
    if (!evaluation) {
      throw new TrainingConfigError(
        'earlyStopping.monitor',
        '"combined" needs validation data; monitor "loss" instead.',
      );
    }

    return { value: evaluation.combinedScore, higherIsBetter: true };
  }
  if (name === 'loss') {
    const losses = evaluation
      ? plan.tasks.map((task) => evaluation.metrics[task.name]?.loss ?? 0)
      : trainLosses;

    return {
      value: losses.reduce((a, b) => a + b, 0) / Math.max(losses.length, 1),
      higherIsBetter: false,
    };
  }
  const [task, metric] = name.split('.');
  const value = evaluation?.metrics[task]?.[metric];
  if (value === undefined) {
    throw new TrainingConfigError(
      'earlyStopping.monitor',
      `"${name}" is not a validation metric; use combined, loss or ` +
        '<task>.<metric> (for example price.rmse) with validation data.',
    );
  }

  return { value, higherIsBetter: !LOWER_IS_BETTER.has(metric) };
}
