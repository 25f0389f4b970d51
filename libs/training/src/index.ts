export * from './artifact';
export * from './augmentation';
export * from './backend';
export * from './balancing';
export * from './checkpoint';
export * from './data';
export * from './errors';
export * from './history';
export * from './metrics';
export * from './optimizer';
export * from './pooled-schema';
export * from './predictor';
export * from './preprocessing';
export * from './random';
export * from './spec';
export * from './tasks';
export * from './train';
export * from './train-options';
export type { BuiltModel, ModelPlan } from './model';
export { planModel, type BaseStatistics } from './plan';
export * from './artifact-zip';
export * from './evaluate-weights';
export type {
  BaseWeights,
  FineTuneOptions,
  FreezePolicy,
  GroupLearningRates,
} from './finetune';
export {
  bytesOfSpecs,
  namedWeightsOf,
  weightsFromArtifact,
  weightStreamOf,
  type NamedWeights,
} from './named-weights';
export * from './import-backbone';
