import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import type { FeaturePlan, InputLayout } from './preprocessing';
import type { Random } from './random';
import type {
  Activation,
  BackboneOptions,
  CnnBackboneOptions,
  MlpBackboneOptions,
} from './spec';
import type { TaskPlan } from './tasks';

/** Everything needed to rebuild a model and reproduce its preprocessing. */
export interface ModelPlan {
  features: FeaturePlan[];
  layout: InputLayout;
  backbone: BackboneOptions;
  tasks: TaskPlan[];
}

/**
 * Two views of one set of layers: `training` outputs raw logits per task (the
 * losses work on logits for stability), `inference` outputs predictions
 * (sigmoid or softmax applied; regression still standardised).
 */
export interface BuiltModel {
  training: tf.LayersModel;
  inference: tf.LayersModel;
  /** Dropout layers, whose seed the trainer sets before each step. */
  dropouts: tf.layers.Layer[];
}

export const ACTIVATIONS: Activation[] = [
  'relu',
  'elu',
  'selu',
  'tanh',
  'sigmoid',
  'gelu',
];

type Symbolic = tf.SymbolicTensor;
type Init = () => ReturnType<typeof tf.initializers.glorotUniform>;

export function validateBackbone(backbone: BackboneOptions): void {
  const field = 'spec.backbone';
  const positive = (values: unknown, name: string) => {
    if (
      !Array.isArray(values) ||
      values.some((v) => !Number.isInteger(v) || v < 1)
    ) {
      throw new TrainingConfigError(
        `${field}.${name}`,
        'give a list of positive integer widths, for example [64, 32].',
      );
    }
  };
  const rate = (value: number | undefined) => {
    if (value !== undefined && !(value >= 0 && value < 1)) {
      throw new TrainingConfigError(
        `${field}.dropout`,
        'use a rate in [0, 1).',
      );
    }
  };
  if (backbone?.kind === 'mlp') {
    positive(backbone.widths, 'widths');
    if (backbone.widths.length === 0) {
      throw new TrainingConfigError(
        `${field}.widths`,
        'give at least one hidden layer width.',
      );
    }
    if (backbone.activation && !ACTIVATIONS.includes(backbone.activation)) {
      throw new TrainingConfigError(
        `${field}.activation`,
        `use one of ${ACTIVATIONS.join(', ')}.`,
      );
    }
    rate(backbone.dropout);
  } else if (backbone?.kind === 'cnn') {
    if (!Array.isArray(backbone.blocks) || backbone.blocks.length === 0) {
      throw new TrainingConfigError(
        `${field}.blocks`,
        'give at least one convolution block, for example [{ filters: 16 }].',
      );
    }
    positive(
      backbone.blocks.map((b) => b.filters),
      'blocks[].filters',
    );
    positive(backbone.dense ?? [], 'dense');
    rate(backbone.dropout);
  } else {
    throw new TrainingConfigError(
      `${field}.kind`,
      'use "mlp" for tabular inputs or "cnn" for images.',
    );
  }
}

/** Builds the shared backbone and one head per task, with seeded weights. */
export function buildModel(plan: ModelPlan, random: Random): BuiltModel {
  const { layout, backbone } = plan;
  const init = () => tf.initializers.glorotUniform({ seed: random.seed() });
  const dropouts: tf.layers.Layer[] = [];
  const inputs: Symbolic[] = [];
  const parts: Symbolic[] = [];

  if (layout.tabularWidth > 0) {
    const input = tf.input({
      shape: [layout.tabularWidth],
      name: 'input/tabular',
    });
    inputs.push(input);
    parts.push(input);
  }
  for (const embedding of layout.embeddings) {
    // A one-hot input times a bias-free dense kernel is an embedding lookup;
    // tfjs' Embedding layer has no gradient kernel on the wasm backend.
    const input = tf.input({
      shape: [embedding.size],
      name: embedding.inputName,
    });
    inputs.push(input);
    const feature = plan.features.find(
      (f) => f.kind === 'categorical' && f.column === embedding.column,
    );
    parts.push(
      tf.layers
        .dense({
          units: feature?.kind === 'categorical' ? feature.embeddingDim : 8,
          useBias: false,
          kernelInitializer: tf.initializers.randomUniform({
            minval: -0.05,
            maxval: 0.05,
            seed: random.seed(),
          }),
          name: `backbone/embed/${embedding.column}`,
        })
        .apply(input) as Symbolic,
    );
  }
  if (layout.image) {
    const { height, width, channels } = layout.image;
    const input = tf.input({
      shape: [height, width, channels],
      name: 'input/image',
    });
    inputs.push(input);
    parts.unshift(
      backbone.kind === 'cnn'
        ? convolutions(input, backbone, init)
        : (tf.layers
            .flatten({ name: 'backbone/flatten' })
            .apply(input) as Symbolic),
    );
  }

  let x =
    parts.length === 1
      ? parts[0]
      : (tf.layers
          .concatenate({ name: 'backbone/concat' })
          .apply(parts) as Symbolic);
  x =
    backbone.kind === 'mlp'
      ? mlp(x, backbone, init, random, dropouts)
      : denseStack(x, backbone, init, random, dropouts);

  const logits: Symbolic[] = [];
  const outputs: Symbolic[] = [];
  for (const task of plan.tasks) {
    let h = x;
    task.hidden.forEach((units, i) => {
      h = tf.layers
        .dense({
          units,
          activation: 'relu',
          kernelInitializer: init(),
          name: `head/${task.name}/dense_${i}`,
        })
        .apply(h) as Symbolic;
    });
    const out = tf.layers
      .dense({
        units: task.units,
        kernelInitializer: init(),
        name: `head/${task.name}/logits`,
      })
      .apply(h) as Symbolic;
    logits.push(out);
    outputs.push(
      tf.layers
        .activation({
          activation: outputActivation(task),
          name: `head/${task.name}/output`,
        })
        .apply(out) as Symbolic,
    );
  }

  return {
    training: tf.model({ inputs, outputs: logits, name: 'chorus_training' }),
    inference: tf.model({ inputs, outputs, name: 'chorus' }),
    dropouts,
  };
}

