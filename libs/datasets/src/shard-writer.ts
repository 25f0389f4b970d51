import type {
  ColumnData,
  ColumnSchema,
  DatasetSchema,
  ImageShape,
} from './contract';
import { categoryKey, isMissing } from './column-stats';
import { type Cell, type DatasetInput, isImageCell } from './input';
import { openTable } from './open-table';
import { DatasetError, DatasetProblemCode } from './problems';
import {
  packSplitCodes,
  SplitAssigner,
  type SplitName,
  type SplitSpec,
  validateSplitSpec,
} from './split';
import {
  encodeShard,
  type EncodableColumn,
  shardChecksum,
} from './shard-format';
import { DEFAULT_LIMITS, type ReadLimits, type ReadSettings } from './table';

export interface ShardManifestColumn {
  name: string;
  type: Exclude<ColumnSchema['type'], 'text'>;
  vocabulary?: string[];
  image?: ImageShape;
}

export interface ShardInfo {
  index: number;
  /** Suggested object name, `shard-00000.bin`. */
  name: string;
  rowCount: number;
  /** 0-based position of the shard's first row among all stored rows. */
  firstRow: number;
  byteLength: number;
  sha256: string;
  /** Split code per row (2 bits a row, base64); with a split spec only. */
  split?: string;
}

/**
 * Everything a trainer needs to stream a dataset: the columns carried, the
 * shards in order with their row counts and checksums, and the split.
 * Shuffling across shards: pick shards in a seeded order, then shuffle rows
 * within a buffer of a few shards.
 */
export interface ShardManifest {
  format: 'chorus-shards';
  version: 1;
  rowCount: number;
  rowsPerShard: number;
  columns: ShardManifestColumn[];
  shards: ShardInfo[];
  split?: { spec: SplitSpec; counts: Record<SplitName, number> };
}

export interface Shard {
  info: ShardInfo;
  bytes: Buffer;
}

export interface WriteShardsOptions {
  /** `InferenceResult.settings` from the first pass. */
  settings: ReadSettings;
  /** `InferenceResult.schema` from the first pass. */
  schema: DatasetSchema;
  /** Called with each finished shard; the next is built once it resolves. */
  onShard: (shard: Shard) => Promise<void> | void;
  /** Rows per shard; by default about 8 MiB of values per shard. */
  rowsPerShard?: number;
  /** Assigns every row to train, validation or test while writing. */
  split?: SplitSpec;
  /** Called after each shard with the number of rows written so far. */
  onProgress?: (rows: number) => void;
  limits?: Partial<ReadLimits>;
  /** The same as `InferOptions.fastUnquoted`; use the same value. */
  fastUnquoted?: boolean;
}

const TARGET_SHARD_BYTES = 8 * 1024 * 1024;
const NUMBER = 0;
const CATEGORY = 1;
const BOOLEAN = 2;
const IMAGE = 3;

/**
 * The second pass: re-reads the dataset with the settled settings and
 * schema and writes fixed-size columnar shards, one in memory at a time.
 * Rows that the first pass reported as unreadable (ragged rows, broken
 * images) are skipped here too, so row counts match the schema.
 */
export async function writeShards(
  input: DatasetInput,
  options: WriteShardsOptions,
): Promise<ShardManifest> {
  const { schema } = options;
  const sink = new ShardSink({ ...options, columns: schema.columns });
  const table = await openTable(input, options.settings, {
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    fastUnquoted: options.fastUnquoted,
  });
  const names = schema.columns.map((c) => c.name);
  if (table.columns.join('\u0000') !== names.join('\u0000')) {
    throw new Error(
      'The file no longer has the columns of the schema; run inference again.',
    );
  }
  for await (const batch of table.batches) {
    for (const row of batch.rows) {
      const flushing = sink.push(row);
      if (flushing) await flushing;
    }
  }
  await sink.end();

  return sink.manifest();
}

export interface ShardSinkOptions {
  /** The columns rows hold, in order; text columns are not stored. */
  columns: ColumnSchema[];
  onShard: WriteShardsOptions['onShard'];
  onProgress?: WriteShardsOptions['onProgress'];
  rowsPerShard?: number;
  split?: SplitSpec;
  /** See `ShardBuilder`: lets vocabularies grow while rows stream by. */
  growVocabulary?: number;
}

/**
 * Rows in, shards out: fills one shard at a time, assigns splits, hands
 * each finished shard to `onShard` and keeps the manifest's shard list.
 */
export class ShardSink {
  readonly builder: ShardBuilder;
  readonly shards: ShardInfo[] = [];
  private rowCount = 0;
  private readonly assigner: SplitAssigner | undefined;
  private readonly stratifyIndex: number;
  private readonly codes: Uint8Array;

