import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import { ChorusError, ErrorCode } from '#libs/errors';

import { ObjectStorage, PartEtag } from './object-storage';

/** Options for {@link streamUpload}. */
export interface StreamUploadOptions {
  storage: ObjectStorage;
  key: string;
  body: Readable;
  contentType?: string;
  /** Bytes per multipart part; a smaller object is stored in one request. */
  partBytes: number;
  /** The upload fails with PAYLOAD_TOO_LARGE past this many bytes. */
  maxBytes: number;
  /**
   * Called with the multipart upload id before the first part is sent, so the
   * caller can record it and a crash leaves something to sweep.
   */
  onMultipartStart?: (uploadId: string) => Promise<void>;
  /** Called after each part with the bytes stored so far. */
  onProgress?: (bytes: number) => Promise<void>;
}

export interface StreamUploadResult {
  bytes: number;
  sha256: string;
  /** The multipart upload id, when the object needed more than one part. */
  uploadId?: string;
}

/**
 * Streams a body of unknown length into object storage with memory bounded
 * by two parts: one filling while the previous one uploads. The sha256 is
 * computed on the way. On any failure the multipart upload is aborted and the
 * error rethrown, so nothing partial is left.
 */
export async function streamUpload(
  options: StreamUploadOptions,
): Promise<StreamUploadResult> {
  const { storage, key, partBytes, maxBytes } = options;
  const hash = createHash('sha256');
  const parts: PartEtag[] = [];
  let uploadId: string | undefined;
  let inFlight: Promise<void> | undefined;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;

  const sendPart = async (body: Buffer) => {
    if (!uploadId) {
      uploadId = await storage.createMultipart(key, options.contentType);
      await options.onMultipartStart?.(uploadId);
    }
    const id = uploadId;
    const part = parts.length + 1;
    parts.push({ part, etag: '' });
    await inFlight;
    inFlight = storage.uploadPart(key, id, part, body).then(async (etag) => {
      parts[part - 1] = etag;
      await options.onProgress?.(total);
    });
    // Surface a failed part at the next await instead of as an unhandled rejection.
    inFlight.catch(() => undefined);
  };

  try {
    for await (const chunk of options.body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      total += buffer.length;
      if (total > maxBytes) {
        throw new ChorusError(
          ErrorCode.PayloadTooLarge,
          `The upload is larger than the limit of ${maxBytes} bytes.`,
          { field: 'body', limitBytes: maxBytes },
        );
      }
      hash.update(buffer);
      pending.push(buffer);
      pendingBytes += buffer.length;
      if (pendingBytes >= partBytes) {
        const joined = Buffer.concat(pending, pendingBytes);
        pending = [joined.subarray(partBytes)];
        pendingBytes = pending[0].length;
        await sendPart(joined.subarray(0, partBytes));
      }
    }
    const rest = Buffer.concat(pending, pendingBytes);
    if (!uploadId) {
      await storage.put(key, rest, rest.length, options.contentType);
    } else {
      if (rest.length > 0) {
        await sendPart(rest);
      }
      await inFlight;
      await storage.completeMultipart(key, uploadId, parts);
    }
  } catch (error) {
    options.body.destroy();
    if (uploadId) {
      await inFlight?.catch(() => undefined);
      await storage.abortMultipart(key, uploadId);
    }
    throw error;
  }

  return { bytes: total, sha256: hash.digest('hex'), uploadId };
}