function outputActivation(task: TaskPlan): 'linear' | 'sigmoid' | 'softmax' {
  switch (task.kind) {
    case 'regression':
      return 'linear';
    case 'multiclass':
      return 'softmax';
    default:
      return 'sigmoid';
  }
}

function convolutions(
  input: Symbolic,
  backbone: CnnBackboneOptions,
  init: Init,
): Symbolic {
  let x = input;
  backbone.blocks.forEach((block, i) => {
    x = tf.layers
      .conv2d({
        filters: block.filters,
        kernelSize: block.kernelSize ?? 3,
        padding: 'same',
        useBias: !backbone.batchNorm,
        kernelInitializer: init(),
        name: `backbone/conv_${i}`,
      })
      .apply(x) as Symbolic;
    if (backbone.batchNorm) {
      x = tf.layers
        .batchNormalization({ name: `backbone/conv_${i}/bn` })
        .apply(x) as Symbolic;
    }
    x = tf.layers
      .activation({ activation: 'relu', name: `backbone/conv_${i}/act` })
      .apply(x) as Symbolic;
    if (block.pool ?? true) {
      const pool =
        backbone.pooling === 'avg'
          ? tf.layers.averagePooling2d({
              poolSize: 2,
              name: `backbone/conv_${i}/pool`,
            })
          : tf.layers.maxPooling2d({
              poolSize: 2,
              name: `backbone/conv_${i}/pool`,
            });
      x = pool.apply(x) as Symbolic;
    }
  });

  return tf.layers.flatten({ name: 'backbone/flatten' }).apply(x) as Symbolic;
}

function dropout(
  x: Symbolic,
  rate: number | undefined,
  name: string,
  random: Random,
  dropouts: tf.layers.Layer[],
): Symbolic {
  if (!rate) {
    return x;
  }
  const layer = tf.layers.dropout({ rate, seed: random.seed(), name });
  dropouts.push(layer);

  return layer.apply(x) as Symbolic;
}

function mlp(
  input: Symbolic,
  backbone: MlpBackboneOptions,
  init: Init,
  random: Random,
  dropouts: tf.layers.Layer[],
): Symbolic {
  let x = input;
  backbone.widths.forEach((units, i) => {
    const name = `backbone/dense_${i}`;
    let y = tf.layers
      .dense({
        units,
        useBias: !backbone.batchNorm,
        kernelInitializer: init(),
        name,
      })
      .apply(x) as Symbolic;
    if (backbone.batchNorm) {
      y = tf.layers
        .batchNormalization({ name: `${name}/bn` })
        .apply(y) as Symbolic;
    }
    y = tf.layers
      .activation({
        activation: backbone.activation ?? 'relu',
        name: `${name}/act`,
      })
      .apply(y) as Symbolic;
    if (backbone.residual) {
      const skip =
        x.shape[1] === units
          ? x
          : (tf.layers
              .dense({
                units,
                useBias: false,
                kernelInitializer: init(),
                name: `${name}/projection`,
              })
              .apply(x) as Symbolic);
      y = tf.layers
        .add({ name: `${name}/residual` })
        .apply([y, skip]) as Symbolic;
    }
    x = dropout(y, backbone.dropout, `${name}/dropout`, random, dropouts);
  });

  return x;
}

function denseStack(
  input: Symbolic,
  backbone: CnnBackboneOptions,
  init: Init,
  random: Random,
  dropouts: tf.layers.Layer[],
): Symbolic {
  let x = input;
  (backbone.dense ?? []).forEach((units, i) => {
    const name = `backbone/dense_${i}`;
    x = tf.layers
      .dense({ units, activation: 'relu', kernelInitializer: init(), name })
      .apply(x) as Symbolic;
    x = dropout(x, backbone.dropout, `${name}/dropout`, random, dropouts);
  });

  return x;
}

/** Model inputs for encoded rows, in the order of the model's inputs. */
export function inputTensors(
  layout: InputLayout,
  features: {
    size: number;
    tabular?: Float32Array;
    embeddings: Int32Array[];
    image?: Float32Array;
  },
): tf.Tensor[] {
  const tensors: tf.Tensor[] = [];
  if (features.tabular) {
    tensors.push(
      tf.tensor2d(features.tabular, [features.size, layout.tabularWidth]),
    );
  }
  features.embeddings.forEach((codes, i) =>
    tensors.push(
      tf.tidy(() =>
        tf.cast(
          tf.oneHot(tf.tensor1d(codes, 'int32'), layout.embeddings[i].size),
          'float32',
        ),
      ),
    ),
  );
  if (features.image && layout.image) {
    const { height, width, channels } = layout.image;
    tensors.push(
      tf.tensor4d(features.image, [features.size, height, width, channels]),
    );
  }

  return tensors;
}
