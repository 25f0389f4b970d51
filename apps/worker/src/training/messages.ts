import type { DatasetSchema } from '#libs/datasets';
import type { FreezePolicy, ModelSpec, TrainOptions } from '#libs/training';

import type { StepWeights } from './step-weights';

/** What the worker tells its training child. */
export interface TrainChildInput {
  storage: {
    endpoint: string;
    accessKey: string;
    secretKey: string;
    region: string;
    bucket: string;
  };
  /** A checkpoint of an earlier attempt to continue from. */
  resumeFrom?: string;
  /**
   * Where this attempt writes checkpoints (a prefix ending with "/") and
   * how often: every N epochs and after the last, or after M minutes.
   * Unset: none (federated local trainings start over from the round's
   * weights).
   */
  checkpoint?: { prefix: string; everyEpochs: number; everyMinutes?: number };
  /**
   * Once this many seconds have passed, the child stores a checkpoint at
   * the end of the current epoch and stops with `segment-ended`. Unset: no
   * segments (federated rounds, whose local trainings are short).
   */
  segmentSeconds?: number;
  /** Where the artifact zip goes once training ends. */
  artifactKey: string;
  spec: ModelSpec;
  /**
   * Datasets by source name: the schema the model is planned on and the
   * shard prefix. `dataSchema` is the shards' own schema when they belong to
   * another dataset (a federated silo): categorical codes are mapped from it
   * onto `schema`'s vocabularies, so every silo encodes alike.
   */
  sources: {
    name: string;
    schema: DatasetSchema;
    shardPrefix: string;
    dataSchema?: DatasetSchema;
  }[];
  /**
   * train (default); init: store the untrained, seeded model as the
   * artifact; evaluate: report the base's validation metrics and stop.
   */
  mode?: 'train' | 'init' | 'evaluate';
  /** Start from these weights (fine-tunes and federated rounds). */
  base?: {
    /** An artifact zip, or a `.weights` file (an imported backbone). */
    key: string;
    /** A weights file whose head/* weights replace the base's. */
    headsKey?: string;
    freeze?: FreezePolicy;
    freezeHeads?: string[];
    learningRates?: { backbone?: number; heads?: number };
    /** FedProx: pull toward the base with this weight. */
    proximalMu?: number;
  };
  /** Federated local training: store the weights here, no artifact. */
  updateKey?: string;
  options: Pick<
    TrainOptions,
    | 'epochs'
    | 'batchSize'
    | 'optimizer'
    | 'schedule'
    | 'clipNorm'
    | 'balancing'
    | 'earlyStopping'
    | 'seed'
  >;
}

export type ChildMessage =
  | { type: 'backend'; backend: string }
  | {
      type: 'epoch';
      epoch: number;
      trainLoss: Record<string, number>;
      validation: Record<string, Record<string, number>>;
      combinedScore: number;
      /** Set when this epoch's checkpoint was stored. */
      checkpointKey?: string;
      /** Task weights of this epoch's steps that are kept (see keepsStep). */
      stepWeights: StepWeights[];
    }
  | {
      type: 'done';
      /** segment-ended: stopped at a stored checkpoint to continue later. */
      status: 'completed' | 'early-stopped' | 'cancelled' | 'segment-ended';
      sha256?: string;
      sizeBytes?: number;
      metrics?: Record<string, Record<string, number>>;
      /** Training rows seen per epoch (the sample count of an update). */
      trainRows?: number;
      /** Per task: backbone plus that head, stored beside the artifact. */
      taskArtifacts?: Record<
        string,
        { key: string; sha256: string; sizeBytes: number }
      >;
    }
  | {
      type: 'failed';
      code: 'BAD_USER_INPUT' | 'DIVERGED' | 'ERROR';
      message: string;
      field?: string;
    };

export type ParentMessage =
  { type: 'start'; input: TrainChildInput } | { type: 'cancel' };
