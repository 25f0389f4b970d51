import type { Logger } from 'pino';

import type { Job, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import { mergeArtifacts } from '#libs/federation';
import type { MergeJobConfig } from '#libs/jobs';
import type { ObjectStorage } from '#libs/storage';

import { attemptKeys, removeUnregisteredArtifacts } from './attempt-keys';
import { JobContext, JobHandler, JobOutcome } from './job-handler';
import { registerVersion } from './versions';

/**
 * Merges versions layer by layer from storage into a new version of the
 * first source's model; it is registered only once its artifact is stored.
 */
export class MergeHandler implements JobHandler {
  readonly kind = 'MERGE' as const;

  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      storage: ObjectStorage;
      logger: Logger;
    },
  ) {}

  async failed(job: Job, attempt: number): Promise<void> {
    const config = job.config as unknown as MergeJobConfig;
    await removeUnregisteredArtifacts(this.deps, job, config.modelId, {
      upTo: attempt,
    });
  }

  async run(context: JobContext): Promise<JobOutcome> {
    const { prisma, storage } = this.deps;
    const { job, attempt } = context;
    const config = job.config as unknown as MergeJobConfig;
    const versions = await prisma.modelVersion.findMany({
      where: {
        id: { in: config.sources.map((s) => s.versionId) },
        projectId: job.projectId,
      },
    });
    const keyOf = (id: string) => {
      const version = versions.find((v) => v.id === id);
      if (!version) {
        throw ChorusError.notFound('ModelVersion', id);
      }

      return version.artifactKey;
    };
    const outputKey = attemptKeys(job, attempt, config.modelId).artifact;
    let merged;
    try {
      merged = await mergeArtifacts(storage, {
        sources: config.sources.map((s) => ({
          key: keyOf(s.versionId),
          sampleCount: s.sampleCount,
          weight: s.weight,
        })),
        strategy: config.strategy,
        trimRatio: config.trimRatio,
        outputKey,
      });
    } catch (error) {
      // IncompatibleModelsError is BAD_USER_INPUT naming the first
      // difference: the job fails at once, without a retry.
      await removeUnregisteredArtifacts(this.deps, job, config.modelId);
      throw error;
    }
    await context.reportProgress(0.9, 'merged');
    const version = await context.commit((tx) =>
      registerVersion(tx, {
        projectId: job.projectId,
        modelId: config.modelId,
        jobId: job.id,
        artifactKey: outputKey,
        sha256: merged.sha256,
        sizeBytes: merged.sizeBytes,
        lineage: {
          kind: 'merged',
          jobId: job.id,
          strategy: config.strategy,
          sources: config.sources,
          tasks: merged.tasks,
          trainRows: config.sources.reduce((n, s) => n + s.sampleCount, 0),
        },
        backend: 'cpu',
        parents: config.sources.map((s) => ({
          versionId: s.versionId,
          relation: 'source' as const,
        })),
      }),
    );
    await removeUnregisteredArtifacts(this.deps, job, config.modelId, {
      keep: attempt,
    });

    return {
      result: {
        versionId: version.id,
        version: version.number,
        tasks: merged.tasks,
        peakTensorBytes: merged.peakTensorBytes,
      },
    };
  }
}
