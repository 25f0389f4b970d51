import type { Logger } from 'pino';

import {
  DatasetError,
  type DatasetProblem,
  ingestDataset,
  type IngestResult,
  type SplitSpec,
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
    const prefix = shardPrefix(job.projectId, dataset.id);
    // A retried attempt starts from a clean prefix.
    await storage.removePrefix(prefix);
    let ingested: IngestResult;
    try {
      ingested = await ingestDataset(input, {
        split: dataset.split as unknown as SplitSpec,
        onShard: ({ info, bytes }) =>
          storage.put(`${prefix}${info.name}`, bytes, bytes.length),
        onDiscardShards: async (infos) => {
          for (const info of infos) {
            await storage.remove(`${prefix}${info.name}`);
          }
        },
        onProgress: (rows) =>
          void context
            .reportProgress(0.1, `read ${rows} rows`)
            .catch(() => undefined),
      });
    } catch (error) {
      if (error instanceof DatasetError) {
        // Bad options for this data (a split stratified by no column).
        await this.fail(context, dataset.id, {}, [error.toProblem()]);
      }
      throw error;
    }
    const found = {
      format: ingested.settings.format,
      rowCount: ingested.schema.rowCount,
      schema: json(ingested.schema),
      report: json(ingested.report),
      sample: json(ingested.sample),
    };
    const manifest = ingested.manifest;
    if (!ingested.report.ok || !manifest) {
      await storage.removePrefix(prefix);
      await this.fail(context, dataset.id, found, ingested.report.problems);
    }
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
          shardCount: manifest!.shards.length,
        },
      }),
    );
    this.deps.logger.info(
      {
        projectId: job.projectId,
        datasetId: dataset.id,
        rows: manifest!.rowCount,
        shards: manifest!.shards.length,
        passes: ingested.passes,
      },
      'Dataset ready',
    );

    return {
      result: {
        datasetId: dataset.id,
        rowCount: manifest!.rowCount,
        shardCount: manifest!.shards.length,
        passes: ingested.passes,
        warnings: ingested.report.problems.length,
      },
    };
  }

  /** Marks the dataset FAILED with its report and fails the job. */
  private async fail(
    context: JobContext,
    datasetId: string,
    found: Record<string, unknown>,
    problems: DatasetProblem[],
  ): Promise<never> {
    await context.commit((tx) =>
      tx.dataset.update({
        where: { id: datasetId },
        data: {
          ...found,
          status: 'FAILED',
          report: json({ ok: false, problems }),
        },
      }),
    );
    const errors = problems.filter((p) => p.severity === 'error');
    throw ChorusError.badInput(
      'dataset',
      `Dataset ${datasetId} is not usable: ` +
        `${errors[0]?.message ?? 'see its report'} (${errors.length} kind(s) ` +
        `of error; the dataset's report lists them).`,
      { datasetId, problems: errors.map((p) => p.code) },
    );
  }
}
