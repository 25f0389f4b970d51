import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import type { ModelPlan } from './model';
import type { NamedWeights } from './named-weights';
import type { BaseStatistics } from './plan';

/**
 * Which weights a fine-tune leaves untouched. A backbone layer is a block
 * with all its weights: an embedding, a convolution or a dense layer
 * together with its batch normalisation and residual projection. Their
 * order is embeddings first, then convolutions, then dense layers.
 */
export type FreezePolicy =
  | { kind: 'none' }
  /** Every backbone/* weight frozen. */
  | { kind: 'backbone' }
  /** The first `count` backbone layers frozen. */
  | { kind: 'layers'; count: number }
  /**
   * The backbone frozen for epochs 0..frozenEpochs-1, then trained at
   * `unfrozenLearningRate` (default: the backbone learning rate / 10).
   */
  | {
      kind: 'two-stage';
      frozenEpochs: number;
      unfrozenLearningRate?: number;
    };

/** Weights to start a fine-tune from. */
export interface BaseWeights {
  weights: NamedWeights;
  /**
   * The input schema changed: backbone input layers (first dense /
   * embeddings / first conv) get fresh weights; the rest of the body is
   * loaded. Default false.
   */
  newInputs?: boolean;
  /**
   * The base's standardisation statistics (its manifest's features and
   * tasks): shared numeric inputs and regression targets keep them instead
   * of this data's (see planModel); inputs only without `newInputs`.
   */
  statistics?: BaseStatistics;
}

/** Absolute learning rates per group; schedules scale both. */
export interface GroupLearningRates {
  /** Default `optimizer.learningRate`. */
  backbone?: number;
  /** Default `optimizer.learningRate`. */
  heads?: number;
}

/** The fine-tuning options of `TrainOptions`. */
export interface FineTuneOptions {
  base?: BaseWeights;
  freeze?: FreezePolicy;
  freezeHeads?: string[];
  learningRates?: GroupLearningRates;
  proximal?: { mu: number };
}

const positiveRate = (value: unknown) =>
  typeof value === 'number' && value > 0 && Number.isFinite(value);

/** Checks the fine-tuning options that need no model; throws. */
export function validateFineTune(options: FineTuneOptions): void {
  const { base, freeze, freezeHeads, learningRates, proximal } = options;
  if (base !== undefined && !(base?.weights instanceof Map)) {
    throw new TrainingConfigError(
      'base.weights',
      'give the base weights as a Map from weight name to shape and values ' +
        '(weightsFromArtifact, namedWeightsOf or importBackbone make one).',
    );
  }
  if (freeze !== undefined) {
    if (!base) {
      throw new TrainingConfigError(
        'freeze',
        'freezing needs base weights to keep; pass base too.',
      );
    }
    validateFreeze(freeze);
  }
  if (freezeHeads !== undefined) {
    if (!base) {
      throw new TrainingConfigError(
        'freezeHeads',
        'freezing heads needs base weights to keep; pass base too.',
      );
    }
    if (!Array.isArray(freezeHeads)) {
      throw new TrainingConfigError(
        'freezeHeads',
        'give a list of task names.',
      );
    }
  }
  for (const key of ['backbone', 'heads'] as const) {
    const value = learningRates?.[key];
    if (value !== undefined && !positiveRate(value)) {
      throw new TrainingConfigError(
        `learningRates.${key}`,
        'use a positive number, for example 0.0001.',
      );
    }
  }
  if (proximal !== undefined) {
    const mu = proximal?.mu;
    if (typeof mu !== 'number' || !(mu >= 0) || !Number.isFinite(mu)) {
      throw new TrainingConfigError(
        'proximal.mu',
        'use a finite number, 0 or more, for example 0.01.',
      );
    }
    if (!base) {
      throw new TrainingConfigError(
        'proximal',
        'the proximal term pulls towards base weights; pass base too.',
      );
    }
  }
}

