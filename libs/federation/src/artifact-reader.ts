import { PassThrough, pipeline, Readable } from 'node:stream';
import { createInflateRaw, inflateRawSync } from 'node:zlib';

import yauzl from 'yauzl';

import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';
import { ARTIFACT_FILES, type ArtifactManifest } from '#libs/training';

import { ByteReader } from './byte-reader';
import { bytesOfSpecs, type NamedTensor, type WeightSpec } from './tensors';
import { TensorStreamReader, type LayerReader } from './weights-file';
import { ZIP } from './zip-format';

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

  /** Takes the head, already read, and fetches the tail. */
  async prefetch(head: Buffer): Promise<void> {
    this.head = head;
    this.tailStart = Math.max(head.length, this.size - CACHE_BYTES);
    this.tail = await this.fetch(this.tailStart, this.size);
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
  const whole: WholeObject = {
    body,
    chunks: body[Symbol.asyncIterator](),
    head: Buffer.alloc(0),
    size,
  };
  try {
    await extendHead(whole, Math.min(size, CACHE_BYTES));
  } catch (error) {
    body.destroy();
    throw error;
  }

  return whole;
}

/**
 * Reads on until the first `bytes` bytes of the object are in `head`;
 * false when the object is shorter.
 */
async function extendHead(whole: WholeObject, bytes: number): Promise<boolean> {
  const parts: Buffer[] = [whole.head];
  let read = whole.head.length;
  while (read < bytes) {
    const next = await whole.chunks.next();
    if (next.done) {
      break;
    }
    parts.push(next.value as Buffer);
    read += (next.value as Buffer).length;
  }
  if (parts.length > 1) {
    whole.head = Buffer.concat(parts, read);
  }

  return read >= bytes;
}

/** Opens an artifact zip through its central directory, fetching its tail. */
async function openZip(
  storage: ObjectStorage,
  key: string,
  whole: WholeObject,
): Promise<OpenZip> {
  const { size } = whole;
  const reader = new StorageRangeReader(storage, key, size);
  await reader.prefetch(whole.head);
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
    const bytes = async (name: string) =>
      collect(await zip.openReadStreamPromise(file(name)));
    const { manifest, modelJson, specs } = parseMetadata(
      key,
      await bytes(ARTIFACT_FILES.model),
      await bytes(ARTIFACT_FILES.manifest),
    );
    const weights = file(ARTIFACT_FILES.weights);
    const expected = bytesOfSpecs(specs);
    if (weights.uncompressedSize !== expected) {
      throw weightsSizeError(key, weights.uncompressedSize, expected);
    }

    return { manifest, modelJson, specs, zip, weights };
  } catch (error) {
    zip.close();
    throw error;
  }
}

/**
 * The manifest, model.json and weight specs of an artifact zip: from its
 * first bytes when they hold them (see openLeading), else from its central
 * directory too.
 */
export async function readArtifactMetadata(
  storage: ObjectStorage,
  key: string,
): Promise<ArtifactMetadata> {
  const whole = await getWhole(storage, key);
  try {
    const leading = await openLeading(whole, key);
    if (leading) {
      return leading.metadata;
    }
    const { zip, manifest, modelJson, specs } = await openZip(
      storage,
      key,
      whole,
    );
    zip.close();

    return { manifest, modelJson, specs };
  } finally {
    whole.body.destroy();
  }
}

/** The weight names, shapes and dtypes of an artifact, in file order. */
export async function weightSpecsOfArtifact(
  storage: ObjectStorage,
  key: string,
): Promise<WeightSpec[]> {
  return (await readArtifactMetadata(storage, key)).specs;
}

/** An artifact's metadata and the data of its weights.bin, being read. */
interface OpenWeights {
  metadata: ArtifactMetadata;
  deflated: boolean;
  /** weights.bin's data, inflated where it was deflated. */
  data: AsyncIterable<unknown>;
  /** Releases what the opening holds besides the GET. */
  release?: () => void;
}

