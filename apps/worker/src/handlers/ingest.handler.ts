import type { Logger } from 'pino';

import {
  inferDataset,
  type SplitSpec,
  validateSplitSpec,
  writeShards,
} from '#libs/datasets';
import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';

import { JobContext, JobHandler, JobOutcome } from './job-handler';
import { storageInput } from './storage-input';

/** Where a dataset's shards and manifest live. */
export const shardPrefix = (projectId: string, datasetId: string) =>
  `projects/${projectId}/datasets/${datasetId}/shards/`;

const json = (value: unknown) => value as Prisma.InputJsonValue;

/**
 * Ingests an uploaded dataset in two streaming passes: infer types,
 * statistics and problems; then, if nothing is wrong, write shards. The
 * dataset goes UPLOADED -> VALIDATING -> READY, or FAILED with the report.
 */
export class IngestHandler implements JobHandler {
  readonly kind = 'INGEST' as const;

  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      storage: ObjectStorage;
      logger: Logger;
    },
  ) {}

  async run(context: JobContext): Promise<JobOutcome> {
    const { prisma, storage } = this.deps;
    const { job } = context;
    const datasetId = (job.config as { datasetId?: string }).datasetId ?? '';
    const dataset = await prisma.dataset.findFirst({
      where: { id: datasetId, projectId: job.projectId },
    });
    if (!dataset) {
      throw ChorusError.notFound('Dataset', datasetId);
    }
    await context.commit((tx) =>
      tx.dataset.update({
        where: { id: dataset.id },
        data: { status: 'VALIDATING' },
      }),
    );
    const input = storageInput(
      storage,
      dataset.objectKey,
      Number(dataset.sizeBytes),
      dataset.name,
    );
    const inference = await inferDataset(input, {
      onProgress: (rows) =>
        void context
          .reportProgress(0.1, `validated ${rows} rows`)
          .catch(() => undefined),
    });
    const found = {
      format: inference.settings.format,
      rowCount: inference.schema.rowCount,
      schema: json(inference.schema),
      report: json(inference.report),
      sample: json(inference.sample),
    };
    if (!inference.report.ok) {
      await context.commit((tx) =>
        tx.dataset.update({
          where: { id: dataset.id },
          data: { ...found, status: 'FAILED' },
        }),
      );
      const errors = inference.report.problems.filter(
        (p) => p.severity === 'error',
      );
      throw ChorusError.badInput(
        'dataset',
        `Dataset ${dataset.id} is not usable: ${errors[0]?.message ?? 'see its report'} (${errors.length} kind(s) of error; the dataset's report lists them).`,
        { datasetId: dataset.id, problems: errors.map((p) => p.code) },
      );
    }
    await context.reportProgress(0.5, 'validated; writing shards');

    const prefix = shardPrefix(job.projectId, dataset.id);
    // A retried attempt starts from a clean prefix.
    await storage.removePrefix(prefix);
    const manifest = await writeShards(input, {
      settings: inference.settings,
      schema: inference.schema,
      split: await this.split(context, dataset.id, dataset.split, found),
      onShard: ({ info, bytes }) =>
        storage.put(`${prefix}${info.name}`, bytes, bytes.length),
    });
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    await storage.put(
      `${prefix}manifest.json`,
      manifestBytes,
      manifestBytes.length,
      'application/json',
    );
    await context.commit((tx) =>
      tx.dataset.update({
        where: { id: dataset.id },
        data: {
          ...found,
          status: 'READY',
          shardPrefix: prefix,
          shardCount: manifest.shards.length,
        },
      }),
    );
    this.deps.logger.info(
      {
        projectId: job.projectId,
        datasetId: dataset.id,
        rows: manifest.rowCount,
        shards: manifest.shards.length,
      },
      'Dataset ready',
    );

    return {
      result: {
        datasetId: dataset.id,
        rowCount: manifest.rowCount,
        shardCount: manifest.shards.length,
        warnings: inference.report.problems.length,
      },
    };
  }

  /** The stored split, checked against the columns ingestion found. */
  private async split(
    context: JobContext,
    datasetId: string,
    stored: unknown,
    found: { schema: Prisma.InputJsonValue } & Record<string, unknown>,
  ): Promise<SplitSpec> {
    const split = stored as SplitSpec;
    const columns = (found.schema as { columns: { name: string }[] }).columns;
    try {
      validateSplitSpec(split);
      if (
        split.stratifyBy &&
        !columns.some((column) => column.name === split.stratifyBy)
      ) {
        throw new Error(
          `split.stratifyBy names "${split.stratifyBy}", which is not a column; the columns are ${columns.map((c) => c.name).join(', ')}.`,
        );
      }

      return split;
    } catch (error) {
      const message = (error as Error).message;
      await context.commit((tx) =>
        tx.dataset.update({
          where: { id: datasetId },
          data: {
            ...found,
            status: 'FAILED',
            report: json({
              ok: false,
              problems: [
                {
                  code: 'INVALID_SPLIT',
                  severity: 'error',
                  message,
                  count: 1,
                  examples: [],
                },
              ],
            }),
          },
        }),
      );
      throw ChorusError.badInput('split', message);
    }
  }
}
