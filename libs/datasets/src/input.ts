import { Readable } from 'node:stream';

/**
 * Where a dataset's bytes come from. The worker backs this with object
 * storage; tests and benchmarks with files or buffers. Every pass over the
 * data calls `open` again, so nothing is held between passes.
 */
export interface DatasetInput {
  /** Opens the whole file from its first byte. */
  open(): Readable | Promise<Readable>;
  /**
   * Opens bytes `start` (inclusive) to `end` (exclusive). Needed by formats
   * that read from the end of the file first: Parquet and zip archives.
   */
  openRange?(start: number, end: number): Readable | Promise<Readable>;
  /** Size of the file in bytes; needed with `openRange`. */
  size?: number;
  /** The name the user gave the file; its extension helps detection. */
  fileName?: string;
}

export type DatasetFormat = 'csv' | 'tsv' | 'jsonl' | 'parquet' | 'images';

/** A decoded image, already resized to the archive's shape. */
export interface ImageCell {
  kind: 'image';
  pixels: Uint8Array;
  height: number;
  width: number;
  channels: number;
  /** True when every pixel had equal red, green and blue. */
  gray: boolean;
}

/** One value of a parsed row; `null` is a missing value. */
export type Cell = string | number | boolean | null | ImageCell;

export function isImageCell(cell: Cell): cell is ImageCell {
  return typeof cell === 'object' && cell !== null && cell.kind === 'image';
}

/** An input over bytes in memory, for tests and small files. */
export function bufferInput(
  bytes: Uint8Array,
  fileName?: string,
): DatasetInput {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  return {
    fileName,
    size: buffer.length,
    open: () => chunkedReadable(buffer),
    openRange: (start, end) => chunkedReadable(buffer.subarray(start, end)),
  };
}

function chunkedReadable(buffer: Buffer): Readable {
  const chunkSize = 64 * 1024;
  let offset = 0;

  return new Readable({
    read() {
      if (offset >= buffer.length) {
        this.push(null);

        return;
      }
      this.push(buffer.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** Reads a byte range fully; for footers and directory records. */
export async function readRange(
  input: DatasetInput,
  start: number,
  end: number,
): Promise<Buffer> {
  if (!input.openRange) {
    throw new Error('This format needs DatasetInput.openRange.');
  }
  const stream = await input.openRange(start, end);

  return collect(stream);
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);

  return Buffer.concat(chunks);
}

/**
 * Reads the first `bytes` of a stream and gives back the rest as an
 * iterator, so a format can be sniffed without opening the stream twice.
 */
export async function peek(
  stream: Readable,
  bytes: number,
): Promise<{ head: Buffer; chunks: AsyncIterable<Buffer> }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const taken: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    taken.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(taken);

  async function* chunks(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }

  return {
    head: head.subarray(0, Math.min(head.length, bytes)),
    chunks: chunks(),
  };
}
