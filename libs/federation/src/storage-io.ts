import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';

import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';
import { ARTIFACT_FILES, type ArtifactManifest } from '#libs/training';

import type { ModelJson } from './artifact-reader';
import { storedZip } from './stored-zip';
import {
  bytesOf,
  bytesOfSpecs,
  type NamedTensor,
  type WeightSpec,
} from './tensors';
import {
  openWeightsStream,
  WEIGHTS_CONTENT_TYPE,
  type LayerReader,
  type ReadWeightsOptions,
  type WeightsFileWriter,
  weightsFileBytes,
  writeWeightsStream,
} from './weights-file';

/** Where an object was written: its sha256 and size. */
export interface StoredObject {
  sha256: string;
  sizeBytes: number;
}

/** Opens a weights file in storage (see openWeightsStream). */
export async function openWeightsFile(
  storage: ObjectStorage,
  key: string,
  options: ReadWeightsOptions = {},
): Promise<LayerReader> {
  if (!(await storage.stat(key))) {
    throw ChorusError.notFound('weights file', key);
  }

  return openWeightsStream(await storage.get(key), options);
}

/**
 * Streams a body of known size into storage as one PUT, hashing it on the
 * way: no parts to send and no completion for the server to assemble.
 */
export async function storeSized(
  storage: ObjectStorage,
  key: string,
  body: Readable,
  sizeBytes: number,
  contentType = WEIGHTS_CONTENT_TYPE,
): Promise<StoredObject> {
  const hash = createHash('sha256');
  const hashed = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  body.on('error', (error: Error) => hashed.destroy(error));
  await storage.putStream(key, body.pipe(hashed), sizeBytes, contentType);

  return { sha256: hash.digest('hex'), sizeBytes };
}

/**
 * Stores what a weights-file writer writes, as one PUT of the size its specs
 * give: all or nothing, with no multipart upload for a process that dies
 * mid-way to leave behind, and refused when the writer stops short.
 */
export function storeWriter(
  storage: ObjectStorage,
  key: string,
  writer: WeightsFileWriter,
): Promise<StoredObject> {
  return storeSized(
    storage,
    key,
    writer.stream,
    weightsFileBytes(writer.specs),
  );
}

/**
 * Streams tensors (which must follow `specs`) into storage as a weights
 * file, a tensor at a time, as one PUT of known size.
 */
export function storeWeights(
  storage: ObjectStorage,
  key: string,
  specs: WeightSpec[],
  tensors: AsyncIterable<NamedTensor>,
): Promise<StoredObject> {
  return storeSized(
    storage,
    key,
    writeWeightsStream(specs, tensors),
    weightsFileBytes(specs),
  );
}

/** Options for {@link writeArtifact}. */
export interface WriteArtifactOptions {
  key: string;
  /** model.json; its weights manifest is replaced by one following `specs`. */
  modelJson: Omit<ModelJson, 'modelTopology' | 'weightsManifest'> & {
    modelTopology: object;
  };
  manifest: ArtifactManifest;
  /** The weights.bin order; `values` must follow it. */
  specs: WeightSpec[];
  /**
   * The values of every weight in `specs` order, in pieces of any length
   * (whole tensors or blocks), produced only as fast as the upload takes
   * them.
   */
  values: AsyncIterable<Float32Array>;
}

/**
 * Writes an artifact zip like zipArtifact's (model.json, manifest.json,
 * weights.bin; fixed dates; every entry stored uncompressed, so the zip's
 * size is known before its first byte) as one streamed PUT into storage,
 * pulling the values only as fast as the upload takes them.
 */
export async function writeArtifact(
  storage: ObjectStorage,
  options: WriteArtifactOptions,
): Promise<StoredObject> {
  const { specs } = options;
  const modelJson = {
    ...options.modelJson,
    weightsManifest: [
      {
        paths: [ARTIFACT_FILES.weights],
        weights: specs.map((s) => ({
          name: s.name,
          shape: s.shape,
          dtype: 'float32',
        })),
      },
    ],
  };
  const weightBytes = bytesOfSpecs(specs);
  const weights = (async function* () {
    let written = 0;
    for await (const values of options.values) {
      written += values.byteLength;
      if (written > weightBytes) {
        throw new Error(
          `The weights of ${options.key} gave more than the ` +
            `${weightBytes} bytes their specs need.`,
        );
      }
      yield bytesOf(values);
    }
    if (written < weightBytes) {
      throw new Error(
        `The weights of ${options.key} gave ${written} bytes; ` +
          `their specs need ${weightBytes}.`,
      );
    }
  })();
  const zip = storedZip([
    {
      name: ARTIFACT_FILES.model,
      data: Buffer.from(JSON.stringify(modelJson)),
    },
    {
      name: ARTIFACT_FILES.manifest,
      data: Buffer.from(JSON.stringify(options.manifest, null, 2)),
    },
    { name: ARTIFACT_FILES.weights, data: weights, size: weightBytes },
  ]);

  return storeSized(
    storage,
    options.key,
    zip.stream,
    zip.size,
    'application/zip',
  );
}

/**
 * Fails the writer so that the upload aborts, and picks the error to report:
 * the upload's own when it failed first (the writer then only saw its stream
 * close), else the one that stopped the writing.
 */
export async function failBoth(
  writer: WeightsFileWriter,
  upload: Promise<unknown>,
  error: unknown,
): Promise<unknown> {
  writer.fail(error as Error);
  const uploadError: unknown = await upload.then(
    () => undefined,
    (failure: unknown) => failure,
  );

  return uploadError ?? error;
}
