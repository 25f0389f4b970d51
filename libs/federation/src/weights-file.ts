import { PassThrough, Readable } from 'node:stream';

import { ByteReader } from './byte-reader';
import { UpdateRejectedError } from './errors';
import {
  bytesOf,
  bytesOfSpecs,
  formatShape,
  sameShape,
  sizeOf,
  type NamedTensor,
  type NamedWeights,
  type WeightSpec,
} from './tensors';

/** Content type of a Chorus weights file. */
export const WEIGHTS_CONTENT_TYPE = 'application/vnd.chorus.weights';

/** The first 8 bytes of every weights file. */
export const WEIGHTS_MAGIC = 'CHORUSW1';

const PREAMBLE_BYTES = 12;
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

/**
 * Weights read in the order of `specs`: a tensor at a time, with a fresh
 * array for each, or a block of values at a time into the caller's array.
 */
export interface LayerReader extends AsyncIterable<NamedTensor> {
  readonly specs: WeightSpec[];
  /** The next tensor, or undefined after the last one. */
  read(): Promise<NamedTensor | undefined>;
  /**
   * Reads the next values of the current tensor into `target`, never past
   * that tensor's end, or undefined after the last tensor. A caller that
   * reads in blocks of a fixed size touches no new memory per tensor.
   */
  readPart(target: Float32Array): Promise<TensorPart | undefined>;
  /** Releases the underlying stream; safe to call twice. */
  close(): Promise<void>;
}

/** Values of one tensor read by {@link LayerReader.readPart}. */
export interface TensorPart {
  spec: WeightSpec;
  /** Index in the tensor of the first value read. */
  offset: number;
  /** The values read: the start of the caller's array. */
  values: Float32Array;
}

/** Options for {@link openWeightsStream}. */
export interface ReadWeightsOptions {
  /** The weights the file must hold: these names and shapes, in this order. */
  expected?: WeightSpec[];
  /** Refuse a file whose header announces more bytes than this. */
  maxBytes?: number;
}

type ErrorFactory = (field: string, reason: string) => Error;

/** Reads float32 tensors of known specs back to back from a byte stream. */
export class TensorStreamReader implements LayerReader {
  private index = 0;
  /** Values of specs[index] read so far by readPart. */
  private offset = 0;

  constructor(
    readonly specs: WeightSpec[],
    private readonly bytes: ByteReader,
    private readonly fail: ErrorFactory,
  ) {}

  async read(): Promise<NamedTensor | undefined> {
    const next = this.specs[this.index];
    if (next && this.offset > 0) {
      throw new Error(`${next.name} is partly read; read it on with readPart.`);
    }
    const part = await this.readPart(
      new Float32Array(next ? sizeOf(next.shape) : 0),
    );
    if (!part) {
      return undefined;
    }
    const { spec, values } = part;

    return { name: spec.name, shape: spec.shape, values };
  }

  async readPart(target: Float32Array): Promise<TensorPart | undefined> {
    const spec = this.specs[this.index];
    if (!spec) {
      if (!(await this.bytes.atEnd())) {
        throw this.fail(
          'body',
          'there are bytes after the last tensor the header lists.',
        );
      }
      await this.close();

      return undefined;
    }
    const size = sizeOf(spec.shape);
    const offset = this.offset;
    const count = Math.min(target.length, size - offset);
    if (count === 0 && size > 0) {
      throw new Error('readPart needs a target of at least one value.');
    }
    const values = target.subarray(0, count);
    const bytes = new Uint8Array(values.buffer, values.byteOffset, count * 4);
    const got = await this.bytes.readInto(bytes);
    if (got < bytes.length) {
      throw this.fail(
        `weights.${spec.name}`,
        `truncated: the tensor needs ${size * 4} bytes, ` +
          `${offset * 4 + got} arrived.`,
      );
    }
    this.offset += count;
    if (this.offset === size) {
      this.index++;
      this.offset = 0;
    }

    return { spec, offset, values };
  }

  async close(): Promise<void> {
    await this.bytes.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NamedTensor> {
    try {
      for (let t = await this.read(); t; t = await this.read()) {
        yield t;
      }
    } finally {
      await this.close();
    }
  }
}

/**
 * Reads tensors of known specs laid back to back with no header (a tfjs
 * layers model's weight file), a tensor at a time; `fail` makes the error
 * for a stream shorter or longer than the specs.
 */
export function readRawTensors(
  stream: AsyncIterable<unknown>,
  specs: WeightSpec[],
  fail: ErrorFactory,
): LayerReader {
  return new TensorStreamReader(specs, new ByteReader(stream), fail);
}

/** The header bytes (magic, length, JSON) of a weights file. */
export function weightsHeader(specs: readonly WeightSpec[]): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      tensors: specs.map((s) => ({
        name: s.name,
        shape: s.shape,
        dtype: 'float32',
      })),
    }),
  );
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  preamble.write(WEIGHTS_MAGIC, 0, 'latin1');
  preamble.writeUInt32LE(json.length, 8);

  return Buffer.concat([preamble, json]);
}

