import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';

import { Env } from '#libs/config';
import type { PrismaClient } from '#libs/db';
import { ChorusError, ErrorCode } from '#libs/errors';
import { ObjectStorage } from '#libs/storage';
import { trackedUpload } from '#libs/uploads';

import { Principal } from '../auth/principal';
import { parseId, parseInput } from '../common/input';
import { PageArgs, pageQuery, toPage } from '../common/pagination';
import { ENV, PRISMA, STORAGE } from '../core/tokens';
import { datasetJson } from './dataset.types';

export interface UploadDatasetOptions {
  name: unknown;
  body: Readable;
  contentType?: string;
  /** Declared Content-Length, when the client sent one. */
  contentLength?: number;
  /** sha256 the client computed; the upload is refused if it differs. */
  sha256?: unknown;
}

const uploadSchema = z.object({
  name: z
    .string({ error: 'is required (query parameter name)' })
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'must be at most 200 characters'),
  sha256: z
    .string()
    .regex(/^[a-f0-9]{64}$/i, 'must be 64 hexadecimal characters')
    .optional(),
});

export const datasetObjectKey = (projectId: string, datasetId: string) =>
  `projects/${projectId}/datasets/${datasetId}/original`;

@Injectable()
export class DatasetsService {
  private readonly logger = new Logger(DatasetsService.name);

  constructor(
    @Inject(ENV) private readonly env: Env,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
  ) {}

  /**
   * Streams the body into storage, then records the dataset. Nothing is
   * recorded for an upload that fails, is too large or has the wrong sha256,
   * and no object or multipart upload is left behind.
   */
  async upload(principal: Principal, options: UploadDatasetOptions) {
    const input = parseInput(
      uploadSchema,
      { name: options.name, sha256: options.sha256 || undefined },
      'query',
    );
    const maxBytes = this.env.UPLOAD_MAX_BYTES;
    if ((options.contentLength ?? 0) > maxBytes) {
      options.body.resume();
      throw new ChorusError(
        ErrorCode.PayloadTooLarge,
        `The upload is ${options.contentLength} bytes; the limit is ${maxBytes}.`,
        { field: 'body', limitBytes: maxBytes },
      );
    }
    const id = randomUUID();
    const key = datasetObjectKey(principal.projectId, id);
    const stored = await trackedUpload({
      prisma: this.prisma,
      storage: this.storage,
      projectId: principal.projectId,
      key,
      body: options.body,
      contentType: options.contentType,
      partBytes: this.env.UPLOAD_PART_BYTES,
      maxBytes,
    });
    if (input.sha256 && input.sha256.toLowerCase() !== stored.sha256) {
      await this.storage.remove(key);
      throw ChorusError.badInput(
        'sha256',
        `sha256 does not match the uploaded bytes: the server computed ${stored.sha256}.`,
      );
    }
    try {
      const dataset = await this.prisma.dataset.create({
        data: {
          id,
          projectId: principal.projectId,
          name: input.name,
          contentType: options.contentType ?? null,
          sizeBytes: BigInt(stored.bytes),
          sha256: stored.sha256,
          objectKey: key,
        },
      });
      this.logger.log(
        { projectId: principal.projectId, datasetId: id, bytes: stored.bytes },
        'Dataset uploaded',
      );

      return datasetJson(dataset);
    } catch (error) {
      await this.storage.remove(key);
      throw error;
    }
  }

  async find(principal: Principal, id: string) {
    parseId(id);
    const dataset = await this.prisma.dataset.findFirst({
      where: { id, projectId: principal.projectId },
    });
    if (!dataset) {
      throw ChorusError.notFound('Dataset', id);
    }

    return dataset;
  }

  async list(principal: Principal, args: PageArgs) {
    const query = pageQuery(args);
    const rows = await this.prisma.dataset.findMany({
      ...query,
      where: { AND: [query.where, { projectId: principal.projectId }] },
    });

    return toPage(rows.map(datasetJson), args);
  }

  /** Streams the original file, whole or the byte range asked for. */
  async openFile(principal: Principal, id: string, rangeHeader?: string) {
    const dataset = await this.find(principal, id);
    const size = Number(dataset.sizeBytes);
    const range = parseRange(rangeHeader, size);
    const stream = await this.storage.get(dataset.objectKey, range);

    return { dataset, size, range, stream };
  }
}

/** Parses a single `bytes=a-b` range; multiple ranges are not supported. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (!header) {
    return undefined;
  }
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const bad = () =>
    new ChorusError(
      ErrorCode.RangeNotSatisfiable,
      `Range "${header}" is not satisfiable for ${size} bytes; send one range such as bytes=0-1023.`,
      { field: 'Range', size },
    );
  if (!match || (match[1] === '' && match[2] === '')) {
    throw bad();
  }
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) {
    throw bad();
  }

  return { start, end };
}
