import { z } from 'zod';
import {
  trainingConfigSchema,
  type TrainingJobConfig,
} from './training-config';

/** What startFederatedRun accepts; every field has a default. */
export const federatedRunConfigSchema = z
  .object({
    rounds: z
      .number()
      .int('must be a whole number')
      .min(1)
      .max(1000)
      .default(5),
    localEpochs: z
      .number()
      .int('must be a whole number')
      .min(1)
      .max(100)
      .default(1),
    batchSize: z
      .number()
      .int('must be a whole number')
      .min(1)
      .max(4096)
      .default(32),
    learningRate: z.number().positive().max(10).default(0.001),
    /** Share of participants asked each round (at least minClients). */
    fractionPerRound: z.number().gt(0).max(1).default(1),
    /** Updates needed to aggregate a round; fewer by the timeout fails it. */
    minClients: z.number().int('must be a whole number').min(1).default(1),
    roundTimeoutSeconds: z
      .number()
      .int('must be a whole number')
      .min(5)
      .max(7 * 24 * 3600)
      .default(600),
    strategy: z
      .enum(['fedavg', 'fedprox', 'fedadam', 'fedyogi'])
      .default('fedavg'),
    /** FedProx: weight of the proximal term. */
    mu: z.number().min(0).max(100).default(0.01),
    serverLearningRate: z.number().positive().max(10).optional(),
    beta1: z.number().min(0).lt(1).optional(),
    beta2: z.number().min(0).lt(1).optional(),
    tau: z.number().positive().optional(),
    /** all: every weight; backbone: heads stay with each participant. */
    aggregate: z.enum(['all', 'backbone']).default('all'),
    /** Scale each update (minus the global) to at most this L2 norm. */
    clipNorm: z.number().positive().optional(),
    /** Gaussian noise std = noiseMultiplier * clipNorm / updates. */
    noiseMultiplier: z.number().min(0).max(100).optional(),
    /** Largest sample count an update may claim. */
    maxSampleCount: z.number().int().min(1).default(1_000_000),
    /** Reject updates whose norm exceeds this, when clipNorm is not set. */
    maxUpdateNorm: z.number().positive().default(1e4),
    /** Alias set on the final global version. */
    alias: z
      .string()
      .regex(
        /^[a-z][a-z0-9_-]{0,39}$/,
        'must be 1 to 40 lower-case letters, digits, _ or -, starting with a letter',
      )
      .default('federated'),
    seed: z.number().int('must be a whole number').default(1),
    /** Start from this version of the model instead of fresh weights. */
    initialVersionId: z.uuid('must be a version id').optional(),
  })
  .strict()
  .refine((c) => c.noiseMultiplier === undefined || c.clipNorm !== undefined, {
    message: 'needs clipNorm: the noise is scaled by the clipping bound',
    path: ['noiseMultiplier'],
  });

export type FederatedRunConfig = z.infer<typeof federatedRunConfigSchema>;

/** What a FEDERATED_ROUND job carries: open a round, or close it. */
export interface FederatedRoundJobConfig {
  runId: string;
  round: number;
  phase: 'open' | 'close';
}

/** Marks a TRAIN job as a silo's local training in a federated round. */
export interface FederatedLocalContext {
  runId: string;
  round: number;
  participantId: string;
}

/**
 * Storage keys of a run's objects. `tag` tells the writers of one object
 * apart (attempts, uploads), so a late writer never overwrites what another
 * stored.
 */
export const federatedKeys = (projectId: string, runId: string) => {
  const root = `projects/${projectId}/federated/${runId}/`;

  return {
    update: (round: number, participantId: string, tag: string | number) =>
      `${root}rounds/${round}/updates/${participantId}-${tag}.weights`,
    serverState: (round: number, tag: string | number) =>
      `${root}server-state/${round}-${tag}.weights`,
  };
};

/** The local training every participant of a run does, as a job config. */
export const localTrainingConfig = (
  modelId: string,
  config: FederatedRunConfig,
): TrainingJobConfig => ({
  modelId,
  options: trainingConfigSchema.parse({
    epochs: config.localEpochs,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    seed: config.seed,
  }),
});
