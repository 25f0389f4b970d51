import { ColumnAccumulator } from './column-stats';
import type { ColumnSchema, DatasetSchema } from './contract';
import { type InferenceResult, type InferOptions, runInference } from './infer';
import type { Cell, DatasetInput } from './input';
import {
  manifestColumnsOf,
  type Shard,
  type ShardInfo,
  type ShardManifest,
  ShardSink,
  writeShards,
} from './shard-writer';
import { type SplitSpec, validateSplitSpec } from './split';
import type { RowBatch, Table } from './table';

export interface IngestOptions extends InferOptions {
  /** Called with each finished shard; the next is built once it resolves. */
  onShard: (shard: Shard) => Promise<void> | void;
  /**
   * Called when shards already handed out are void: the dataset failed
   * validation, or the types read from the first rows did not hold and a
   * second pass writes the shards again (under the same names). Delete them.
   */
  onDiscardShards?: (shards: ShardInfo[]) => Promise<void> | void;
  /** Rows per shard; by default about 8 MiB of values per shard. */
  rowsPerShard?: number;
  /** Assigns every row to train, validation or test while writing. */
  split?: SplitSpec;
  /**
   * Rows read before the types that shards are written with are settled.
   * Default 1,000.
   */
  probeRows?: number;
}

export interface IngestResult extends InferenceResult {
  /** Present when the report is ok. */
  manifest?: ShardManifest;
  /** 1 when shards were written during inference, 2 when re-read for them. */
  passes: 1 | 2;
}

/**
 * Inference and shards in one pass where possible: after the first rows,
 * shards are written with the types those rows suggest while inference
 * goes on. If the final schema agrees (same types, same vocabularies in the
 * same order), the shards stand, byte for byte what `writeShards` would
 * write; if not, they are discarded and a second pass writes them. Image
 * archives always take two passes (the image shape is settled by the
 * whole archive).
 */
export async function ingestDataset(
  input: DatasetInput,
  options: IngestOptions,
): Promise<IngestResult> {
  if (options.split) validateSplitSpec(options.split);
  const writer = new EarlyShardWriter(options);
  const inference = await runInference(input, options, (table, batch) =>
    writer.add(table, batch),
  );
  if (!inference.report.ok) {
    await writer.discard();

    return { ...inference, passes: 1 };
  }
  const manifest = await writer.finish(inference.schema);
  if (manifest !== undefined) return { ...inference, manifest, passes: 1 };
  await writer.discard();
  const rewritten = await writeShards(input, {
    settings: inference.settings,
    schema: inference.schema,
    onShard: options.onShard,
    rowsPerShard: options.rowsPerShard,
    split: options.split,
    limits: options.limits,
    fastUnquoted: options.fastUnquoted,
  });

  return { ...inference, manifest: rewritten, passes: 2 };
}

class EarlyShardWriter {
  private probe: Cell[][] = [];
  private table: Pick<Table, 'columns' | 'settings'> | undefined;
  private sink: ShardSink | undefined;
  private skipped = false;

  constructor(private readonly options: IngestOptions) {}

  async add(
    table: Pick<Table, 'columns' | 'settings'>,
    batch: RowBatch,
  ): Promise<void> {
    if (this.skipped) return;
    if (table.settings.format === 'images') {
      this.skipped = true;

      return;
    }
    this.table = table;
    if (this.sink === undefined) {
      for (const row of batch.rows) this.probe.push(row);
      if (this.probe.length >= (this.options.probeRows ?? 1000)) {
        await this.start();
      }

      return;
    }
    const sink = this.sink;
    for (const row of batch.rows) {
      const flushing = sink.push(row);
      if (flushing) await flushing;
    }
  }

  /** The manifest, or undefined when the shards do not fit the schema. */
  async finish(schema: DatasetSchema): Promise<ShardManifest | undefined> {
    if (this.skipped || this.table === undefined) return undefined;
    if (this.sink === undefined) await this.start();
    const sink = this.sink!;
    if (!fits(sink, schema.columns)) return undefined;
    await sink.end();

    return sink.manifest(manifestColumnsOf(schema.columns));
  }

  async discard(): Promise<void> {
    const shards = this.sink?.shards ?? [];
    if (shards.length > 0) await this.options.onDiscardShards?.([...shards]);
    this.skipped = true;
  }

  private async start(): Promise<void> {
    const columns = provisionalColumns(
      this.table!.columns,
      this.probe,
      this.options.maxVocabulary ?? 1000,
    );
    this.sink = new ShardSink({
      columns,
      onShard: this.options.onShard,
      rowsPerShard: this.options.rowsPerShard,
      split: this.options.split,
      growVocabulary: this.options.maxVocabulary ?? 1000,
    });
    const rows = this.probe;
    this.probe = [];
    for (const row of rows) {
      const flushing = this.sink.push(row);
      if (flushing) await flushing;
    }
  }
}

/** Column types as the first rows suggest them. */
function provisionalColumns(
  names: string[],
  rows: Cell[][],
  maxVocabulary: number,
): ColumnSchema[] {
  const accumulators = names.map(
    (name) =>
      new ColumnAccumulator(name, {
        maxVocabulary,
        maxExamples: 0,
        topCount: 0,
      }),
  );
  rows.forEach((row, r) => {
    for (let c = 0; c < accumulators.length; c++) {
      accumulators[c].push(row[c], r + 1);
    }
  });

  // Vocabularies start empty: the shard builder grows them as it goes.
  return accumulators.map((a) => {
    const column = a.finish(undefined, rows.length);

    return { ...column, vocabulary: [] };
  });
}

/** Whether shards written so far encode the final schema exactly. */
function fits(sink: ShardSink, columns: ColumnSchema[]): boolean {
  const encoded = sink.builder.encodedTypes();

  return columns.every((column) => {
    const type = encoded.get(column.name);
    if (column.type === 'text') return type === undefined;
    if (type !== column.type) return false;
    if (column.type !== 'categorical') return true;
    const vocabulary = sink.builder.vocabularyOf(column.name);

    return (
      vocabulary !== undefined &&
      vocabulary.length === column.vocabulary?.length &&
      vocabulary.every((value, i) => value === column.vocabulary![i])
    );
  });
}
