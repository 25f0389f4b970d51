import type { AugmentationOptions } from './augmentation';
import { validateAugmentation } from './augmentation';
import { validateBalancing, type BalancingOptions } from './balancing';
import type { Checkpoint } from './checkpoint';
import type { DataSourceOptions, SourceScheduleOptions } from './data';
import { TrainingConfigError } from './errors';
import {
  validateFineTune,
  type BaseWeights,
  type FreezePolicy,
  type GroupLearningRates,
} from './finetune';
import type { EpochRecord, StepRecord } from './history';
import { validateBackbone } from './model';
import {
  Optimizer,
  validateSchedule,
  type OptimizerOptions,
  type ScheduleOptions,
} from './optimizer';
import type { ModelSpec } from './spec';

export interface EarlyStoppingOptions {
  /**
   * What to watch: `combined` (mean of each task's primary validation
   * metric, higher is better), `loss` (mean validation task loss, or the
   * training loss without validation data), or `<task>.<metric>` such as
   * `price.rmse`. Default `combined` with validation data, else `loss`.
   */
  monitor?: string;
  /** Epochs without improvement before stopping. Default: never stop. */
  patience?: number;
  /** Smallest change that counts as improvement. Default 0. */
  minDelta?: number;
}

export interface BatchProgress {
  epoch: number;
  /** Global step (0-based). */
  step: number;
  /** Step within the epoch (0-based). */
  batch: number;
  record: StepRecord;
}

export interface EpochProgress {
  epoch: number;
  record: EpochRecord;
  /** Whether this epoch is the best so far by the monitor. */
  improved: boolean;
  /** The state after this epoch, for storage; resume with `resumeFrom`. */
  checkpoint: Checkpoint;
}

export interface TrainOptions {
  /** Features, backbone and tasks. */
  spec: ModelSpec;
  /** One data source, or several sharing the input features. */
  data: DataSourceOptions | DataSourceOptions[];
  /** Total epochs of the run (a resumed run counts those already done). */
  epochs: number;
  /** Rows per step. Default 32. */
  batchSize?: number;
  /** Default `{ kind: 'adam', learningRate: 0.001 }`. */
  optimizer?: OptimizerOptions;
  /** Learning-rate schedule over global steps. Default constant. */
  schedule?: ScheduleOptions;
  /** Rescale gradients whose global norm exceeds this. Default off. */
  clipNorm?: number;
  /** Clip each gradient element to +-clipValue. Default off. */
  clipValue?: number;
  /** Default `{ strategy: 'equal' }`. */
  balancing?: BalancingOptions;
  /** How steps are shared between several sources. */
  sourceSchedule?: SourceScheduleOptions;
  earlyStopping?: EarlyStoppingOptions;
  /** Put the best epoch's weights back into the model at the end. Default
   * true. */
  restoreBest?: boolean;
  /** Seed of weights, dropout, shuffling and augmentation. Default 1. */
  seed?: number;
  /** Rows held by the shuffle buffer. Default 1024; 0 keeps stream order. */
  shuffleBuffer?: number;
  /** Source batches read ahead. Default 2. */
  prefetch?: number;
  augmentation?: AugmentationOptions;
  /** Record every step in the history. Default true. */
  recordSteps?: boolean;
  /** Cancels the run; checked before every step. */
  signal?: AbortSignal;
  onBatch?: (progress: BatchProgress) => void;
  /** Awaited before the next epoch starts. */
  onEpoch?: (progress: EpochProgress) => void | Promise<void>;
  /** Continue a run from a checkpoint of the same spec. */
  resumeFrom?: Checkpoint;
  /**
   * Fine-tune: weights loaded before the first epoch (not on resume). Every
   * backbone weight must be in the base with the same shape; heads of tasks
   * whose name and shapes match are reused, other heads start fresh.
   */
  base?: BaseWeights;
  /** Which backbone weights stay fixed. Default none; needs `base`. */
  freeze?: FreezePolicy;
  /** Tasks whose (reused) heads stay fixed. Needs `base`. */
  freezeHeads?: string[];
  /**
   * Absolute learning rates of the backbone and of the heads; default
   * `optimizer.learningRate` for both; schedules scale both.
   */
  learningRates?: GroupLearningRates;
  /**
   * FedProx: adds mu/2 * ||w - w_base||^2 over the trainable weights loaded
   * from `base` to the loss. Needs `base`.
   */
  proximal?: { mu: number };
}

const positiveInteger = (value: unknown) =>
  Number.isInteger(value) && (value as number) > 0;

/** Checks the options a user controls; throws TrainingConfigError. */
export function validateTrainOptions(
  options: TrainOptions,
): DataSourceOptions[] {
  if (!options || typeof options !== 'object') {
    throw new TrainingConfigError('options', 'pass an options object.');
  }
  const spec = options.spec;
  if (!spec || !Array.isArray(spec.tasks) || spec.tasks.length === 0) {
    throw new TrainingConfigError('spec.tasks', 'define at least one task.');
  }
  const names = new Set<string>();
  spec.tasks.forEach((task, i) => {
    if (names.has(task.name)) {
      throw new TrainingConfigError(
        `spec.tasks[${i}].name`,
        `task "${task.name}" is defined twice; names must be unique.`,
      );
    }
    names.add(task.name);
  });
  validateBackbone(spec.backbone);
  const sources = Array.isArray(options.data) ? options.data : [options.data];
  if (sources.length === 0 || sources.some((s) => !s?.schema || !s.train)) {
    throw new TrainingConfigError(
      'data',
      'give at least one source with a schema and a train stream.',
    );
  }
  if (!positiveInteger(options.epochs)) {
    throw new TrainingConfigError('epochs', 'use a positive whole number.');
  }
  if (options.batchSize !== undefined && !positiveInteger(options.batchSize)) {
    throw new TrainingConfigError('batchSize', 'use a positive whole number.');
  }
  for (const key of ['clipNorm', 'clipValue'] as const) {
    const value = options[key];
    if (value !== undefined && !(value > 0)) {
      throw new TrainingConfigError(key, 'use a positive number.');
    }
  }
  const schedule = options.sourceSchedule?.kind;
  if (
    schedule !== undefined &&
    !['proportional', 'temperature', 'round-robin'].includes(schedule)
  ) {
    throw new TrainingConfigError(
      'sourceSchedule.kind',
      'use proportional, temperature or round-robin.',
    );
  }
  for (const key of ['shuffleBuffer', 'prefetch', 'seed'] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      throw new TrainingConfigError(key, 'use a whole number, 0 or more.');
    }
  }
  const patience = options.earlyStopping?.patience;
  if (patience !== undefined && !positiveInteger(patience)) {
    throw new TrainingConfigError(
      'earlyStopping.patience',
      'use a positive whole number of epochs.',
    );
  }
  Optimizer.validate(options.optimizer);
  validateSchedule(options.schedule);
  validateBalancing(options.balancing);
  validateAugmentation(options.augmentation);
  validateFineTune(options);
  options.freezeHeads?.forEach((task, i) => {
    if (!names.has(task)) {
      throw new TrainingConfigError(
        `freezeHeads[${i}]`,
        `the spec has no task "${task}"; tasks are ${[...names].join(', ')}.`,
      );
    }
  });

  return sources;
}
