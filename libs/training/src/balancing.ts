import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import type { Random } from './random';
import type { TaskPlan } from './tasks';

export type BalancingStrategy =
  'fixed' | 'equal' | 'uncertainty' | 'gradnorm' | 'dwa' | 'pcgrad';

const STRATEGIES: BalancingStrategy[] = [
  'fixed',
  'equal',
  'uncertainty',
  'gradnorm',
  'dwa',
  'pcgrad',
];

export interface BalancingOptions {
  /**
   * How task losses are combined:
   * - `fixed`: each task's `weight`;
   * - `equal`: every task weight 1 (default);
   * - `uncertainty`: learned homoscedastic uncertainty (Kendall et al. 2018),
   *   loss_i * exp(-s_i) + s_i with s_i learned;
   * - `gradnorm`: weights moved so each task's gradient norm on the last
   *   shared layer tracks its relative training rate (Chen et al. 2018);
   * - `dwa`: dynamic weight average over the last two epochs' losses
   *   (Liu et al. 2019);
   * - `pcgrad`: per-task gradients projected off each other where they
   *   conflict, then summed (Yu et al. 2020).
   */
  strategy: BalancingStrategy;
  /** gradnorm: the restoring force alpha. Default 1.5. */
  alpha?: number;
  /** gradnorm: learning rate of the task weights. Default 0.025. */
  weightLearningRate?: number;
  /** dwa: softmax temperature. Default 2. */
  temperature?: number;
}

/** The balancer's state in a checkpoint (plain numbers). */
export interface BalancerState {
  weights: number[];
  logVariances: number[];
  initialLosses: number[];
  epochLosses: number[][];
}

export function validateBalancing(options: BalancingOptions | undefined): void {
  if (options && !STRATEGIES.includes(options.strategy)) {
    throw new TrainingConfigError(
      'balancing.strategy',
      `"${options.strategy}" is not a strategy; use ${STRATEGIES.join(', ')}.`,
    );
  }
}

/** Combines per-task losses (or gradients) into one update. */
export class LossBalancer {
  readonly strategy: BalancingStrategy;
  /** Whether the trainer must compute one gradient per task. */
  readonly perTaskGradients: boolean;
  /** Variables the optimizer must also train (uncertainty's s_i). */
  readonly variables: tf.Variable[] = [];
  private weights: number[];
  private initialLosses: number[];
  private epochLosses: number[][] = [];
  private readonly logVariances?: tf.Variable;

  constructor(
    private readonly options: BalancingOptions,
    private readonly tasks: TaskPlan[],
  ) {
    this.strategy = options.strategy;
    this.perTaskGradients =
      this.strategy === 'gradnorm' || this.strategy === 'pcgrad';
    this.weights = tasks.map((task) =>
      this.strategy === 'fixed' ? task.weight : 1,
    );
    this.initialLosses = tasks.map(() => 0);
    if (this.strategy === 'uncertainty') {
      this.logVariances = tf.tidy(() =>
        tf.variable(tf.zeros([tasks.length]), true),
      );
      this.variables.push(this.logVariances);
    }
  }

  /** The weights the last (or next) step used, one per task. */
  effectiveWeights(): number[] {
    if (this.logVariances) {
      const weights = tf.tidy(() => tf.exp(tf.neg(this.logVariances!)));
      const values = Array.from(weights.dataSync());
      weights.dispose();

      return values;
    }

    return [...this.weights];
  }

  /**
   * The loss to differentiate, from the stacked task losses and a 0/1 flag
   * per task saying whether the batch had any of its labels.
   */
  combine(losses: tf.Tensor1D, present: tf.Tensor1D): tf.Scalar {
    return tf.tidy(() => {
      if (this.logVariances) {
        const s = this.logVariances;

        return tf.sum(
          tf.mul(present, tf.add(tf.mul(tf.exp(tf.neg(s)), losses), s)),
        ) as tf.Scalar;
      }

      return tf.sum(tf.mul(losses, tf.tensor1d(this.weights))) as tf.Scalar;
    });
  }

  /**
   * gradnorm and pcgrad: merges one gradient list per task into the update.
   * `shared[v]` says whether variable v belongs to the backbone;
   * `lastShared` is the index of the last backbone kernel.
   */
  combineGradients(
    taskGrads: tf.Tensor[][],
    losses: number[],
    shared: boolean[],
    lastShared: number,
    random: Random,
  ): tf.Tensor[] {
    if (this.strategy === 'gradnorm') {
      return this.gradNorm(taskGrads, losses, lastShared);
    }

    return pcGrad(taskGrads, shared, random);
  }