  constructor(private readonly options: ShardSinkOptions) {
    const { columns, split } = options;
    this.builder = new ShardBuilder(
      columns,
      options.rowsPerShard,
      options.growVocabulary,
    );
    if (split) validateSplitSpec(split);
    this.assigner = split ? new SplitAssigner(split) : undefined;
    const stratify = split?.stratifyBy;
    this.stratifyIndex =
      stratify === undefined
        ? -1
        : columns.findIndex((c) => c.name === stratify);
    if (stratify !== undefined && this.stratifyIndex < 0) {
      throw new DatasetError(
        DatasetProblemCode.InvalidOptions,
        `The split cannot be stratified by "${stratify}": the dataset has ` +
          `no such column (columns: ${columns.map((c) => c.name).join(', ')}).`,
        { column: stratify },
      );
    }
    this.codes = new Uint8Array(this.builder.rowsPerShard);
  }

  /** Adds a row; returns a promise only when a shard is being handed out. */
  push(row: Cell[]): Promise<void> | undefined {
    const builder = this.builder;
    if (this.assigner) {
      const key =
        this.stratifyIndex < 0 ? '' : builder.keyOf(row, this.stratifyIndex);
      this.codes[builder.rowCount] = this.assigner.next(key);
    }
    builder.push(row);

    return builder.rowCount === builder.rowsPerShard ? this.flush() : undefined;
  }

  /** Hands out the last, shorter shard. */
  async end(): Promise<void> {
    if (this.builder.rowCount > 0) await this.flush();
  }

  manifest(columns = this.builder.manifestColumns()): ShardManifest {
    const manifest: ShardManifest = {
      format: 'chorus-shards',
      version: 1,
      rowCount: this.rowCount,
      rowsPerShard: this.builder.rowsPerShard,
      columns,
      shards: this.shards,
    };
    if (this.assigner && this.options.split) {
      manifest.split = {
        spec: this.options.split,
        counts: { ...this.assigner.counts },
      };
    }

    return manifest;
  }

  private async flush(): Promise<void> {
    const builder = this.builder;
    const bytes = builder.finish();
    const index = this.shards.length;
    const info: ShardInfo = {
      index,
      name: `shard-${String(index).padStart(5, '0')}.bin`,
      rowCount: builder.rowCount,
      firstRow: this.rowCount,
      byteLength: bytes.length,
      sha256: shardChecksum(bytes),
    };
    if (this.assigner) {
      info.split = packSplitCodes(this.codes.subarray(0, info.rowCount));
    }
    this.rowCount += info.rowCount;
    this.shards.push(info);
    builder.reset();
    await this.options.onShard({ info, bytes });
    this.options.onProgress?.(this.rowCount);
  }
}

/** The columns shards carry (all but text), as the manifest lists them. */
export function manifestColumnsOf(
  columns: ColumnSchema[],
): ShardManifestColumn[] {
  return columns
    .filter((schema) => schema.type !== 'text')
    .map((schema) => {
      const column: ShardManifestColumn = {
        name: schema.name,
        type: schema.type as ShardManifestColumn['type'],
      };
      if (schema.vocabulary) column.vocabulary = schema.vocabulary;
      if (schema.image) column.image = schema.image;

      return column;
    });
}

/** Encodes rows into the columns of one shard. */
export class ShardBuilder {
  readonly rowsPerShard: number;
  rowCount = 0;
  private readonly carried: { index: number; schema: ColumnSchema }[];
  private readonly buffers: ColumnData[];
  private readonly vocabularies: (Map<string, number> | undefined)[];
  /** Per carried column: how it is encoded, and where it is in a row. */
  private readonly kinds: Uint8Array;
  private readonly sources: Int32Array;

  /** Codes past the given vocabulary are added up to this many entries. */
  private readonly growLimit: number;
  private readonly overflowed = new Set<number>();

  /**
   * @param growVocabulary how many entries categorical vocabularies may
   *   reach by adding unseen values in order of appearance (for writing
   *   while inference still runs); 0 keeps the given vocabularies.
   */
  constructor(
    columns: ColumnSchema[],
    rowsPerShard?: number,
    growVocabulary = 0,
  ) {
    this.growLimit = growVocabulary;
    this.carried = columns
      .map((schema, index) => ({ schema, index }))
      .filter(({ schema }) => schema.type !== 'text');
    const rowBytes = this.carried.reduce(
      (sum, { schema }) => sum + bytesPerRow(schema),
      0,
    );
    this.rowsPerShard =
      rowsPerShard ??
      Math.min(
        65_536,
        Math.max(64, Math.floor(TARGET_SHARD_BYTES / Math.max(rowBytes, 1))),
      );
    this.buffers = this.carried.map(({ schema }) => this.allocate(schema));
    this.kinds = Uint8Array.from(this.carried, ({ schema }) =>
      schema.type === 'categorical'
        ? CATEGORY
        : schema.type === 'boolean'
          ? BOOLEAN
          : schema.type === 'image'
            ? IMAGE
            : NUMBER,
    );
    this.sources = Int32Array.from(this.carried, ({ index }) => index);
    this.vocabularies = this.carried.map(({ schema }) =>
      schema.type === 'categorical'
        ? new Map((schema.vocabulary ?? []).map((v, i) => [v, i]))
        : undefined,
    );
  }

