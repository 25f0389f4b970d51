import { createHash } from 'node:crypto';

import type {
  ColumnBatch,
  ColumnData,
  ColumnType,
  ImageShape,
} from './contract';
import { DatasetError, DatasetProblemCode } from './problems';

/**
 * A shard file:
 *
 *   bytes 0-3   "CHSD"
 *   bytes 4-7   format version, uint32 little-endian (1)
 *   bytes 8-11  length of the directory, uint32 little-endian
 *   then        the directory: UTF-8 JSON, `ShardDirectory`
 *   then        each column's values at its `offset`, aligned to 8 bytes:
 *               numeric, integer, boolean: float32 LE, NaN = missing;
 *               categorical: int32 LE vocabulary index, -1 = missing;
 *               image: uint8, rows x height x width x channels.
 *
 * Text columns are not stored. Values are little-endian; typed-array views
 * on the bytes assume a little-endian machine (every platform we run on).
 */
export const SHARD_MAGIC = 'CHSD';
export const SHARD_VERSION = 1;

export interface ShardColumnEntry {
  name: string;
  type: Exclude<ColumnType, 'text'>;
  offset: number;
  byteLength: number;
  image?: ImageShape;
}

export interface ShardDirectory {
  rowCount: number;
  columns: ShardColumnEntry[];
}

export interface EncodableColumn {
  name: string;
  type: Exclude<ColumnType, 'text'>;
  data: ColumnData;
  image?: ImageShape;
}

/** Lays out columns (already holding exactly `rowCount` rows) as a shard. */
export function encodeShard(
  rowCount: number,
  columns: EncodableColumn[],
): Buffer {
  // The directory's length depends on the offsets it lists; offsets are
  // computed from a padded upper bound of that length so one pass suffices.
  const draft = JSON.stringify({
    rowCount,
    columns: columns.map((c) => ({
      name: c.name,
      type: c.type,
      offset: 0,
      byteLength: c.data.byteLength,
      image: c.image,
    })),
  });
  const reserve = align8(12 + Buffer.byteLength(draft) + 24 * columns.length);
  let offset = reserve;
  const entries: ShardColumnEntry[] = columns.map((c) => {
    const entry: ShardColumnEntry = {
      name: c.name,
      type: c.type,
      offset,
      byteLength: c.data.byteLength,
    };
    if (c.image) entry.image = c.image;
    offset = align8(offset + c.data.byteLength);

    return entry;
  });
  const directory = Buffer.from(JSON.stringify({ rowCount, columns: entries }));
  if (12 + directory.length > reserve) {
    throw new Error('The shard directory outgrew the space reserved for it.');
  }
  const out = Buffer.alloc(offset);
  out.write(SHARD_MAGIC, 0, 'latin1');
  out.writeUInt32LE(SHARD_VERSION, 4);
  out.writeUInt32LE(directory.length, 8);
  directory.copy(out, 12);
  columns.forEach((c, i) => {
    const bytes = new Uint8Array(
      c.data.buffer,
      c.data.byteOffset,
      c.data.byteLength,
    );
    out.set(bytes, entries[i].offset);
  });

  return out;
}

/** The directory of a shard, validated against the bytes it describes. */
export function readShardDirectory(bytes: Uint8Array): ShardDirectory {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 12 || buffer.toString('latin1', 0, 4) !== SHARD_MAGIC) {
    throw corrupt('it does not start with the shard magic "CHSD"');
  }
  const version = buffer.readUInt32LE(4);
  if (version !== SHARD_VERSION) {
    throw corrupt(`its format version ${version} is not supported`);
  }
  const length = buffer.readUInt32LE(8);
  if (12 + length > buffer.length) throw corrupt('its directory is cut off');
  let directory: ShardDirectory;
  try {
    directory = JSON.parse(buffer.toString('utf8', 12, 12 + length));
  } catch {
    throw corrupt('its directory is not valid JSON');
  }
  for (const column of directory.columns) {
    const expected = column.byteLength / bytesPerRow(column);
    if (
      column.offset + column.byteLength > buffer.length ||
      expected !== directory.rowCount
    ) {
      throw corrupt(`column "${column.name}" does not fit the shard`);
    }
  }

  return directory;
}

/**
 * Turns shard bytes into a batch. Views share the bytes when they are
 * aligned (no copy); otherwise the values are copied once.
 */
export function readShard(
  bytes: Uint8Array,
  options: { sha256?: string } = {},
): ColumnBatch {
  if (options.sha256 !== undefined) verifyShard(bytes, options.sha256);
  const directory = readShardDirectory(bytes);
  const columns: Record<string, ColumnData> = {};
  for (const column of directory.columns) {
    const start = bytes.byteOffset + column.offset;
    const length = column.byteLength;
    const aligned = start % 4 === 0;
    const source = aligned
      ? bytes.buffer
      : Uint8Array.from(bytes.subarray(column.offset, column.offset + length))
          .buffer;
    const base = aligned ? start : 0;
    switch (column.type) {
      case 'categorical':
        columns[column.name] = new Int32Array(source, base, length / 4);
        break;
      case 'image':
        columns[column.name] = new Uint8Array(source, base, length);
        break;
      default:
        columns[column.name] = new Float32Array(source, base, length / 4);
    }
  }

  return { rowCount: directory.rowCount, columns };
}

export function shardChecksum(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Throws `SHARD_CHECKSUM_MISMATCH` when the bytes are not the ones listed. */
export function verifyShard(bytes: Uint8Array, sha256: string): void {
  const actual = shardChecksum(bytes);
  if (actual !== sha256) {
    throw new DatasetError(
      DatasetProblemCode.ShardChecksumMismatch,
      `The shard's sha256 is ${actual} but the manifest lists ${sha256}; ` +
        'the shard was changed or damaged after it was written.',
    );
  }
}

function bytesPerRow(column: ShardColumnEntry): number {
  if (column.type !== 'image') return 4;
  const shape = column.image;

  return shape ? shape.height * shape.width * shape.channels : NaN;
}

function corrupt(reason: string): DatasetError {
  return new DatasetError(
    DatasetProblemCode.ShardCorrupt,
    `The bytes are not a readable shard: ${reason}.`,
  );
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
