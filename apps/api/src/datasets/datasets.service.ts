import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { z } from 'zod';

import { Env } from '#libs/config';
import type { SplitSpec } from '#libs/datasets';
import type { DatasetStatus, Prisma, PrismaClient } from '#libs/db';
import { ChorusError, ErrorCode } from '#libs/errors';
import { ObjectStorage } from '#libs/storage';
import { trackedUpload } from '#libs/uploads';

import { Principal } from '../auth/principal';
import { nameField, parseId, parseInput } from '../common/input';
import { pageQuery, toPage } from '../common/pagination';
import { ENV, PRISMA, STORAGE } from '../core/tokens';
import { JobsService } from '../jobs/jobs.service';
import { datasetJson, DatasetListArgs } from './dataset.types';

export interface UploadDatasetOptions {
  name: unknown;
  body: Readable;
  contentType?: string;
  /** Declared Content-Length, when the client sent one. */
  contentLength?: number;
  /** sha256 the client computed; the upload is refused if it differs. */
  sha256?: unknown;
  /** Split ratios, seed and stratification column, unvalidated. */
  split?: unknown;
}

const name = nameField(200);
const sha256 = z
  .string()
  .regex(/^[a-f0-9]{64}$/i, 'must be 64 hexadecimal characters')
  .transform((value) => value.toLowerCase());
const ratio = z
  .number()
  .min(0, 'must be from 0 to 1')
  .max(1, 'must be from 0 to 1');
const splitSchema = z
  .object({
    train: ratio,
    validation: ratio,
    test: ratio,
    seed: z.number().int('must be a whole number').default(0),
    stratifyBy: z.string().min(1).optional(),
  })
  .refine(
    (s) => Math.abs(s.train + s.validation + s.test - 1) < 1e-9,
    'train, validation and test must add up to 1 (for example 0.8, 0.1, 0.1)',
  )
  .transform((s): SplitSpec => ({
    ratios: { train: s.train, validation: s.validation, test: s.test },
    seed: s.seed,
    ...(s.stratifyBy ? { stratifyBy: s.stratifyBy } : {}),
  }));
const DEFAULT_SPLIT: SplitSpec = {
  ratios: { train: 0.8, validation: 0.1, test: 0.1 },
  seed: 0,
};

const uploadSchema = z.object({
  name,
  sha256: sha256.optional(),
  split: splitSchema.optional(),
});

/** A presigned upload waiting for completeDatasetUpload. */
interface UploadIntent {
  datasetId: string;
  name: string;
  sizeBytes: number;
  sha256?: string;
  contentType?: string;
  split: SplitSpec;
  partCount: number;
}

/** At most this many parts per upload, as S3 allows. */
const MAX_PARTS = 10_000;

export const datasetObjectKey = (projectId: string, datasetId: string) =>
  `projects/${projectId}/datasets/${datasetId}/original`;
const datasetPrefix = (projectId: string, datasetId: string) =>
  `projects/${projectId}/datasets/${datasetId}/`;

@Injectable()
export class DatasetsService {
  private readonly logger = new Logger(DatasetsService.name);

  constructor(
    @Inject(ENV) private readonly env: Env,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    private readonly jobs: JobsService,
  ) {}