  private gradNorm(
    taskGrads: tf.Tensor[][],
    losses: number[],
    lastShared: number,
  ): tf.Tensor[] {
    const k = this.tasks.length;
    losses.forEach((loss, i) => {
      if (this.initialLosses[i] === 0 && loss > 0) {
        this.initialLosses[i] = loss;
      }
    });
    const combined = tf.tidy(() =>
      taskGrads[0].map((_, v) =>
        tf.addN(taskGrads.map((grads, i) => tf.mul(grads[v], this.weights[i]))),
      ),
    );
    const norms = tf.tidy(() =>
      tf.stack(taskGrads.map((grads) => tf.norm(grads[lastShared]))),
    );
    const g = Array.from(norms.dataSync());
    norms.dispose();
    const ratios = losses.map((loss, i) =>
      this.initialLosses[i] > 0 ? loss / this.initialLosses[i] : 1,
    );
    const meanRatio = ratios.reduce((a, b) => a + b, 0) / k || 1;
    const weighted = g.map((norm, i) => norm * this.weights[i]);
    const meanNorm = weighted.reduce((a, b) => a + b, 0) / k;
    const alpha = this.options.alpha ?? 1.5;
    const rate = this.options.weightLearningRate ?? 0.025;
    const next = this.weights.map((w, i) => {
      const target = meanNorm * Math.pow(ratios[i] / meanRatio, alpha);
      const gradient = Math.sign(weighted[i] - target) * g[i];
      const scale = Math.max(meanNorm, 1e-12);

      return Math.max(w - (rate * gradient) / scale, 1e-3);
    });
    const total = next.reduce((a, b) => a + b, 0);
    this.weights = next.map((w) => (w * k) / total);

    return combined;
  }

  /** Called with each task's mean training loss when an epoch ends. */
  endEpoch(meanLosses: number[]): void {
    this.epochLosses = [...this.epochLosses, meanLosses].slice(-2);
    if (this.strategy !== 'dwa' || this.epochLosses.length < 2) {
      return;
    }
    const [before, last] = this.epochLosses;
    const temperature = this.options.temperature ?? 2;
    const rates = last.map((loss, i) => (before[i] > 0 ? loss / before[i] : 1));
    const exps = rates.map((r) => Math.exp(r / temperature));
    const sum = exps.reduce((a, b) => a + b, 0);
    this.weights = exps.map((e) => (this.tasks.length * e) / sum);
  }

  getState(): BalancerState {
    return {
      weights: [...this.weights],
      logVariances: this.logVariances
        ? Array.from(this.logVariances.dataSync())
        : [],
      initialLosses: [...this.initialLosses],
      epochLosses: this.epochLosses.map((losses) => [...losses]),
    };
  }

  setState(state: BalancerState): void {
    this.weights = [...state.weights];
    this.initialLosses = [...state.initialLosses];
    this.epochLosses = state.epochLosses.map((losses) => [...losses]);
    if (this.logVariances) {
      const values = state.logVariances;
      tf.tidy(() => this.logVariances!.assign(tf.tensor1d(values)));
    }
  }

  dispose(): void {
    this.logVariances?.dispose();
  }
}

/**
 * PCGrad: for each task, in a random order of the others, remove the
 * component of its shared gradient that points against another task's
 * gradient; the projected shared gradients and the (disjoint) head gradients
 * are then summed.
 */
function pcGrad(
  taskGrads: tf.Tensor[][],
  shared: boolean[],
  random: Random,
): tf.Tensor[] {
  const orders = taskGrads.map((_, i) =>
    random.shuffle(taskGrads.map((__, j) => j).filter((j) => j !== i)),
  );

  return tf.tidy(() => {
    const sharedIndexes = shared
      .map((isShared, v) => (isShared ? v : -1))
      .filter((v) => v >= 0);
    const flat = taskGrads.map((grads) =>
      tf.concat(sharedIndexes.map((v) => tf.reshape(grads[v], [-1]))),
    );
    const projected = flat.map((own, i) => {
      let g = own;
      for (const j of orders[i]) {
        const other = flat[j];
        const dot = tf.sum(tf.mul(g, other));
        const coefficient = tf.div(
          tf.minimum(dot, 0),
          tf.add(tf.sum(tf.square(other)), 1e-12),
        );
        g = tf.sub(g, tf.mul(coefficient, other));
      }

      return g;
    });
    const summed = tf.addN(projected);
    const result: tf.Tensor[] = [];
    let offset = 0;
    taskGrads[0].forEach((grad, v) => {
      if (shared[v]) {
        result.push(
          tf.reshape(tf.slice(summed, [offset], [grad.size]), grad.shape),
        );
        offset += grad.size;
      } else {
        result.push(tf.addN(taskGrads.map((grads) => grads[v])));
      }
    });

    return result;
  });
}
