import type { TaskMetrics } from './metrics';

/** One optimisation step, as recorded in the history. */
export interface StepRecord {
  epoch: number;
  /** Global step, counted from 0 over the whole run. */
  step: number;
  learningRate: number;
  /** The loss that was differentiated (weighted sum of task losses). */
  loss: number;
  /** Each task's unweighted loss on the batch. */
  taskLosses: Record<string, number>;
  /** The effective weight of each task at this step. */
  taskWeights: Record<string, number>;
  /** Fine-tuning: the learning rate of each group at this step. */
  learningRates?: { backbone: number; heads: number };
  /** FedProx: the value of mu/2 ||w - w_base||^2 (not part of `loss`). */
  proximal?: number;
}

export interface EpochRecord {
  epoch: number;
  /** Mean unweighted training loss per task over the epoch. */
  trainLoss: Record<string, number>;
  /** Validation metrics per task (empty without validation data). */
  validation: Record<string, TaskMetrics>;
  /** Mean of each task's primary metric (see PRIMARY_METRIC), or NaN. */
  combinedScore: number;
  /** The value of the early-stopping monitor this epoch. */
  monitored: number;
  seconds: number;
  /**
   * Fine-tuning (with `base`): whether every backbone weight was trained
   * this epoch; false while any backbone layer was frozen.
   */
  trainableBackbone?: boolean;
  /** Fine-tuning: the layers kept fixed this epoch (backbone and heads). */
  frozenLayers?: string[];
}

export interface TrainingHistory {
  steps: StepRecord[];
  epochs: EpochRecord[];
}

export interface BestEpoch {
  epoch: number;
  monitored: number;
}
