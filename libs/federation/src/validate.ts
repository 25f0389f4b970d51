import type { Readable } from 'node:stream';

import type { ObjectStorage } from '#libs/storage';

import { openArtifactWeights } from './artifact-reader';
import { badOption, UpdateRejectedError } from './errors';
import { failBoth, openWeightsFile, storeWriter } from './storage-io';
import type { NamedTensor, WeightSpec } from './tensors';
import {
  openWeightsStream,
  WeightsFileWriter,
  type LayerReader,
} from './weights-file';

/** Options for {@link validateUpdate}. */
export interface ValidateUpdateOptions {
  /** The global model's weights: names and shapes, in file order. */
  expected: WeightSpec[];
  /** The global weights the update started from, in the same order. */
  reference: LayerReader;
  /** Bound on the L2 norm of (update - reference) over all weights. */
  maxNorm?: number;
  /**
   * Over the bound: true accepts the update and reports the scale that
   * brings its delta to maxNorm; false (default) rejects it.
   */
  clip?: boolean;
  /** Refuse a file larger than this many bytes. */
  maxBytes?: number;
  /** Receives each tensor once it passed its checks. */
  onTensor?: (tensor: NamedTensor) => Promise<void>;
}

export interface UpdateValidation {
  /** L2 norm of (update - reference) over all weights. */
  norm: number;
  /** Whether the delta is over maxNorm and must be scaled by `scale`. */
  clipped: boolean;
  /** 1, or maxNorm / norm when clipped. */
  scale: number;
  /** Bytes of the weights file. */
  bytes: number;
}

/**
 * Reads a weights file tensor by tensor and checks it against the global
 * model: header, names, order, shapes, dtype, length, finite values and the
 * norm of its delta. Throws UpdateRejectedError naming the first problem.
 * The norm is known only at the end, so clipping is reported (`scale`), not
 * applied: storeUpdate applies it in a second pass.
 */
export async function validateUpdate(
  stream: AsyncIterable<unknown>,
  options: ValidateUpdateOptions,
): Promise<UpdateValidation> {
  const { maxNorm } = options;
  if (maxNorm !== undefined && !(maxNorm > 0)) {
    throw badOption('maxNorm', 'give a positive bound.');
  }
  const update = await openWeightsStream(stream, {
    expected: options.expected,
    maxBytes: options.maxBytes,
  });
  let squares = 0;
  let bytes = 0;
  try {
    for (let t = await update.read(); t; t = await update.read()) {
      const reference = await options.reference.read();
      if (reference?.name !== t.name) {
        throw new Error(
          `The reference weights hold ${reference?.name ?? 'nothing'} ` +
            `where the model has ${t.name}.`,
        );
      }
      const u = t.values;
      const g = reference.values;
      for (let i = 0; i < u.length; i++) {
        const d = u[i] - g[i];
        if (!Number.isFinite(u[i])) {
          throw new UpdateRejectedError(
            `weights.${t.name}`,
            `non-finite value at index ${i}; every value must be a finite number.`,
          );
        }
        squares += d * d;
      }
      bytes += u.byteLength;
      await options.onTensor?.(t);
    }
  } finally {
    await update.close();
  }
  const norm = Math.sqrt(squares);
  const over = maxNorm !== undefined && norm > maxNorm;
  if (over && !options.clip) {
    throw new UpdateRejectedError(
      'weights',
      `update norm ${norm.toPrecision(4)} exceeds the bound ${maxNorm}; ` +
        'send a smaller change from the global weights.',
    );
  }

  return {
    norm,
    clipped: over,
    scale: over ? maxNorm / norm : 1,
    bytes,
  };
}

/** Options for {@link storeUpdate}. */
export interface StoreUpdateOptions {
  /** The weights file as received. */
  body: Readable;
  /** Where the accepted (possibly clipped) update is stored. */
  key: string;
  /** The artifact zip of the global version the update starts from. */
  globalKey: string;
  maxNorm?: number;
  clip?: boolean;
  maxBytes?: number;
}

export interface StoredUpdate extends UpdateValidation {
  sha256: string;
  sizeBytes: number;
}

/**
 * Validates an update while streaming it to `key`. A rejected update leaves
 * nothing at `key` (the upload is aborted). A clipped one is rewritten in a
 * second pass as global + scale * (update - global): the norm is only known
 * once the whole file has been read.
 */
export async function storeUpdate(
  storage: ObjectStorage,
  options: StoreUpdateOptions,
): Promise<StoredUpdate> {
  const reference = await openArtifactWeights(storage, options.globalKey);
  const writer = new WeightsFileWriter(reference.specs);
  const upload = storeWriter(storage, options.key, writer);
  let validation: UpdateValidation;
  try {
    validation = await validateUpdate(options.body, {
      expected: reference.specs,
      reference,
      maxNorm: options.maxNorm,
      clip: options.clip,
      maxBytes: options.maxBytes,
      onTensor: (tensor) => writer.write(tensor.values),
    });
    writer.end();
  } catch (error) {
    throw await failBoth(writer, upload, error);
  } finally {
    options.body.destroy();
    await reference.close();
  }
  let stored = await upload;
  if (validation.clipped) {
    stored = await rewriteScaled(storage, options, validation.scale);
  }

  return { ...validation, ...stored };
}

async function rewriteScaled(
  storage: ObjectStorage,
  options: StoreUpdateOptions,
  scale: number,
) {
  const reference = await openArtifactWeights(storage, options.globalKey);
  // The upload completes only after the whole object was read back.
  const update = await openWeightsFile(storage, options.key);
  const writer = new WeightsFileWriter(reference.specs);
  const upload = storeWriter(storage, options.key, writer);
  try {
    for (let t = await update.read(); t; t = await update.read()) {
      const g = (await reference.read())!.values;
      const u = t.values;
      for (let i = 0; i < u.length; i++) {
        u[i] = g[i] + scale * (u[i] - g[i]);
      }
      await writer.write(u);
    }
    writer.end();
  } catch (error) {
    throw await failBoth(writer, upload, error);
  } finally {
    await Promise.all([update.close(), reference.close()]);
  }

  return upload;
}
