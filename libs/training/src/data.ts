import type { ColumnBatch, DatasetSchema } from '#libs/datasets';

import { TrainingConfigError } from './errors';
import type { RowRef } from './preprocessing';
import type { Random } from './random';

/** Batches for one pass; a factory is called once per epoch. */
export type BatchStream =
  AsyncIterable<ColumnBatch> | (() => AsyncIterable<ColumnBatch>);

export interface DataSourceOptions {
  /** Names the source for `TaskOptions.source`. Default `default`. */
  name?: string;
  /** Schema of the dataset; several sources' statistics and vocabularies
   * are pooled (see planModel). */
  schema: DatasetSchema;
  /** Training batches, streamed; never held in memory all at once. */
  train: BatchStream;
  /** Validation batches, evaluated after every epoch. */
  validation?: BatchStream;
}

export interface SourceScheduleOptions {
  /**
   * How steps are shared between sources: `proportional` to their row
   * counts (default), `temperature` (row count ^ (1 / temperature)) or
   * `round-robin`.
   */
  kind: 'proportional' | 'temperature' | 'round-robin';
  /** temperature: higher values flatten the mix toward uniform. Default 2. */
  temperature?: number;
}

export function openStream(
  stream: BatchStream,
  field: string,
): AsyncIterable<ColumnBatch> {
  if (typeof stream === 'function') {
    return stream();
  }
  if (stream && Symbol.asyncIterator in stream) {
    return stream;
  }
  throw new TrainingConfigError(
    field,
    'pass an AsyncIterable of column batches or a function returning one.',
  );
}

/** Reads ahead up to `depth` batches while the consumer computes. */
export async function* prefetch<T>(
  source: AsyncIterable<T>,
  depth: number,
): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const pending: Promise<IteratorResult<T>>[] = [];
  try {
    for (;;) {
      while (pending.length < Math.max(depth, 1)) {
        pending.push(iterator.next());
      }
      const result = await pending.shift()!;
      if (result.done) {
        return;
      }
      yield result.value;
    }
  } finally {
    await Promise.allSettled(pending);
    await iterator.return?.();
  }
}

export interface RowBatchOptions {
  batchSize: number;
  /** Rows held for shuffling; 0 or 1 keeps the stream order. */
  shuffleBuffer: number;
  prefetch: number;
}

/**
 * Cuts a stream of column batches into training batches of row references,
 * shuffling through a bounded buffer: each incoming row replaces a randomly
 * chosen buffered row, which is emitted.
 */
export async function* rowBatches(
  batches: AsyncIterable<ColumnBatch>,
  options: RowBatchOptions,
  random: Random,
): AsyncGenerator<RowRef[]> {
  const buffer: RowRef[] = [];
  let out: RowRef[] = [];
  for await (const batch of prefetch(batches, options.prefetch)) {
    for (let index = 0; index < batch.rowCount; index++) {
      const ref = { batch, index };
      if (buffer.length < options.shuffleBuffer) {
        buffer.push(ref);
        continue;
      }
      let emitted = ref;
      if (options.shuffleBuffer > 1) {
        const slot = random.int(buffer.length);
        emitted = buffer[slot];
        buffer[slot] = ref;
      }
      out.push(emitted);
      if (out.length === options.batchSize) {
        yield out;
        out = [];
      }
    }
  }
  random.shuffle(buffer);
  for (const ref of buffer) {
    out.push(ref);
    if (out.length === options.batchSize) {
      yield out;
      out = [];
    }
  }
  if (out.length > 0) {
    yield out;
  }
}

/** A training batch and the index of the source it came from. */
export interface SourceBatch {
  source: number;
  rows: RowRef[];
}

/**
 * One epoch over every source. With one source it is one pass. With several,
 * each step draws a source by the schedule; an epoch lasts as many steps as
 * the sources have batches together, and a source that runs out starts over.
 */
export async function* epochBatches(
  sources: DataSourceOptions[],
  options: RowBatchOptions,
  schedule: SourceScheduleOptions,
  random: Random,
): AsyncGenerator<SourceBatch> {
  const open = (i: number) =>
    rowBatches(
      openStream(sources[i].train, `data[${i}].train`),
      options,
      random,
    )[Symbol.asyncIterator]();
  if (sources.length === 1) {
    for await (const rows of { [Symbol.asyncIterator]: () => open(0) }) {
      yield { source: 0, rows };
    }

    return;
  }
  const iterators = sources.map((_, i) => open(i));
  const sizes = sources.map((s) => Math.max(s.schema.rowCount, 1));
  const steps = sizes.reduce(
    (sum, n) => sum + Math.ceil(n / options.batchSize),
    0,
  );
  const exponent =
    schedule.kind === 'temperature' ? 1 / (schedule.temperature ?? 2) : 1;
  const weights = sizes.map((n) => Math.pow(n, exponent));
  const total = weights.reduce((a, b) => a + b, 0);
  try {
    for (let step = 0; step < steps; step++) {
      let source = step % sources.length;
      if (schedule.kind !== 'round-robin') {
        let draw = random.next() * total;
        source = 0;
        while (source < weights.length - 1 && draw >= weights[source]) {
          draw -= weights[source];
          source++;
        }
      }
      let next = await iterators[source].next();
      if (next.done) {
        iterators[source] = open(source);
        next = await iterators[source].next();
      }
      if (!next.done) {
        yield { source, rows: next.value };
      }
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.(undefined)));
  }
}
