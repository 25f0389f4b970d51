import { Readable } from 'node:stream';

import type { PrismaClient } from '#libs/db';
import { ObjectStorage, streamUpload, StreamUploadResult } from '#libs/storage';

/** Options for {@link trackedUpload}. */
export interface TrackedUploadOptions {
  prisma: PrismaClient;
  storage: ObjectStorage;
  projectId: string;
  key: string;
  body: Readable;
  contentType?: string;
  partBytes: number;
  maxBytes: number;
}

/**
 * Streams a body into storage and records its multipart upload before the
 * first part, with a heartbeat after every part. If this process dies, the
 * sweep finds the session by its stale heartbeat and aborts it.
 */
export async function trackedUpload(
  options: TrackedUploadOptions,
): Promise<StreamUploadResult> {
  const { prisma } = options;
  let sessionId: string | undefined;
  try {
    const result = await streamUpload({
      ...options,
      onMultipartStart: async (uploadId) => {
        const session = await prisma.uploadSession.create({
          data: {
            projectId: options.projectId,
            bucket: options.storage.bucket,
            key: options.key,
            uploadId,
          },
        });
        sessionId = session.id;
      },
      onProgress: async (bytes) => {
        if (sessionId) {
          await prisma.uploadSession.update({
            where: { id: sessionId },
            data: { bytes, heartbeatAt: new Date() },
          });
        }
      },
    });
    if (sessionId) {
      await prisma.uploadSession.update({
        where: { id: sessionId },
        data: { state: 'COMPLETED', bytes: result.bytes },
      });
    }

    return result;
  } catch (error) {
    // streamUpload has already aborted the multipart upload.
    if (sessionId) {
      await prisma.uploadSession.update({
        where: { id: sessionId },
        data: { state: 'ABORTED' },
      });
    }
    throw error;
  }
}
