import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';

export interface OptimizerOptions {
  /** `adam`, `adamw` (Adam with decoupled weight decay) or `sgd`. */
  kind: 'adam' | 'adamw' | 'sgd';
  /** Peak learning rate; schedules scale it. Default 0.001 (sgd: 0.01). */
  learningRate?: number;
  /** Adam: decay of the first moment. Default 0.9. */
  beta1?: number;
  /** Adam: decay of the second moment. Default 0.999. */
  beta2?: number;
  /** Adam: added to the denominator. Default 1e-7. */
  epsilon?: number;
  /** adamw: decoupled decay applied to kernels and embeddings. Default 0.01. */
  weightDecay?: number;
  /** sgd: momentum in [0, 1). Default 0.9. */
  momentum?: number;
}

/** A variable the optimizer updates, and whether weight decay applies. */
export interface OptimizedVariable {
  variable: tf.Variable;
  decay: boolean;
}

/**
 * Adam, AdamW and SGD with momentum, written here rather than taken from
 * tf.train so that the learning rate can change every step and the slot
 * state can be saved to and restored from a checkpoint exactly.
 */
export class Optimizer {
  readonly kind: OptimizerOptions['kind'];
  readonly learningRate: number;
  /** Number of updates applied so far (Adam bias correction uses it). */
  iterations = 0;
  private readonly slots: tf.Variable[][];

  constructor(
    private readonly options: OptimizerOptions,
    private readonly variables: OptimizedVariable[],
  ) {
    this.kind = options.kind;
    this.learningRate =
      options.learningRate ?? (options.kind === 'sgd' ? 0.01 : 0.001);
    const slotCount = options.kind === 'sgd' ? 1 : 2;
    this.slots = variables.map(({ variable }) =>
      Array.from({ length: slotCount }, () =>
        tf.tidy(() => tf.variable(tf.zerosLike(variable), false)),
      ),
    );
  }

  static validate(options: OptimizerOptions | undefined): void {
    if (options === undefined) {
      return;
    }
    if (!['adam', 'adamw', 'sgd'].includes(options.kind)) {
      throw new TrainingConfigError(
        'optimizer.kind',
        `"${options.kind}" is not supported; use adam, adamw or sgd.`,
      );
    }
    const lr = options.learningRate;
    if (lr !== undefined && !(lr > 0 && Number.isFinite(lr))) {
      throw new TrainingConfigError(
        'optimizer.learningRate',
        'use a positive number, for example 0.001.',
      );
    }
    const momentum = options.momentum;
    if (momentum !== undefined && !(momentum >= 0 && momentum < 1)) {
      throw new TrainingConfigError(
        'optimizer.momentum',
        'use a value in [0, 1).',
      );
    }
  }

  /**
   * Applies one update; `grads[i]` belongs to `variables[i]`. The learning
   * rate is one for all or one per variable. A variable marked in `frozen`
   * is skipped: neither it nor its slots change, and no weight decay applies.
   */
  apply(
    grads: tf.Tensor[],
    learningRates: number | number[],
    frozen?: boolean[],
  ): void {
    this.iterations++;
    const t = this.iterations;
    tf.tidy(() => {
      this.variables.forEach(({ variable, decay }, i) => {
        if (frozen?.[i]) {
          return;
        }
        const learningRate =
          typeof learningRates === 'number' ? learningRates : learningRates[i];
        const g = grads[i];
        const slots = this.slots[i];
        if (this.kind === 'sgd') {
          const velocity = tf.add(
            tf.mul(slots[0], this.options.momentum ?? 0.9),
            g,
          );
          slots[0].assign(velocity);
          variable.assign(tf.sub(variable, tf.mul(velocity, learningRate)));

          return;
        }
        const beta1 = this.options.beta1 ?? 0.9;
        const beta2 = this.options.beta2 ?? 0.999;
        const m = tf.add(tf.mul(slots[0], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(
          tf.mul(slots[1], beta2),
          tf.mul(tf.square(g), 1 - beta2),
        );
        slots[0].assign(m);
        slots[1].assign(v);
        const stepSize =
          (learningRate * Math.sqrt(1 - Math.pow(beta2, t))) /
          (1 - Math.pow(beta1, t));
        let next = tf.sub(
          variable,
          tf.mul(
            tf.div(m, tf.add(tf.sqrt(v), this.options.epsilon ?? 1e-7)),
            stepSize,
          ),
        );
        if (this.kind === 'adamw' && decay) {
          const rate = learningRate * (this.options.weightDecay ?? 0.01);
          next = tf.sub(next, tf.mul(variable, rate));
        }
        variable.assign(next);
      });
    });
  }

  /** Slot tensors in a stable order, for a checkpoint. */
  slotTensors(): tf.Variable[] {
    return this.slots.flat();
  }

  dispose(): void {
    this.slots.flat().forEach((slot) => slot.dispose());
  }
}

export interface ScheduleOptions {
  /** `constant` (default), `cosine` decay to `minFactor`, or `step` decay. */
  kind?: 'constant' | 'cosine' | 'step';
  /** Steps of linear warmup from 0 to the peak rate. Default 0. */
  warmupSteps?: number;
  /** cosine: final rate as a fraction of the peak. Default 0. */
  minFactor?: number;
  /** step: multiply the rate by `gamma` every `stepSize` steps. */
  stepSize?: number;
  /** step: decay factor. Default 0.1. */
  gamma?: number;
}

export function validateSchedule(schedule: ScheduleOptions | undefined): void {
  if (!schedule) {
    return;
  }
  const kind = schedule.kind ?? 'constant';
  if (!['constant', 'cosine', 'step'].includes(kind)) {
    throw new TrainingConfigError(
      'schedule.kind',
      `"${kind}" is not a schedule; use constant, cosine or step.`,
    );
  }
  if (
    kind === 'step' &&
    !(Number.isInteger(schedule.stepSize) && schedule.stepSize! > 0)
  ) {
    throw new TrainingConfigError(
      'schedule.stepSize',
      'a step schedule needs a positive whole number of steps.',
    );
  }
  const warmup = schedule.warmupSteps ?? 0;
  if (!(Number.isInteger(warmup) && warmup >= 0)) {
    throw new TrainingConfigError(
      'schedule.warmupSteps',
      'use a whole number of steps, 0 or more.',
    );
  }
}

/** The learning rate of global step `step` (0-based) of `totalSteps`. */
export function learningRateAt(
  peak: number,
  schedule: ScheduleOptions | undefined,
  step: number,
  totalSteps: number,
): number {
  const warmup = schedule?.warmupSteps ?? 0;
  if (step < warmup) {
    return (peak * (step + 1)) / warmup;
  }
  switch (schedule?.kind ?? 'constant') {
    case 'cosine': {
      const span = Math.max(totalSteps - warmup, 1);
      const progress = Math.min((step - warmup) / span, 1);
      const min = schedule?.minFactor ?? 0;

      return (
        peak * (min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * progress)))
      );
    }
    case 'step':
      return (
        peak *
        Math.pow(
          schedule?.gamma ?? 0.1,
          Math.floor((step - warmup) / (schedule?.stepSize ?? 1)),
        )
      );
    default:
      return peak;
  }
}
