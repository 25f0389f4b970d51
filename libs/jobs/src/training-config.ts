import { z } from 'zod';

import type { DatasetSchema } from '#libs/datasets';
import type { TaskKind } from '#libs/db';
import type {
  BackboneOptions,
  FeatureOptions,
  ModelSpec,
  TaskOptions,
  TrainOptions,
} from '#libs/training';

/** What startTraining accepts; every field has a default. */
export const trainingConfigSchema = z
  .object({
    epochs: z
      .number()
      .int('must be a whole number')
      .min(1)
      .max(1000)
      .default(10),
    batchSize: z
      .number()
      .int('must be a whole number')
      .min(1)
      .max(4096)
      .default(32),
    optimizer: z.enum(['adam', 'adamw', 'sgd']).default('adam'),
    learningRate: z
      .number()
      .positive('must be greater than 0')
      .max(10)
      .default(0.001),
    balancing: z
      .enum(['fixed', 'equal', 'uncertainty', 'gradnorm', 'dwa', 'pcgrad'])
      .default('fixed'),
    seed: z.number().int('must be a whole number').default(1),
    earlyStoppingPatience: z.number().int().min(1).optional(),
    clipNorm: z.number().positive().optional(),
    /** Store a checkpoint every this many epochs (and after the last). */
    checkpointEveryEpochs: z.number().int().min(1).default(1),
    /** Also store one whenever this many minutes passed since the last. */
    checkpointEveryMinutes: z.number().positive().optional(),
  })
  .strict();

export type TrainingConfig = z.infer<typeof trainingConfigSchema>;

/** What a TRAIN job carries in Job.config. */
export interface TrainingJobConfig {
  modelId: string;
  options: TrainingConfig;
}

/** The parts of the Model row (with its tasks) a run is built from. */
export interface ModelForTraining {
  spec: unknown;
  tasks: {
    name: string;
    kind: TaskKind;
    targets: string[];
    lossWeight: number;
    datasetId: string;
    dataset: { id: string; schema: unknown };
  }[];
}

/** Features and backbone as stored in Model.spec. */
export interface StoredModelSpec {
  features: (string | FeatureOptions)[];
  backbone: BackboneOptions;
}

/** Turns a model and a validated config into libs/training's inputs. */
export function buildTrainingRun(
  model: ModelForTraining,
  config: TrainingJobConfig,
): {
  spec: ModelSpec;
  options: Omit<TrainOptions, 'spec' | 'data'> & { epochs: number };
} {
  const stored = model.spec as StoredModelSpec;
  const several = new Set(model.tasks.map((t) => t.datasetId)).size > 1;
  const tasks: TaskOptions[] = model.tasks.map((task) => ({
    name: task.name,
    kind: task.kind.toLowerCase() as TaskOptions['kind'],
    target: task.kind === 'MULTILABEL' ? task.targets : task.targets[0],
    weight: task.lossWeight,
    ...(several ? { source: task.datasetId } : {}),
  }));
  const options = config.options;

  return {
    spec: { features: stored.features, backbone: stored.backbone, tasks },
    options: {
      epochs: options.epochs,
      batchSize: options.batchSize,
      optimizer: {
        kind: options.optimizer,
        learningRate: options.learningRate,
      },
      balancing: { strategy: options.balancing },
      seed: options.seed,
      ...(options.clipNorm ? { clipNorm: options.clipNorm } : {}),
      ...(options.earlyStoppingPatience
        ? { earlyStopping: { patience: options.earlyStoppingPatience } }
        : {}),
    },
  };
}

/**
 * The datasets a model trains on, each once, in the order of its tasks, as
 * libs/training names its sources; undefined while one has no schema yet.
 */
export function trainingSchemas(
  model: ModelForTraining,
): { name: string; schema: DatasetSchema }[] | undefined {
  const datasets = model.tasks
    .map((task) => task.dataset)
    .filter((d, i, all) => all.findIndex((x) => x.id === d.id) === i);
  if (datasets.some((d) => !d.schema)) {
    return undefined;
  }

  return datasets.map((d) => ({
    name: d.id,
    schema: d.schema as DatasetSchema,
  }));
}