function validateFreeze(freeze: FreezePolicy): void {
  switch (freeze?.kind) {
    case 'none':
    case 'backbone':
      return;
    case 'layers':
      if (!(Number.isInteger(freeze.count) && freeze.count > 0)) {
        throw new TrainingConfigError(
          'freeze.count',
          'use a positive whole number of backbone layers.',
        );
      }

      return;
    case 'two-stage':
      if (!(Number.isInteger(freeze.frozenEpochs) && freeze.frozenEpochs > 0)) {
        throw new TrainingConfigError(
          'freeze.frozenEpochs',
          'use a positive whole number of epochs.',
        );
      }
      if (
        freeze.unfrozenLearningRate !== undefined &&
        !positiveRate(freeze.unfrozenLearningRate)
      ) {
        throw new TrainingConfigError(
          'freeze.unfrozenLearningRate',
          'use a positive number, for example 0.0001.',
        );
      }

      return;
    default:
      throw new TrainingConfigError(
        'freeze.kind',
        'use none, backbone, layers or two-stage.',
      );
  }
}

/** The backbone layer a weight belongs to (see FreezePolicy). */
export function layerOf(name: string): string {
  const parts = name.split('/');
  if (parts[0] !== 'backbone') {
    return parts.slice(0, -1).join('/');
  }

  return parts.slice(0, parts[1] === 'embed' ? 3 : 2).join('/');
}

/** Backbone layers in model order: embeddings, convolutions, dense. */
export function backboneLayers(names: string[]): string[] {
  const rank = (layer: string) => {
    const match = /^backbone\/(embed|conv|dense)[/_](.*)$/.exec(layer);
    const kind = ['embed', 'conv', 'dense'].indexOf(match?.[1] ?? '');

    return kind < 0 ? [3, 0] : [kind, kind === 0 ? 0 : Number(match![2])];
  };
  const layers = [
    ...new Set(
      names.filter((n) => n.startsWith('backbone/')).map((n) => layerOf(n)),
    ),
  ];

  return layers
    .map((layer, i) => ({ layer, i, rank: rank(layer) }))
    .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.i - b.i)
    .map(({ layer }) => layer);
}

/** Backbone layers that read the model's inputs directly. */
export function inputLayers(plan: ModelPlan, layers: string[]): Set<string> {
  const direct = layers.filter((layer) => layer.startsWith('backbone/embed/'));
  if (plan.backbone.kind === 'mlp') {
    direct.push('backbone/dense_0');
  } else {
    direct.push('backbone/conv_0');
    if (plan.layout.tabularWidth > 0 || plan.layout.embeddings.length > 0) {
      direct.push('backbone/dense_0');
    }
  }

  return new Set(direct);
}

/** What a base gives a model: the weights to load and the reused heads. */
export interface BaseMatch {
  /** Values to load, by weight name. */
  load: Map<string, Float32Array>;
  /** Tasks whose head came from the base. */
  reusedHeads: string[];
}

/**
 * Matches base weights to a model's weights (in `names` order with shapes).
 * Every backbone weight must be in the base with its shape (input layers are
 * exempt with `newInputs`); a head is reused when all its weights match.
 */
export function matchBase(
  plan: ModelPlan,
  weights: { name: string; shape: number[] }[],
  base: BaseWeights,
): BaseMatch {
  const layers = backboneLayers(weights.map((w) => w.name));
  const inputs = inputLayers(plan, layers);
  const load = new Map<string, Float32Array>();
  const ordered = layers.flatMap((layer) =>
    weights.filter(
      (w) => w.name.startsWith('backbone/') && layerOf(w.name) === layer,
    ),
  );
  for (const { name, shape } of ordered) {
    const isInput = inputs.has(layerOf(name));
    if (isInput && base.newInputs) {
      continue;
    }
    const found = base.weights.get(name);
    if (!found) {
      throw new TrainingConfigError(
        'base',
        `layer ${name}: the base has no such weight; its backbone must ` +
          'match this spec (or set newInputs for changed input layers).',
      );
    }
    if (found.shape.join(',') !== shape.join(',')) {
      const inputsDiffer =
        isInput &&
        name.endsWith('/kernel') &&
        shape.length === 2 &&
        found.shape.length === 2 &&
        found.shape[1] === shape[1];
      throw new TrainingConfigError(
        'base',
        inputsDiffer
          ? `the base backbone takes ${found.shape[0]} inputs; these ` +
              `features give ${shape[0]} (layer ${name}; set newInputs to ` +
              'train fresh input layers).'
          : `layer ${name}: the base has shape [${found.shape.join(',')}], ` +
              `this model needs [${shape.join(',')}].`,
      );
    }
    load.set(name, found.values);
  }
  const reusedHeads: string[] = [];
  for (const task of plan.tasks) {
    const prefix = `head/${task.name}/`;
    const own = weights.filter((w) => w.name.startsWith(prefix));
    const theirs = [...base.weights.keys()].filter((n) => n.startsWith(prefix));
    const fits =
      own.length === theirs.length &&
      own.every(
        (w) => base.weights.get(w.name)?.shape.join(',') === w.shape.join(','),
      );
    if (fits) {
      own.forEach((w) => load.set(w.name, base.weights.get(w.name)!.values));
      reusedHeads.push(task.name);
    }
  }

  return { load, reusedHeads };
}

