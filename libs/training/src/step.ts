import * as tf from '@tensorflow/tfjs';

import type { LossBalancer } from './balancing';
import { TrainingDivergedError } from './errors';
import { addProximal } from './finetune';
import { taskLoss } from './losses';
import type { BuiltModel, ModelPlan } from './model';
import type { Optimizer } from './optimizer';
import type { Random } from './random';

/** What one step needs besides its batch. */
export interface StepContext {
  plan: ModelPlan;
  model: BuiltModel;
  /** Trainable variables, in the optimizer's order. */
  variables: tf.Variable[];
  /** Whether each variable belongs to the backbone. */
  shared: boolean[];
  /** Index of the last backbone kernel (GradNorm measures norms there). */
  lastShared: number;
  optimizer: Optimizer;
  balancer: LossBalancer;
  random: Random;
  /** Rescale gradients whose global norm exceeds this. */
  clipNorm?: number;
  /** Clip every gradient element into [-clipValue, clipValue]. */
  clipValue?: number;
  /** Per variable: left unchanged by this step (fine-tuning). */
  frozen?: boolean[];
  /** Per variable: the task whose head holds it, -1 for the backbone. */
  owners?: number[];
  /** Per variable: its learning rate as a multiple of the step's. */
  scales?: number[];
  /** FedProx: mu and, per variable, the base value it is pulled towards. */
  proximal?: { mu: number; anchors: (tf.Tensor | null)[] };
}

/** A batch as tensors; the caller disposes them. */
export interface StepBatch {
  inputs: tf.Tensor[];
  labels: tf.Tensor[];
  masks: tf.Tensor[];
  /** 1 per task with at least one label in the batch. */
  present: tf.Tensor1D;
}

export interface StepOutcome {
  loss: number;
  taskLosses: number[];
  taskWeights: number[];
  /** The proximal term's value, when one is set. */
  proximal?: number;
}

/**
 * One optimisation step. Throws TrainingDivergedError, without changing the
 * weights, when a task loss is not finite.
 */
export function trainStep(
  context: StepContext,
  batch: StepBatch,
  learningRate: number,
  position: { epoch: number; step: number },
): StepOutcome {
  const { model, plan, balancer } = context;
  for (const layer of model.dropouts) {
    (layer as unknown as { seed: number }).seed = context.random.seed();
  }
  const taskWeights = balancer.effectiveWeights();
  const frozen = context.frozen ?? [];
  const active = context.variables.filter((_, i) => !frozen[i]);
  const forward = (task?: number) => {
    const raw = model.training.apply(batch.inputs, { training: true }) as
      tf.Tensor | tf.Tensor[];
    const outputs = Array.isArray(raw) ? raw : [raw];
    const losses = plan.tasks.map((t, i) =>
      task === undefined || task === i
        ? taskLoss(t, outputs[i], batch.labels[i], batch.masks[i])
        : tf.scalar(0),
    );

    return tf.stack(losses) as tf.Tensor1D;
  };

  let grads: tf.Tensor[];
  let lossValues: number[];
  let total: number;
  if (balancer.perTaskGradients) {
    const perTask = plan.tasks.map((_, i) => {
      const relevant = context.variables.filter(
        (_, v) => !frozen[v] && [-1, i].includes(context.owners?.[v] ?? i),
      );
      if (relevant.length === 0) {
        // Everything this task reaches is frozen: only its loss is needed.
        const losses = tf.tidy(() => forward(i));
        const lossValue = losses.dataSync()[i];
        losses.dispose();

        return { lossValue, grads: fill(context.variables, {}) };
      }
      let losses: tf.Tensor1D | undefined;
      const result = tf.variableGrads(() => {
        losses = tf.keep(forward(i));

        return tf.sum(losses);
      }, relevant);
      const lossValue = losses!.dataSync()[i];
      losses!.dispose();
      result.value.dispose();

      return { lossValue, grads: fill(context.variables, result.grads) };
    });
    lossValues = perTask.map((p) => p.lossValue);
    checkFinite(
      plan,
      lossValues,
      position,
      perTask.flatMap((p) => p.grads),
    );
    grads = balancer.combineGradients(
      perTask.map((p) => p.grads),
      lossValues,
      context.shared,
      context.lastShared,
      context.random,
    );
    perTask.forEach((p) => tf.dispose(p.grads));
    total = lossValues.reduce((sum, l, i) => sum + l * taskWeights[i], 0);
  } else {
    let losses: tf.Tensor1D | undefined;
    const allVariables = [...context.variables, ...balancer.variables];
    const result = tf.variableGrads(() => {
      losses = tf.keep(forward());

      return balancer.combine(losses, batch.present);
    }, [...active, ...balancer.variables]);
    lossValues = Array.from(losses!.dataSync());
    total = result.value.dataSync()[0];
    losses!.dispose();
    result.value.dispose();
    grads = fill(allVariables, result.grads);
    checkFinite(plan, lossValues, position, grads);
  }
  const proximal = context.proximal
    ? addProximal(
        grads,
        context.variables,
        context.proximal.anchors,
        frozen,
        context.proximal.mu,
      )
    : undefined;
  const clipped = clip(grads, context.clipNorm, context.clipValue);
  if (clipped !== grads) {
    tf.dispose(grads);
  }
  const scales = context.scales;
  context.optimizer.apply(
    clipped,
    scales
      ? clipped.map((_, i) => learningRate * (scales[i] ?? 1))
      : learningRate,
    frozen,
  );
  tf.dispose(clipped);

  return {
    loss: total,
    taskLosses: lossValues,
    taskWeights,
    ...(proximal === undefined ? {} : { proximal }),
  };
}

function fill(variables: tf.Variable[], grads: tf.NamedTensorMap): tf.Tensor[] {
  return variables.map(
    (variable) => grads[variable.name] ?? tf.zerosLike(variable),
  );
}

function checkFinite(
  plan: ModelPlan,
  losses: number[],
  position: { epoch: number; step: number },
  toDispose: tf.Tensor[],
): void {
  const bad = losses.findIndex((loss) => !Number.isFinite(loss));
  if (bad >= 0) {
    tf.dispose(toDispose);
    throw new TrainingDivergedError(
      plan.tasks[bad].name,
      position.epoch,
      position.step,
      losses[bad],
    );
  }
}

function clip(
  grads: tf.Tensor[],
  clipNorm: number | undefined,
  clipValue: number | undefined,
): tf.Tensor[] {
  if (!clipNorm && !clipValue) {
    return grads;
  }

  return tf.tidy(() => {
    let result = grads;
    if (clipValue) {
      result = result.map((g) => tf.clipByValue(g, -clipValue, clipValue));
    }
    if (clipNorm) {
      const norm = tf.sqrt(tf.addN(result.map((g) => tf.sum(tf.square(g)))));
      const scale = tf.div(clipNorm, tf.maximum(norm, clipNorm));
      result = result.map((g) => tf.mul(g, scale));
    }

    return result;
  });
}
