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

const METRICS: Record<string, string[]> = {
  regression: ['loss', 'rmse', 'mae', 'r2'],
  binary: ['loss', 'accuracy', 'f1', 'auc'],
  multiclass: ['loss', 'accuracy', 'macroF1'],
  multilabel: ['loss', 'microF1', 'macroF1'],
};

/** Checks an early-stopping monitor before training starts. */
export function validateMonitor(
  monitor: string | undefined,
  plan: ModelPlan,
): void {
  if (monitor === undefined || monitor === 'combined' || monitor === 'loss') {
    return;
  }
  const [name, metric] = monitor.split('.');
  const task = plan.tasks.find((t) => t.name === name);
  const valid = task
    ? [
        ...METRICS[task.kind],
        ...(task.kind === 'multiclass' ? [`top${task.topK}`] : []),
      ]
    : [];
  if (!task || !valid.includes(metric)) {
    throw new TrainingConfigError(
      'earlyStopping.monitor',
      task
        ? `task "${name}" has no metric "${metric}"; use one of ${valid.join(', ')}.`
        : `use combined, loss or <task>.<metric> with one of the tasks ` +
            `${plan.tasks.map((t) => t.name).join(', ')}.`,
    );
  }
}
