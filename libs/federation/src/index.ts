export * from './aggregate';
export {
  openArtifactWeights,
  readArtifactMetadata,
  weightSpecsOfArtifact,
  type ArtifactMetadata,
  type ArtifactWeightsReader,
  type LayerJson,
  type ModelJson,
} from './artifact-reader';
export * from './errors';
export * from './export';
export * from './merge';
export {
  openWeightsFile,
  storeWriter,
  storeWeights,
  writeArtifact,
  type StoredObject,
  type WriteArtifactOptions,
} from './storage-io';
export * from './strategies';
export type { NamedTensor, NamedWeights, WeightSpec } from './tensors';
export * from './validate';
export * from './weights-file';