  /**
   * Streams the body into storage, then records the dataset and queues its
   * ingestion in one transaction. Nothing is recorded for an upload that
   * fails, is too large or has the wrong sha256, and no object or multipart
   * upload is left behind.
   */
  async upload(principal: Principal, options: UploadDatasetOptions) {
    const input = parseInput(
      uploadSchema,
      {
        name: options.name,
        sha256: options.sha256 || undefined,
        split: options.split,
      },
      'query',
    );
    const maxBytes = this.env.UPLOAD_MAX_BYTES;
    if ((options.contentLength ?? 0) > maxBytes) {
      throw this.tooLarge(options.contentLength!);
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
    if (input.sha256 && input.sha256 !== stored.sha256) {
      await this.storage.remove(key);
      throw ChorusError.badInput(
        'sha256',
        `sha256 does not match the uploaded bytes: the server computed ${stored.sha256}.`,
      );
    }

    return this.register(principal, {
      id,
      key,
      name: input.name,
      contentType: options.contentType,
      bytes: stored.bytes,
      sha256: stored.sha256,
      split: input.split ?? DEFAULT_SPLIT,
    });
  }

  /**
   * Starts an upload that goes straight to object storage: one presigned PUT
   * for a file up to one part, else a multipart upload with a presigned URL
   * per part. Nothing is a dataset until completeDatasetUpload.
   */
  async createUpload(principal: Principal, raw: unknown) {
    const input = parseInput(
      z.object({
        name,
        sizeBytes: z
          .number()
          .int('must be a whole number of bytes')
          .positive('must be greater than 0')
          .max(
            this.env.UPLOAD_MAX_BYTES,
            `must be at most ${this.env.UPLOAD_MAX_BYTES} (UPLOAD_MAX_BYTES)`,
          ),
        sha256: sha256.optional().nullable(),
        contentType: z.string().max(200).optional().nullable(),
        split: splitSchema.optional().nullable(),
      }),
      raw,
    );
    const datasetId = randomUUID();
    const key = datasetObjectKey(principal.projectId, datasetId);
    const expirySeconds = this.env.PRESIGN_MAX_SECONDS;
    const expiresAt = new Date(Date.now() + expirySeconds * 1000);
    const partSize = Math.max(
      this.env.UPLOAD_PART_BYTES,
      Math.ceil(input.sizeBytes / MAX_PARTS),
    );
    const partCount =
      input.sizeBytes <= partSize ? 0 : Math.ceil(input.sizeBytes / partSize);
    const uploadId =
      partCount > 0
        ? await this.storage.createMultipart(
            key,
            input.contentType ?? undefined,
          )
        : '';
    const intent: UploadIntent = {
      datasetId,
      name: input.name,
      sizeBytes: input.sizeBytes,
      sha256: input.sha256 ?? undefined,
      contentType: input.contentType ?? undefined,
      split: input.split ?? DEFAULT_SPLIT,
      partCount,
    };
    const session = await this.prisma.uploadSession.create({
      data: {
        projectId: principal.projectId,
        bucket: this.storage.bucket,
        key,
        uploadId,
        // The sweep counts from here: the client cannot upload past expiry.
        heartbeatAt: expiresAt,
        intent: intent as unknown as Prisma.InputJsonValue,
      },
    });
    const parts = await Promise.all(
      Array.from({ length: partCount }, async (_, i) => ({
        partNumber: i + 1,
        url: await this.storage.presignPart(
          key,
          uploadId,
          i + 1,
          expirySeconds,
        ),
      })),
    );

    return {
      uploadId: session.id,
      url:
        partCount === 0
          ? await this.storage.presignPut(key, expirySeconds)
          : null,
      parts,
      partSizeBytes: partSize,
      expiresAt,
    };
  }

  /** Finishes a presigned upload: checks size and sha256, then ingests. */
  async completeUpload(principal: Principal, raw: unknown) {
    const input = parseInput(
      z.object({
        uploadId: z.uuid('must be the uploadId createDatasetUpload returned'),
        parts: z
          .array(
            z.object({
              partNumber: z.number().int().min(1).max(MAX_PARTS),
              etag: z.string().min(1),
            }),
          )
          .optional()
          .nullable(),
      }),
      raw,
    );
    const session = await this.prisma.uploadSession.findFirst({
      where: {
        id: input.uploadId,
        projectId: principal.projectId,
        state: 'ACTIVE',
        intent: { not: { equals: null } },
      },
    });
    if (!session) {
      throw ChorusError.notFound('Upload', input.uploadId);
    }
    const intent = session.intent as unknown as UploadIntent;
    if (intent.partCount > 0) {
      const parts = [...(input.parts ?? [])].sort(
        (a, b) => a.partNumber - b.partNumber,
      );
      const complete =
        parts.length === intent.partCount &&
        parts.every((part, i) => part.partNumber === i + 1);
      if (!complete) {
        throw ChorusError.badInput(
          'input.parts',
          `input.parts must list parts 1 to ${intent.partCount}, each with ` +
            `the ETag its PUT returned.`,
        );
      }
      try {
        await this.storage.completeMultipart(
          session.key,
          session.uploadId,
          parts.map((part) => ({ part: part.partNumber, etag: part.etag })),
        );
      } catch (error) {
        throw ChorusError.badInput(
          'input.parts',
          `Object storage refused to assemble the parts: ${(error as Error).message}`,
        );
      }
    }
    const info = await this.storage.stat(session.key);
    const fail = async (field: string, message: string) => {
      await this.storage.remove(session.key);
      await this.prisma.uploadSession.update({
        where: { id: session.id },
        data: { state: 'ABORTED' },
      });

      return ChorusError.badInput(field, message);
    };
    if (!info) {
      throw ChorusError.badInput(
        'uploadId',
        'Nothing was uploaded yet: PUT the file to the URL from createDatasetUpload first.',
      );
    }
    if (info.size !== intent.sizeBytes) {
      throw await fail(
        'sizeBytes',
        `The uploaded file has ${info.size} bytes, not the ` +
          `${intent.sizeBytes} declared; start a new upload.`,
      );
    }
    const digest = await this.hashObject(session.key);
    if (intent.sha256 && intent.sha256 !== digest) {
      throw await fail(
        'sha256',
        `sha256 does not match the uploaded bytes: the server computed ${digest}.`,
      );
    }

    return this.register(principal, {
      id: intent.datasetId,
      key: session.key,
      name: intent.name,
      contentType: intent.contentType,
      bytes: info.size,
      sha256: digest,
      split: intent.split,
      sessionId: session.id,
    });
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

  async list(principal: Principal, args: DatasetListArgs) {
    const query = pageQuery(args);
    const filters: Prisma.DatasetWhereInput[] = [
      query.where,
      { projectId: principal.projectId },
    ];
    if (args.status) {
      filters.push({ status: args.status as DatasetStatus });
    }
    if (args.name) {
      filters.push({ name: { contains: args.name, mode: 'insensitive' } });
    }
    const rows = await this.prisma.dataset.findMany({
      ...query,
      where: { AND: filters },
    });

    return toPage(rows.map(datasetJson), args);
  }

  /**
   * Deletes a dataset and every object it owns. Refused with CONFLICT while
   * a queued or running job reads it.
   */
  async delete(principal: Principal, id: string) {
    const dataset = await this.find(principal, id);
    await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Dataset" WHERE id = ${id}::uuid FOR UPDATE`;
      const user = await tx.job.findFirst({
        where: {
          projectId: principal.projectId,
          status: { in: ['QUEUED', 'RUNNING'] },
          datasetIds: { has: id },
        },
      });
      if (user) {
        throw ChorusError.conflict(
          `Dataset ${id} is used by ${user.kind} job ${user.id} ` +
            `(${user.status}); cancel it or wait for it to finish.`,
          { jobId: user.id },
        );
      }
      await tx.dataset.delete({ where: { id } });
    });
    const removed = await this.storage.removePrefix(
      datasetPrefix(principal.projectId, id),
    );
    this.logger.log(
      { projectId: principal.projectId, datasetId: id, objects: removed },
      'Dataset deleted',
    );

    return datasetJson(dataset);
  }

