import { z } from 'zod';

import { trainingConfigSchema, type TrainingConfig } from './training-config';

/** Which backbone weights a fine-tune keeps fixed. */
export const freezePolicySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('backbone') }).strict(),
  z
    .object({
      kind: z.literal('layers'),
      count: z.number().int('must be a whole number').min(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('two-stage'),
      frozenEpochs: z.number().int('must be a whole number').min(1),
      unfrozenLearningRate: z.number().positive().max(10).optional(),
    })
    .strict(),
]);

/** What fineTune accepts besides the base version. */
export const fineTuneOptionsSchema = z
  .object({
    freeze: freezePolicySchema.default({ kind: 'none' }),
    /** Task names whose reused heads stay exactly as in the base. */
    freezeHeads: z.array(z.string().min(1)).default([]),
    backboneLearningRate: z.number().positive().max(10).optional(),
    headLearningRate: z.number().positive().max(10).optional(),
  })
  .strict();

export type FineTuneOptions = z.infer<typeof fineTuneOptionsSchema>;

/** What a FINE_TUNE job carries in Job.config. */
export interface FineTuneJobConfig {
  /** The model the new version belongs to (the base's, or a new one). */
  modelId: string;
  baseVersionId: string;
  /** The tasks trained; their heads make up the new version. */
  taskIds: string[];
  options: TrainingConfig;
  fineTune: FineTuneOptions;
}

export const fineTuneTrainingSchema = trainingConfigSchema;

/** What mergeModelVersions accepts. */
export const mergeStrategySchema = z.enum([
  'fedavg',
  'uniform',
  'median',
  'trimmed-mean',
]);

/** What a MERGE job carries in Job.config. */
export interface MergeJobConfig {
  modelId: string;
  sources: { versionId: string; sampleCount: number; weight?: number }[];
  strategy: z.infer<typeof mergeStrategySchema>;
  trimRatio?: number;
}
