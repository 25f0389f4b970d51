import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import {
  FreezeSchedule,
  layerOf,
  matchBase,
  type FineTuneOptions,
} from './finetune';
import type { BuiltModel, ModelPlan } from './model';

/** What a fine-tune sets for one epoch. */
export interface EpochSetting {
  /** Per trainable weight: kept fixed this epoch. */
  frozen: boolean[];
  /** Per trainable weight: learning rate as a multiple of the peak. */
  scales: number[];
  /** Absolute group learning rates before schedules. */
  rates: { backbone: number; heads: number };
  trainableBackbone: boolean;
  frozenLayers: string[];
}

/** The fine-tuning side of one training run. */
export interface FineTuneRun {
  /** Per trainable weight: the task index of its head, -1 for backbone. */
  owners: number[];
  /** Per trainable weight: its base value, when the proximal term is on. */
  anchors: (tf.Tensor | null)[] | null;
  mu: number;
  /** Tasks whose head was loaded from the base. */
  reusedHeads: string[];
  /** Applies the epoch's freezing (batch norm modes too) and says it. */
  enterEpoch(epoch: number): EpochSetting;
  dispose(): void;
}

type CallFn = (
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor | tf.Tensor[];

/**
 * Loads base weights (unless resuming, when the checkpoint holds them) and
 * prepares the per-epoch freezing, learning rates and proximal anchors.
 * Returns null when no fine-tuning option is set.
 */
export function startFineTune(
  options: FineTuneOptions,
  plan: ModelPlan,
  built: BuiltModel,
  peak: number,
  resuming: boolean,
): FineTuneRun | null {
  if (!options.base && !options.learningRates) {
    return null;
  }
  const weights = built.training.weights;
  const trainable = built.training.trainableWeights;
  const names = trainable.map((w) => w.originalName);
  const match = options.base
    ? matchBase(
        plan,
        weights.map((w) => ({
          name: w.originalName,
          shape: w.shape as number[],
        })),
        options.base,
      )
    : null;
  options.freezeHeads?.forEach((task, i) => {
    if (!match?.reusedHeads.includes(task)) {
      throw new TrainingConfigError(
        `freezeHeads[${i}]`,
        `the base has no head for task "${task}" with these shapes, so ` +
          'its head starts fresh and cannot be frozen.',
      );
    }
  });
  const schedule = new FreezeSchedule(options, names, peak);
  if (match && !resuming) {
    tf.tidy(() =>
      weights.forEach((w) => {
        const values = match.load.get(w.originalName);
        if (values) {
          w.write(tf.tensor(values, w.shape as number[]));
        }
      }),
    );
  }
  const mu = options.proximal?.mu ?? 0;
  const anchors =
    match && mu > 0
      ? trainable.map((w) => {
          const values = match.load.get(w.originalName);

          return values ? tf.tensor(values, w.shape as number[]) : null;
        })
      : null;
  // Frozen batch-norm layers run in inference mode, so their moving
  // statistics stay as loaded.
  const frozenNorms = new Set<string>();
  const norms = built.training.layers.filter(
    (layer) =>
      layer.getClassName() === 'BatchNormalization' &&
      layer.name.startsWith('backbone/'),
  );
  const originals = norms.map((layer) => {
    const holder = layer as unknown as { call: CallFn };
    const original = holder.call;
    holder.call = (inputs, kwargs) =>
      original.call(
        layer,
        inputs,
        frozenNorms.has(layer.name) ? { ...kwargs, training: false } : kwargs,
      );

    return { holder, original };
  });
  const owners = names.map((name) =>
    name.startsWith('backbone/')
      ? -1
      : plan.tasks.findIndex((t) => name.startsWith(`head/${t.name}/`)),
  );

  return {
    owners,
    anchors,
    mu,
    reusedHeads: match?.reusedHeads ?? [],
    enterEpoch(epoch) {
      const frozen = schedule.frozen(epoch);
      if (frozen.length > 0 && frozen.every(Boolean)) {
        throw new TrainingConfigError(
          'freezeHeads',
          `nothing is left to train in epoch ${epoch}: the backbone and ` +
            'every head are frozen.',
        );
      }
      const layers = schedule.frozenLayers(epoch);
      frozenNorms.clear();
      norms.forEach((layer) => {
        if (layers.includes(layerOf(`${layer.name}/gamma`))) {
          frozenNorms.add(layer.name);
        }
      });

      return {
        frozen,
        scales: schedule.scales(epoch),
        rates: schedule.groupRates(epoch),
        trainableBackbone: layers.length === 0,
        frozenLayers: [
          ...layers,
          ...(options.freezeHeads ?? []).map((task) => `head/${task}`),
        ],
      };
    },
    dispose() {
      originals.forEach(({ holder, original }) => (holder.call = original));
      tf.dispose((anchors ?? []).filter((a): a is tf.Tensor => a !== null));
    },
  };
}
