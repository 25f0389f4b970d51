export * from './contract';
export { detectFormat, sniffDelimited } from './detect';
export { ingestDataset, type IngestOptions, type IngestResult } from './ingest';
export {
  inferDataset,
  type InferenceResult,
  type InferOptions,
  type SampleValue,
} from './infer';
export {
  bufferInput,
  type Cell,
  type DatasetFormat,
  type DatasetInput,
  type ImageCell,
} from './input';
export { openTable } from './open-table';
export * from './problems';
export { ReportBuilder } from './report-builder';
export {
  DEFAULT_LIMITS,
  type ReadLimits,
  type ReadSettings,
  type RowBatch,
  type Table,
} from './table';
export {
  readShard,
  readShardDirectory,
  SHARD_VERSION,
  shardChecksum,
  type ShardColumnEntry,
  type ShardDirectory,
  verifyShard,
} from './shard-format';
export {
  manifestColumnsOf,
  type Shard,
  ShardBuilder,
  ShardSink,
  type ShardSinkOptions,
  type ShardInfo,
  type ShardManifest,
  type ShardManifestColumn,
  writeShards,
  type WriteShardsOptions,
} from './shard-writer';
export {
  packSplitCodes,
  selectSplit,
  SPLIT_CODES,
  SplitAssigner,
  type SplitName,
  type SplitSpec,
  unpackSplitCodes,
  validateSplitSpec,
} from './split';
