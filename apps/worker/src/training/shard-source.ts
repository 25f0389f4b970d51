import type {
  ColumnBatch,
  DatasetSchema,
  ShardManifest,
  SplitName,
} from '#libs/datasets';
import { readShard, selectSplit, unpackSplitCodes } from '#libs/datasets';
import type { ObjectStorage } from '#libs/storage';
import { categoryMaps, recodeBatches } from '#libs/training';

/** Options for {@link shardBatches}. */
export interface ShardBatchesOptions {
  storage: ObjectStorage;
  /** Key prefix of the dataset's shards (ends with "/"). */
  prefix: string;
  manifest: ShardManifest;
  split: SplitName;
}

/**
 * Streams one split of a sharded dataset, one shard in memory at a time,
 * each checked against its manifest checksum.
 */
export async function* shardBatches(
  options: ShardBatchesOptions,
): AsyncGenerator<ColumnBatch> {
  for (const info of options.manifest.shards) {
    const chunks: Buffer[] = [];
    for await (const chunk of await options.storage.get(
      `${options.prefix}${info.name}`,
    )) {
      chunks.push(chunk as Buffer);
    }
    const batch = readShard(Buffer.concat(chunks), { sha256: info.sha256 });
    const selected = info.split
      ? selectSplit(
          batch,
          unpackSplitCodes(info.split, batch.rowCount),
          options.split,
        )
      : options.split === 'train'
        ? batch
        : { rowCount: 0, columns: {} };
    if (selected.rowCount > 0) {
      yield selected;
    }
  }
}

/** Reads a JSON object from storage. */
export async function readJson<T>(
  storage: ObjectStorage,
  key: string,
): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.get(key)) {
    chunks.push(chunk as Buffer);
  }

  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/**
 * Maps categorical codes of batches read with one dataset's vocabularies
 * onto another's (values the target has not seen become missing, -1), so
 * shards of a silo encode as the model's reference dataset does.
 */
export function remapCategories(
  batches: AsyncIterable<ColumnBatch>,
  from: DatasetSchema,
  to: DatasetSchema,
): AsyncIterable<ColumnBatch> {
  const vocabularies = new Map(
    to.columns.flatMap((c) => (c.vocabulary ? [[c.name, c.vocabulary]] : [])),
  );

  return recodeBatches(batches, categoryMaps(from, vocabularies));
}