  /** Streams the original file, whole or the byte range asked for. */
  async openFile(principal: Principal, id: string, rangeHeader?: string) {
    const dataset = await this.find(principal, id);
    const size = Number(dataset.sizeBytes);
    const range = parseRange(rangeHeader, size);
    const stream = await this.storage.get(dataset.objectKey, range);

    return { dataset, size, range, stream };
  }

  /** Records a stored file as a dataset and queues its ingestion, atomically. */
  private async register(
    principal: Principal,
    file: {
      id: string;
      key: string;
      name: string;
      contentType?: string;
      bytes: number;
      sha256: string;
      split: SplitSpec;
      sessionId?: string;
    },
  ) {
    try {
      const dataset = await this.prisma.$transaction(async (tx) => {
        if (file.sessionId) {
          await tx.uploadSession.update({
            where: { id: file.sessionId },
            data: { state: 'COMPLETED', bytes: file.bytes },
          });
        }
        const row = await tx.dataset.create({
          data: {
            id: file.id,
            projectId: principal.projectId,
            name: file.name,
            contentType: file.contentType ?? null,
            sizeBytes: BigInt(file.bytes),
            sha256: file.sha256,
            objectKey: file.key,
            split: file.split as unknown as Prisma.InputJsonValue,
          },
        });
        await this.jobs.submit(
          {
            projectId: principal.projectId,
            kind: 'INGEST',
            config: { datasetId: row.id },
            datasetIds: [row.id],
            // Validation is short and someone waits for it: it goes ahead
            // of queued trainings.
            priority: 10,
          },
          tx,
        );

        return row;
      });
      this.logger.log(
        {
          projectId: principal.projectId,
          datasetId: dataset.id,
          bytes: file.bytes,
        },
        'Dataset uploaded; ingestion queued',
      );

      return datasetJson(dataset);
    } catch (error) {
      await this.storage.remove(file.key);
      throw error;
    }
  }

  private async hashObject(key: string): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of await this.storage.get(key)) {
      hash.update(chunk as Buffer);
    }

    return hash.digest('hex');
  }

  private tooLarge(bytes: number) {
    const limit = this.env.UPLOAD_MAX_BYTES;

    return new ChorusError(
      ErrorCode.PayloadTooLarge,
      `The upload is ${bytes} bytes; the limit is ${limit} (UPLOAD_MAX_BYTES).`,
      { field: 'body', limitBytes: limit },
    );
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
      `Range "${header}" is not satisfiable for ${size} bytes; send one ` +
        `range such as bytes=0-1023.`,
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