/** Decides, per epoch, which weights train and at what learning rate. */
export class FreezeSchedule {
  private readonly layerOrder: string[];

  constructor(
    private readonly options: FineTuneOptions,
    /** Trainable weight names, in the optimizer's order. */
    private readonly names: string[],
    /** The optimizer's learning rate. */
    private readonly peak: number,
  ) {
    this.layerOrder = backboneLayers(names);
    const freeze = options.freeze;
    if (freeze?.kind === 'layers' && freeze.count > this.layerOrder.length) {
      throw new TrainingConfigError(
        'freeze.count',
        `the backbone has ${this.layerOrder.length} layers ` +
          `(${this.layerOrder.join(', ')}); freeze at most that many.`,
      );
    }
  }

  /** Backbone layers frozen in `epoch`, in model order. */
  frozenLayers(epoch: number): string[] {
    const freeze = this.options.freeze ?? { kind: 'none' };
    switch (freeze.kind) {
      case 'backbone':
        return this.layerOrder;
      case 'layers':
        return this.layerOrder.slice(0, freeze.count);
      case 'two-stage':
        return epoch < freeze.frozenEpochs ? this.layerOrder : [];
      default:
        return [];
    }
  }

  /** Per trainable weight: whether it stays fixed in `epoch`. */
  frozen(epoch: number): boolean[] {
    const layers = new Set(this.frozenLayers(epoch));
    const heads = new Set(
      (this.options.freezeHeads ?? []).map((task) => `head/${task}/`),
    );

    return this.names.map(
      (name) =>
        layers.has(layerOf(name)) ||
        [...heads].some((prefix) => name.startsWith(prefix)),
    );
  }

  /** Absolute learning rates of both groups in `epoch`, before schedules. */
  groupRates(epoch: number): { backbone: number; heads: number } {
    const rates = this.options.learningRates;
    let backbone = rates?.backbone ?? this.peak;
    const freeze = this.options.freeze;
    if (freeze?.kind === 'two-stage' && epoch >= freeze.frozenEpochs) {
      backbone = freeze.unfrozenLearningRate ?? backbone / 10;
    }

    return { backbone, heads: rates?.heads ?? this.peak };
  }

  /** Per trainable weight: its learning rate as a multiple of the peak. */
  scales(epoch: number): number[] {
    const { backbone, heads } = this.groupRates(epoch);

    return this.names.map(
      (name) => (name.startsWith('backbone/') ? backbone : heads) / this.peak,
    );
  }
}

/**
 * The proximal (FedProx) term mu/2 * sum ||w - w_base||^2 over trainable,
 * unfrozen weights that came from the base: adds its gradient mu (w - w_base)
 * to `grads` in place and returns the term's value.
 */
export function addProximal(
  grads: tf.Tensor[],
  variables: tf.Variable[],
  anchors: (tf.Tensor | null)[],
  frozen: boolean[],
  mu: number,
): number {
  const active = variables
    .map((variable, i) => ({ variable, i, anchor: anchors[i] }))
    .filter(({ i, anchor }) => anchor && !frozen[i]);
  if (mu === 0 || active.length === 0) {
    return 0;
  }
  const penalty = tf.tidy(() => {
    const squares = active.map(({ variable, i, anchor }) => {
      const diff = tf.sub(variable, anchor!);
      const next = tf.keep(tf.add(grads[i], tf.mul(diff, mu)));
      grads[i].dispose();
      grads[i] = next;

      return tf.sum(tf.square(diff));
    });

    return tf.mul(tf.addN(squares), mu / 2);
  });
  const value = penalty.dataSync()[0];
  penalty.dispose();

  return value;
}
