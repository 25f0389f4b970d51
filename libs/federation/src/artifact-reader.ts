import { PassThrough, pipeline, Readable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';

import yauzl from 'yauzl';

import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';
import { ARTIFACT_FILES, type ArtifactManifest } from '#libs/training';

import { ByteReader } from './byte-reader';
import { sizeOf, type NamedTensor, type WeightSpec } from './tensors';
import { TensorStreamReader, type LayerReader } from './weights-file';

/** One layer of a tfjs layers-model topology. */
export interface LayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

/** The parsed model.json of an artifact (tfjs layers format). */
export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: {
    class_name: string;
    config: {
      name: string;
      layers: LayerJson[];
      input_layers: unknown[];
      output_layers: [string, number, number][];
    };
    [key: string]: unknown;
  };
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

/** What an artifact holds besides the values of its weights. */
export interface ArtifactMetadata {
  manifest: ArtifactManifest;
  modelJson: ModelJson;
  /** The weights in weights.bin order. */
  readonly specs: WeightSpec[];
}

/** The weights of an artifact, read in model.json order, and its metadata. */
export interface ArtifactWeightsReader extends LayerReader, ArtifactMetadata {
  /** True for artifacts made before weights.bin was stored uncompressed. */
  readonly deflated: boolean;
}

/** Reads served from the first and last bytes of the object, fetched once. */
const CACHE_BYTES = 64 * 1024;

/**
 * Lets yauzl read a zip in object storage through ranged GETs. The head and
 * tail of the object are fetched once, so the central directory, the small
 * entries and the local headers cost no further request.
 */
class StorageRangeReader extends yauzl.RandomAccessReader {
  private head: Buffer = Buffer.alloc(0);
  private tail: Buffer = Buffer.alloc(0);
  private tailStart = 0;

  constructor(
    private readonly storage: ObjectStorage,
    private readonly key: string,
    private readonly size: number,
  ) {
    super();
  }

  /** Fetches the head (unless given, already read) and the tail. */
  async prefetch(given?: Buffer): Promise<void> {
    const headEnd = given?.length ?? Math.min(this.size, CACHE_BYTES);
    this.tailStart = Math.max(headEnd, this.size - CACHE_BYTES);
    const [head, tail] = await Promise.all([
      given ?? this.fetch(0, headEnd),
      this.fetch(this.tailStart, this.size),
    ]);
    this.head = head;
    this.tail = tail;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const hit = this.cached(start, end);
    if (hit) {
      return Readable.from([hit]);
    }
    const out = new PassThrough();
    this.storage.get(this.key, { start, end: end - 1 }).then(
      // pipeline destroys both sides on failure; `out` carries the error on.
      (body) => pipeline(body, out, () => undefined),
      (error: Error) => out.destroy(error),
    );

    return out;
  }

  private cached(start: number, end: number): Buffer | undefined {
    if (end <= this.head.length) {
      return this.head.subarray(start, end);
    }
    if (start >= this.tailStart && end <= this.tailStart + this.tail.length) {
      return this.tail.subarray(start - this.tailStart, end - this.tailStart);
    }

    return undefined;
  }

  private async fetch(start: number, end: number): Promise<Buffer> {
    if (end <= start) {
      return Buffer.alloc(0);
    }

    return collect(await this.storage.get(this.key, { start, end: end - 1 }));
  }
}

interface OpenZip extends ArtifactMetadata {
  zip: yauzl.ZipFile;
  weights: yauzl.Entry;
}

/**
 * A GET of a whole object, of which the first `head.length` bytes have been
 * read; `chunks` goes on from there.
 */
interface WholeObject {
  body: Readable;
  chunks: AsyncIterator<unknown>;
  head: Buffer;
  size: number;
}

/** Starts a GET of the whole object and reads its first bytes. */
async function getWhole(
  storage: ObjectStorage,
  key: string,
): Promise<WholeObject> {
  const got = await storage.getWithSize(key);
  if (!got) {
    throw ChorusError.notFound('artifact', key);
  }
  const { body, size } = got;
  const chunks = body[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let read = 0;
  try {
    while (read < Math.min(size, CACHE_BYTES)) {
      const next = await chunks.next();
      if (next.done) {
        break;
      }
      parts.push(next.value as Buffer);
      read += (next.value as Buffer).length;
    }
  } catch (error) {
    body.destroy();
    throw error;
  }

  return { body, chunks, head: Buffer.concat(parts, read), size };
}

async function openZip(
  storage: ObjectStorage,
  key: string,
  whole?: WholeObject,
): Promise<OpenZip> {
  const size = whole?.size ?? (await storage.stat(key))?.size;
  if (size === undefined) {
    throw ChorusError.notFound('artifact', key);
  }
  const reader = new StorageRangeReader(storage, key, size);
  await reader.prefetch(whole?.head);
  const zip = await yauzl
    .fromRandomAccessReaderPromise(reader, size, { autoClose: false })
    .catch((error: Error) => {
      throw new Error(`The object ${key} is not a zip: ${error.message}`);
    });
  try {
    const entries = new Map<string, yauzl.Entry>();
    for await (const entry of zip.eachEntry()) {
      entries.set(entry.fileName, entry);
    }
    const file = (name: string) => {
      const entry = entries.get(name);
      if (!entry) {
        throw new Error(`The artifact ${key} has no ${name}.`);
      }

      return entry;
    };
    const text = async (name: string) =>
      (await collect(await zip.openReadStreamPromise(file(name)))).toString(
        'utf8',
      );
    const modelJson = JSON.parse(await text(ARTIFACT_FILES.model)) as ModelJson;
    const manifest = JSON.parse(
      await text(ARTIFACT_FILES.manifest),
    ) as ArtifactManifest;
    const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
    const weights = file(ARTIFACT_FILES.weights);
    const expected = specs.reduce((n, s) => n + sizeOf(s.shape) * 4, 0);
    if (weights.uncompressedSize !== expected) {
      throw new Error(
        `The artifact ${key} has ${weights.uncompressedSize} bytes of ` +
          `weights; its model.json lists ${expected}.`,
      );
    }

    return { manifest, modelJson, specs, zip, weights };
  } catch (error) {
    zip.close();
    throw error;
  }
}

/** The manifest, model.json and weight specs of an artifact zip. */
export async function readArtifactMetadata(
  storage: ObjectStorage,
  key: string,
): Promise<ArtifactMetadata> {
  const { zip, manifest, modelJson, specs } = await openZip(storage, key);
  zip.close();

  return { manifest, modelJson, specs };
}

/** The weight names, shapes and dtypes of an artifact, in file order. */
export async function weightSpecsOfArtifact(
  storage: ObjectStorage,
  key: string,
): Promise<WeightSpec[]> {
  return (await readArtifactMetadata(storage, key)).specs;
}

/**
 * Opens an artifact zip in storage, one tensor at a time, in two round
 * trips: a GET of the whole object, whose first bytes hold model.json and
 * weights.bin's local header and whose size gives where the tail is, then a
 * ranged GET of the tail (central directory, manifest.json). weights.bin
 * then comes from the first GET as it goes on (inflated when the artifact
 * is an older, deflated one).
 */
export async function openArtifactWeights(
  storage: ObjectStorage,
  key: string,
): Promise<ArtifactWeightsReader> {
  const whole = await getWhole(storage, key);
  let open: OpenZip;
  let stream: AsyncIterable<unknown>;
  try {
    open = await openZip(storage, key, whole);
  } catch (error) {
    whole.body.destroy();
    throw error;
  }
  try {
    stream = await openEntryData(storage, key, open, whole);
  } catch (error) {
    whole.body.destroy();
    open.zip.close();
    throw error;
  }
  const tensors = new TensorStreamReader(
    open.specs,
    new ByteReader(stream),
    (field, reason) => new Error(`The artifact ${key}: ${field}: ${reason}`),
  );
  let closed = false;
  const close = async () => {
    await tensors.close();
    if (!closed) {
      closed = true;
      // Also when no tensor was read, so the GET's body was never pulled.
      whole.body.destroy();
      open.zip.close();
    }
  };

  return {
    manifest: open.manifest,
    modelJson: open.modelJson,
    specs: open.specs,
    deflated: open.weights.compressionMethod !== 0,
    read: async () => {
      const tensor = await tensors.read();
      if (!tensor) {
        await close();
      }

      return tensor;
    },
    readPart: async (target) => {
      const part = await tensors.readPart(target);
      if (!part) {
        await close();
      }

      return part;
    },
    close,
    [Symbol.asyncIterator]: () => iterate(tensors, close),
  };
}

/**
 * The data of weights.bin, inflated when deflated: read on from the GET of
 * the whole object when it starts near enough, else as a ranged GET of its
 * own. Bypasses yauzl's stream stages, which cost more than the transfer
 * itself on large entries.
 */
async function openEntryData(
  storage: ObjectStorage,
  key: string,
  { zip, weights: entry }: OpenZip,
  whole: WholeObject,
): Promise<AsyncIterable<unknown>> {
  if (entry.isEncrypted() || ![0, 8].includes(entry.compressionMethod)) {
    throw new Error(
      `The artifact ${key} stores ${entry.fileName} with zip method ` +
        `${entry.compressionMethod}; only stored and deflated are read.`,
    );
  }
  const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, {
    minimal: true,
  });
  let body: AsyncIterable<unknown>;
  if (fileDataStart - whole.head.length <= SKIP_BYTES) {
    body = sliceOf(whole, fileDataStart, entry.compressedSize, key);
  } else {
    whole.body.destroy();
    body =
      entry.compressedSize === 0
        ? Readable.from([])
        : await storage.get(key, {
            start: fileDataStart,
            end: fileDataStart + entry.compressedSize - 1,
          });
  }
  if (entry.compressionMethod === 0) {
    return body;
  }
  const inflate = createInflateRaw();
  // pipeline destroys both sides on failure; `inflate` carries the error on.
  pipeline(Readable.from(body), inflate, () => undefined);

  return inflate;
}

/**
 * Most bytes the GET of a whole object is read on and thrown away to reach
 * weights.bin, rather than making a ranged GET for it.
 */
const SKIP_BYTES = 1024 * 1024;

/** The bytes [start, start + length) of a whole object, ending its GET. */
async function* sliceOf(
  whole: WholeObject,
  start: number,
  length: number,
  key: string,
): AsyncGenerator<Buffer> {
  let position = whole.head.length;
  let left = length;
  try {
    if (start < position && left > 0) {
      const part = whole.head.subarray(start, start + left);
      left -= part.length;
      yield part;
    }
    while (left > 0) {
      const next = await whole.chunks.next();
      if (next.done) {
        throw new Error(
          `The artifact ${key} ended ${left} bytes before the end of ` +
            `${ARTIFACT_FILES.weights}.`,
        );
      }
      const chunk = next.value as Buffer;
      const from = Math.max(0, start - position);
      position += chunk.length;
      if (from < chunk.length) {
        const part = chunk.subarray(from, from + left);
        left -= part.length;
        yield part;
      }
    }
  } finally {
    whole.body.destroy();
  }
}

async function* iterate(
  reader: LayerReader,
  close: () => Promise<void>,
): AsyncGenerator<NamedTensor> {
  try {
    for (let t = await reader.read(); t; t = await reader.read()) {
      yield t;
    }
  } finally {
    await close();
  }
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) {
    parts.push(part as Buffer);
  }

  return Buffer.concat(parts);
}