  manifestColumns(): ShardManifestColumn[] {
    return manifestColumnsOf(this.carried.map(({ schema }) => schema));
  }

  push(row: Cell[]): void {
    const at = this.rowCount;
    const { kinds, sources, buffers } = this;
    for (let c = 0; c < kinds.length; c++) {
      const cell = row[sources[c]];
      switch (kinds[c]) {
        case NUMBER:
          buffers[c][at] =
            typeof cell === 'number' && Number.isFinite(cell)
              ? cell
              : numberOf(cell);
          break;
        case CATEGORY:
          buffers[c][at] = this.categoryOf(cell, c);
          break;
        case BOOLEAN:
          buffers[c][at] = booleanOf(cell);
          break;
        default: {
          const size = bytesPerRow(this.carried[c].schema);
          if (isImageCell(cell) && cell.pixels.length === size) {
            (buffers[c] as Uint8Array).set(cell.pixels, at * size);
          }
        }
      }
    }
    this.rowCount += 1;
  }

  /** The stratum key of a row: the value as it is encoded in the shard. */
  keyOf(row: Cell[], columnIndex: number): string {
    const c = this.carried.findIndex(({ index }) => index === columnIndex);
    if (c < 0) return String(row[columnIndex]);
    const type = this.carried[c].schema.type;
    const cell = row[columnIndex];
    if (type === 'categorical') return String(this.categoryOf(cell, c));
    if (type === 'boolean') return String(booleanOf(cell));

    return String(numberOf(cell));
  }

  finish(): Buffer {
    const columns: EncodableColumn[] = this.carried.map(({ schema }, c) => {
      const width = bytesPerRow(schema) / (schema.type === 'image' ? 1 : 4);
      const column: EncodableColumn = {
        name: schema.name,
        type: schema.type as EncodableColumn['type'],
        data: this.buffers[c].subarray(0, this.rowCount * width),
      };
      if (schema.image) column.image = schema.image;

      return column;
    });

    return encodeShard(this.rowCount, columns);
  }

  reset(): void {
    this.rowCount = 0;
    this.buffers.forEach((buffer) => buffer.fill(0));
  }

  private categoryOf(cell: Cell, c: number): number {
    if (isMissing(cell) || isImageCell(cell)) return -1;
    const vocabulary = this.vocabularies[c]!;
    const key = categoryKey(cell as string | number | boolean);
    const code = vocabulary.get(key);
    if (code !== undefined) return code;
    if (vocabulary.size >= this.growLimit) {
      if (this.growLimit > 0) this.overflowed.add(c);

      return -1;
    }
    vocabulary.set(key, vocabulary.size);

    return vocabulary.size - 1;
  }

  /**
   * A categorical column's vocabulary as it stands, in code order; undefined
   * when a growing vocabulary passed its limit.
   */
  vocabularyOf(name: string): string[] | undefined {
    const c = this.carried.findIndex(({ schema }) => schema.name === name);
    const vocabulary = this.vocabularies[c];
    if (vocabulary === undefined || this.overflowed.has(c)) return undefined;

    return [...vocabulary.keys()];
  }

  /** The type each carried column is encoded as, by name. */
  encodedTypes(): Map<string, ColumnSchema['type']> {
    return new Map(
      this.carried.map(({ schema }) => [schema.name, schema.type]),
    );
  }

  private allocate(schema: ColumnSchema): ColumnData {
    if (schema.type === 'categorical') return new Int32Array(this.rowsPerShard);
    if (schema.type === 'image') {
      return new Uint8Array(this.rowsPerShard * bytesPerRow(schema));
    }

    return new Float32Array(this.rowsPerShard);
  }
}

function bytesPerRow(schema: ColumnSchema): number {
  if (schema.type !== 'image') return 4;
  const shape = schema.image!;

  return shape.height * shape.width * shape.channels;
}

function numberOf(cell: Cell): number {
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : NaN;
  if (typeof cell === 'string') {
    const value = Number(cell);

    return Number.isFinite(value) ? value : NaN;
  }

  return NaN;
}

function booleanOf(cell: Cell): number {
  if (typeof cell === 'boolean') return cell ? 1 : 0;
  if (typeof cell === 'string') {
    const lower = cell.trim().toLowerCase();
    if (lower === 'true') return 1;
    if (lower === 'false') return 0;
  }

  return NaN;
}