/**
 * Opens an artifact zip in storage, one tensor at a time. Artifacts as
 * zipArtifact and writeArtifact write them (model.json and manifest.json
 * before weights.bin) take one GET: its first bytes hold the metadata, and
 * weights.bin streams on from it. Other layouts (older artifacts put
 * manifest.json last) take a second round trip, a ranged GET of the tail
 * (central directory, manifest.json); weights.bin then comes from the
 * first GET as it goes on (inflated when the artifact is an older,
 * deflated one).
 */
export async function openArtifactWeights(
  storage: ObjectStorage,
  key: string,
): Promise<ArtifactWeightsReader> {
  const whole = await getWhole(storage, key);
  let open: OpenWeights;
  try {
    open =
      (await openLeading(whole, key)) ??
      (await openByDirectory(storage, key, whole));
  } catch (error) {
    whole.body.destroy();
    throw error;
  }
  const { metadata } = open;
  const tensors = new TensorStreamReader(
    metadata.specs,
    new ByteReader(open.data),
    (field, reason) => new Error(`The artifact ${key}: ${field}: ${reason}`),
  );
  let closed = false;
  const close = async () => {
    await tensors.close();
    if (!closed) {
      closed = true;
      // Also when no tensor was read, so the GET's body was never pulled.
      whole.body.destroy();
      open.release?.();
    }
  };

  return {
    manifest: metadata.manifest,
    modelJson: metadata.modelJson,
    specs: metadata.specs,
    deflated: open.deflated,
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

/** Most bytes of model.json and manifest.json read ahead of weights.bin. */
const MAX_LEADING_BYTES = 16 * 1024 * 1024;
/** A local header's size when the real one is in a zip64 extra field. */
const ZIP64 = 0xffffffff;

/**
 * Opens an artifact whose model.json and manifest.json come before a
 * stored weights.bin, walking their local headers from the first bytes of
 * the GET: no central directory, so no second request. After weights.bin,
 * its data descriptor (when it has one) must give the size model.json
 * implies. Undefined for any other layout, which the central directory then
 * reads.
 */
async function openLeading(
  whole: WholeObject,
  key: string,
): Promise<OpenWeights | undefined> {
  const files = new Map<string, Buffer>();
  let at = 0;
  for (;;) {
    if (!(await extendHead(whole, at + ZIP.localHeaderBytes))) {
      return undefined;
    }
    let head = whole.head;
    const flags = head.readUInt16LE(at + 6);
    const method = head.readUInt16LE(at + 8);
    const compressedSize = head.readUInt32LE(at + 18);
    const nameEnd = at + ZIP.localHeaderBytes + head.readUInt16LE(at + 26);
    const dataStart = nameEnd + head.readUInt16LE(at + 28);
    if (
      head.readUInt32LE(at) !== ZIP.localHeaderSignature ||
      flags & ZIP.flagEncrypted ||
      !(await extendHead(whole, dataStart))
    ) {
      return undefined;
    }
    head = whole.head;
    const name = head.toString('utf8', at + ZIP.localHeaderBytes, nameEnd);
    if (name === ARTIFACT_FILES.weights) {
      const model = files.get(ARTIFACT_FILES.model);
      const manifest = files.get(ARTIFACT_FILES.manifest);
      // zip64 sizes (0xffffffff here) are left to the central directory.
      if (!model || !manifest || method !== 0 || compressedSize === ZIP64) {
        return undefined;
      }
      const metadata = parseMetadata(key, model, manifest);
      const bytes = bytesOfSpecs(metadata.specs);
      const described = (flags & ZIP.flagDataDescriptor) !== 0;
      if (!described && compressedSize !== bytes) {
        throw weightsSizeError(key, compressedSize, bytes);
      }
      const descriptor = (trailer: Buffer) => {
        if (trailer.readUInt32LE(0) !== ZIP.dataDescriptorSignature) {
          throw new Error(
            `The artifact ${key}: ${ARTIFACT_FILES.weights} does not end ` +
              `after the ${bytes} bytes its model.json lists.`,
          );
        }
        if (trailer.readUInt32LE(8) !== bytes) {
          throw weightsSizeError(key, trailer.readUInt32LE(8), bytes);
        }
      };

      return {
        metadata,
        deflated: false,
        data: sliceOf(whole, dataStart, bytes, key, {
          bytes: described ? ZIP.dataDescriptorBytes : 0,
          check: descriptor,
        }),
      };
    }
    const end = dataStart + compressedSize;
    if (
      (name !== ARTIFACT_FILES.model && name !== ARTIFACT_FILES.manifest) ||
      flags & ZIP.flagDataDescriptor ||
      ![0, 8].includes(method) ||
      end > MAX_LEADING_BYTES ||
      !(await extendHead(whole, end))
    ) {
      return undefined;
    }
    const data = whole.head.subarray(dataStart, end);
    files.set(name, method === 8 ? inflateRawSync(data) : data);
    at = end;
  }
}

/** Parses model.json and manifest.json of the artifact `key`. */
function parseMetadata(
  key: string,
  model: Buffer,
  manifest: Buffer,
): ArtifactMetadata {
  try {
    const modelJson = JSON.parse(model.toString('utf8')) as ModelJson;

    return {
      modelJson,
      manifest: JSON.parse(manifest.toString('utf8')) as ArtifactManifest,
      specs: modelJson.weightsManifest.flatMap((group) => group.weights),
    };
  } catch (error) {
    throw new Error(
      `The artifact ${key} has an unreadable model.json or manifest.json: ` +
        (error as Error).message,
      { cause: error },
    );
  }
}

function weightsSizeError(key: string, found: number, listed: number) {
  return new Error(
    `The artifact ${key} has ${found} bytes of weights; ` +
      `its model.json lists ${listed}.`,
  );
}

/** Opens an artifact of any layout through its central directory. */
async function openByDirectory(
  storage: ObjectStorage,
  key: string,
  whole: WholeObject,
): Promise<OpenWeights> {
  const open = await openZip(storage, key, whole);
  try {
    return {
      metadata: open,
      deflated: open.weights.compressionMethod !== 0,
      data: await openEntryData(storage, key, open, whole),
      release: () => open.zip.close(),
    };
  } catch (error) {
    open.zip.close();
    throw error;
  }
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

/**
 * The bytes [start, start + length) of a whole object, ending its GET; with
 * `trailer`, the bytes right after them are read and checked too.
 */
async function* sliceOf(
  whole: WholeObject,
  start: number,
  length: number,
  key: string,
  trailer?: { bytes: number; check: (bytes: Buffer) => void },
): AsyncGenerator<Buffer> {
  let position = whole.head.length;
  let left = length;
  const after = Buffer.alloc(trailer?.bytes ?? 0);
  let afterFilled = 0;
  /** Takes the part of `chunk` (at `from` in the object) that is wanted. */
  const take = (chunk: Buffer, from: number): Buffer | undefined => {
    const offset = Math.max(0, start - from);
    if (offset >= chunk.length) {
      return undefined;
    }
    const part = chunk.subarray(offset, offset + left);
    left -= part.length;
    afterFilled += chunk.copy(after, afterFilled, offset + part.length);

    return part.length > 0 ? part : undefined;
  };
  try {
    const first = take(whole.head, 0);
    if (first) {
      yield first;
    }
    while (left > 0 || afterFilled < after.length) {
      const next = await whole.chunks.next();
      if (next.done) {
        throw new Error(
          left > 0
            ? `The artifact ${key} ended ${left} bytes before the end of ` +
                `${ARTIFACT_FILES.weights}.`
            : `The artifact ${key} ended inside ` +
                `${ARTIFACT_FILES.weights}' data descriptor.`,
        );
      }
      const chunk = next.value as Buffer;
      const part = take(chunk, position);
      position += chunk.length;
      if (part) {
        yield part;
      }
    }
    if (trailer && after.length > 0) {
      trailer.check(after);
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