/** The size in bytes of a weights file holding these specs. */
export function weightsFileBytes(specs: readonly WeightSpec[]): number {
  return weightsHeader(specs).length + bytesOfSpecs(specs);
}

/** A whole weights file in memory; for small models and tests. */
export function encodeWeights(weights: NamedWeights): Buffer {
  const specs = [...weights].map(([name, w]) => ({ name, shape: w.shape }));
  const parts = [weightsHeader(specs)];
  for (const [name, w] of weights) {
    checkValues({ name, shape: w.shape, values: w.values });
    parts.push(bytesOf(w.values));
  }

  return Buffer.concat(parts);
}

/**
 * Writes a weights file tensor by tensor into `stream`, waiting for the
 * reader to drain so that memory stays bounded by one tensor.
 */
export class WeightsFileWriter {
  readonly stream = new PassThrough({ highWaterMark: 1024 * 1024 });
  private index = 0;

  constructor(readonly specs: readonly WeightSpec[]) {
    this.stream.write(weightsHeader(specs));
  }

  async write(values: Float32Array): Promise<void> {
    const spec = this.specs[this.index];
    if (!spec) {
      throw new Error('All tensors of the weights file are written already.');
    }
    checkValues({ name: spec.name, shape: spec.shape, values });
    this.index++;
    if (this.stream.destroyed) {
      throw new Error('The weights file stream was closed by its reader.');
    }
    if (!this.stream.write(bytesOf(values))) {
      await drained(this.stream);
    }
  }

  end(): void {
    if (this.index !== this.specs.length) {
      throw new Error(
        `The weights file lists ${this.specs.length} tensors, ` +
          `${this.index} were written.`,
      );
    }
    this.stream.end();
  }

  /** Fails the stream, so that an upload reading it aborts. */
  fail(error: Error): void {
    this.stream.destroy(error);
  }
}

/** Resolves on drain; rejects when the reader closes the stream instead. */
function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      stream.off('drain', onDrain);
      reject(new Error('The weights file stream was closed by its reader.'));
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

/**
 * A weights file as a stream: the header from `specs`, then each tensor of
 * `tensors` (which must follow `specs`), pulled only as fast as it is read.
 */
export function writeWeightsStream(
  specs: readonly WeightSpec[],
  tensors: AsyncIterable<NamedTensor> | Iterable<NamedTensor>,
): Readable {
  return Readable.from(
    (async function* () {
      yield weightsHeader(specs);
      let i = 0;
      for await (const tensor of tensors) {
        const spec = specs[i++];
        if (!spec || spec.name !== tensor.name) {
          throw new Error(
            `Tensor ${i - 1} is ${tensor.name}; the header lists ` +
              `${spec?.name ?? 'no more tensors'}.`,
          );
        }
        checkValues({ ...tensor, shape: spec.shape });
        yield bytesOf(tensor.values);
      }
      if (i !== specs.length) {
        throw new Error(`The header lists ${specs.length} tensors, got ${i}.`);
      }
    })(),
    { objectMode: false },
  );
}

/**
 * Reads a weights file's header and returns a reader of its tensors. Throws
 * UpdateRejectedError for a malformed or truncated header, a dtype other than
 * float32, and (with `expected`) missing, extra, reordered or misshapen
 * tensors.
 */
export async function openWeightsStream(
  stream: AsyncIterable<unknown>,
  options: ReadWeightsOptions = {},
): Promise<LayerReader> {
  const bytes = new ByteReader(stream);
  try {
    const specs = await readHeader(bytes);
    if (options.expected) {
      checkAgainst(specs, options.expected);
    }
    const total = bytes.position + bytesOfSpecs(specs);
    if (options.maxBytes !== undefined && total > options.maxBytes) {
      throw new UpdateRejectedError(
        'body',
        `the file holds ${total} bytes; the limit is ${options.maxBytes}.`,
      );
    }

    return new TensorStreamReader(
      specs,
      bytes,
      (field, reason) => new UpdateRejectedError(field, reason),
    );
  } catch (error) {
    await bytes.close();
    throw error;
  }
}

