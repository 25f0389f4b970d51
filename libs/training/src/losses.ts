import * as tf from '@tensorflow/tfjs';

import type { TaskPlan } from './tasks';

/** `max(x, 0) - x * y + log(1 + exp(-|x|))`: stable sigmoid cross-entropy. */
function sigmoidCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return tf.add(
    tf.sub(tf.relu(logits), tf.mul(logits, labels)),
    tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
  );
}

/**
 * The task's loss over the rows whose label is present: the mean of the
 * per-row (or per-label) loss times its class weight, where the mean divides
 * by the number of present labels (at least 1, so a batch without labels for
 * this task gives 0).
 */
export function taskLoss(
  task: TaskPlan,
  logits: tf.Tensor,
  labels: tf.Tensor,
  mask: tf.Tensor,
): tf.Scalar {
  return tf.tidy(() => {
    let perRow: tf.Tensor;
    let weights: tf.Tensor | undefined;
    switch (task.kind) {
      case 'regression': {
        const diff = tf.sub(logits, labels);
        if (task.loss === 'huber') {
          const abs = tf.abs(diff);
          const delta = task.huberDelta;
          perRow = tf.where(
            tf.lessEqual(abs, delta),
            tf.mul(0.5, tf.square(diff)),
            tf.mul(delta, tf.sub(abs, 0.5 * delta)),
          );
        } else {
          perRow = tf.square(diff);
        }
        break;
      }
      case 'binary':
        perRow = sigmoidCrossEntropy(logits, labels);
        if (task.classWeights) {
          const [negative, positive] = task.classWeights;
          weights = tf.add(negative, tf.mul(labels, positive - negative));
        }
        break;
      case 'multiclass': {
        const smoothing = task.labelSmoothing;
        const target =
          smoothing > 0
            ? tf.add(tf.mul(labels, 1 - smoothing), smoothing / task.units)
            : labels;
        perRow = tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1, true));
        if (task.classWeights) {
          weights = tf.sum(
            tf.mul(labels, tf.tensor1d(task.classWeights)),
            1,
            true,
          );
        }
        break;
      }
      case 'multilabel':
        perRow = sigmoidCrossEntropy(logits, labels);
        break;
    }
    const weighted = tf.mul(perRow, weights ? tf.mul(mask, weights) : mask);

    return tf.div(tf.sum(weighted), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}