/** The tensors of a weights file, one at a time (see openWeightsStream). */
export async function* readWeightsStream(
  stream: AsyncIterable<unknown>,
  expected?: WeightSpec[],
): AsyncIterable<NamedTensor> {
  yield* await openWeightsStream(stream, { expected });
}

async function readHeader(bytes: ByteReader): Promise<WeightSpec[]> {
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  const got = await bytes.readInto(preamble);
  if (got < 8 || preamble.toString('latin1', 0, 8) !== WEIGHTS_MAGIC) {
    throw new UpdateRejectedError(
      'header',
      `a weights file starts with the 8 bytes "${WEIGHTS_MAGIC}" ` +
        `(content type ${WEIGHTS_CONTENT_TYPE}).`,
    );
  }
  if (got < PREAMBLE_BYTES) {
    throw new UpdateRejectedError(
      'header',
      'truncated: the 4-byte header length is missing.',
    );
  }
  const length = preamble.readUInt32LE(8);
  if (length > MAX_HEADER_BYTES) {
    throw new UpdateRejectedError(
      'header',
      `the header length ${length} is over the limit of ${MAX_HEADER_BYTES} bytes.`,
    );
  }
  const json = Buffer.alloc(length);
  const jsonGot = await bytes.readInto(json);
  if (jsonGot < length) {
    throw new UpdateRejectedError(
      'header',
      `truncated: the header needs ${length} bytes, ${jsonGot} arrived.`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch {
    throw new UpdateRejectedError(
      'header',
      'the header is not valid JSON; expected {"tensors":[{"name","shape","dtype"}]}.',
    );
  }

  return parseHeader(header);
}

function parseHeader(header: unknown): WeightSpec[] {
  const tensors = (header as { tensors?: unknown } | null)?.tensors;
  if (!Array.isArray(tensors)) {
    throw new UpdateRejectedError(
      'header.tensors',
      'the header must hold a "tensors" array of {name, shape, dtype}.',
    );
  }
  const seen = new Set<string>();

  return tensors.map((entry: unknown, i) => {
    const { name, shape, dtype } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || name === '' || seen.has(name)) {
      throw new UpdateRejectedError(
        `header.tensors[${i}].name`,
        'each tensor needs a unique, non-empty name.',
      );
    }
    seen.add(name);
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      throw new UpdateRejectedError(
        `weights.${name}`,
        'the shape must be an array of whole numbers, for example [64,32].',
      );
    }
    if (dtype !== 'float32') {
      throw new UpdateRejectedError(
        `weights.${name}`,
        `dtype ${String(dtype)}, expected float32.`,
      );
    }

    return { name, shape: shape as number[], dtype };
  });
}

/** Same names and shapes in the same order, or UpdateRejectedError. */
export function checkAgainst(
  specs: readonly WeightSpec[],
  expected: readonly WeightSpec[],
): void {
  const wanted = new Map(expected.map((s) => [s.name, s]));
  const extra = specs.find((s) => !wanted.has(s.name));
  if (extra) {
    throw new UpdateRejectedError(
      `weights.${extra.name}`,
      'unexpected tensor: the model has no weight of this name.',
    );
  }
  const present = new Set(specs.map((s) => s.name));
  const missing = expected.find((s) => !present.has(s.name));
  if (missing) {
    throw new UpdateRejectedError(
      `weights.${missing.name}`,
      `missing: the file must hold all ${expected.length} weights of the model.`,
    );
  }
  specs.forEach((spec, i) => {
    const want = expected[i];
    if (spec.name !== want.name) {
      throw new UpdateRejectedError(
        'header.tensors',
        `tensor ${i} is ${spec.name}, expected ${want.name}: list the ` +
          'tensors in the order of the global weights file.',
      );
    }
    if (!sameShape(spec.shape, want.shape)) {
      throw new UpdateRejectedError(
        `weights.${spec.name}`,
        `shape ${formatShape(spec.shape)}, expected ${formatShape(want.shape)}.`,
      );
    }
  });
}

function checkValues(tensor: NamedTensor): void {
  if (!(tensor.values instanceof Float32Array)) {
    throw new Error(`Tensor ${tensor.name} must hold a Float32Array.`);
  }
  if (tensor.values.length !== sizeOf(tensor.shape)) {
    throw new Error(
      `Tensor ${tensor.name} has ${tensor.values.length} values; its shape ` +
        `${formatShape(tensor.shape)} needs ${sizeOf(tensor.shape)}.`,
    );
  }
}
