import type { Logger } from 'pino';

import type { Env } from '#libs/config';
import type { DatasetSchema } from '#libs/datasets';
import type { Job, Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';

import type { ChildMessage, TrainChildInput } from '../training/messages';
import { childStorage, superviseChild } from '../training/supervise';
import {
  buildTrainingRun,
  type FineTuneJobConfig,
  type TrainingJobConfig,
} from '#libs/jobs';
import { attemptKeys, removeUnregisteredArtifacts } from './attempt-keys';
import { JobContext, JobHandler, JobOutcome } from './job-handler';
import { registerVersion } from './versions';

/**
 * Trains a model in a child process. Each epoch's metrics and checkpoint
 * are recorded under this attempt's fence; a retried job resumes from the
 * last recorded checkpoint; the version is registered only once its
 * artifact is completely stored.
 */
export class TrainHandler implements JobHandler {
  constructor(
    private readonly deps: {
      env: Env;
      prisma: PrismaClient;
      storage: ObjectStorage;
      logger: Logger;
    },
    /** TRAIN from fresh weights, or FINE_TUNE from a base version's. */
    readonly kind: 'TRAIN' | 'FINE_TUNE' = 'TRAIN',
  ) {}

  /** Its attempts' artifacts go; its checkpoints stay for a retry. */
  async failed(job: Job, attempt: number): Promise<void> {
    const config = job.config as unknown as TrainingJobConfig;
    await removeUnregisteredArtifacts(this.deps, job, config.modelId, {
      upTo: attempt,
    });
  }

  async run(context: JobContext): Promise<JobOutcome> {
    const { prisma, storage, env } = this.deps;
    const { job, attempt } = context;
    const config = job.config as unknown as
      TrainingJobConfig | FineTuneJobConfig;
    const fineTune = 'baseVersionId' in config ? config : undefined;
    const found = await prisma.model.findFirst({
      where: { id: config.modelId, projectId: job.projectId },
      include: { tasks: { include: { dataset: true } } },
    });
    if (!found) {
      throw ChorusError.notFound('Model', config.modelId);
    }
    let model = found;
    let base: TrainChildInput['base'];
    if (fineTune) {
      const [version, tasks] = await Promise.all([
        prisma.modelVersion.findFirst({
          where: { id: fineTune.baseVersionId, projectId: job.projectId },
        }),
        prisma.task.findMany({
          where: { id: { in: fineTune.taskIds }, projectId: job.projectId },
          include: { dataset: true },
        }),
      ]);
      if (!version) {
        throw ChorusError.notFound('ModelVersion', fineTune.baseVersionId);
      }
      // The tasks of this fine-tune, in the order asked for.
      model = {
        ...found,
        tasks: fineTune.taskIds.flatMap((id) =>
          tasks.filter((t) => t.id === id),
        ),
      };
      const options = fineTune.fineTune;
      base = {
        key: version.artifactKey,
        freeze: options.freeze,
        freezeHeads: options.freezeHeads,
        learningRates: {
          backbone: options.backboneLearningRate,
          heads: options.headLearningRate,
        },
      };
    }
    const run = buildTrainingRun(model, config);
    const keys = attemptKeys(job, attempt, model.id);
    const artifactKey = keys.artifact;
    const input: TrainChildInput = {
      storage: childStorage(env),
      resumeFrom: await this.resumePoint(context),
      artifactKey,
      segmentSeconds: env.TRAIN_SEGMENT_SECONDS,
      checkpoint: {
        prefix: keys.checkpointPrefix,
        everyEpochs: config.options.checkpointEveryEpochs ?? 1,
        everyMinutes: config.options.checkpointEveryMinutes,
      },
      spec: run.spec,
      base,
      sources: model.tasks
        .map((task) => task.dataset)
        .filter((d, i, all) => all.findIndex((x) => x.id === d.id) === i)
        .map((dataset) => ({
          name: dataset.id,
          schema: dataset.schema as unknown as DatasetSchema,
          shardPrefix: dataset.shardPrefix!,
        })),
      options: run.options,
    };
    const removeCheckpoints = () =>
      storage.removePrefix(keys.checkpoints).catch(() => 0);
    const cancelled = async () => {
      await removeCheckpoints();
      await removeUnregisteredArtifacts(this.deps, job, model.id);

      return { result: { cancelled: true } };
    };
    let outcome: Awaited<ReturnType<typeof superviseChild>>;
    try {
      outcome = await superviseChild(context, input, (message) =>
        this.record(context, message),
      );
    } catch (error) {
      // Cancelled while an epoch was being recorded: the fenced write is
      // refused, the child is stopped, and the job is as cancelled as if
      // the child had reported it, so its checkpoints go all the same.
      const row = await this.deps.prisma.job.findUnique({
        where: { id: job.id },
        select: { status: true },
      });
      if (row?.status === 'CANCELLED') {
        return cancelled();
      }
      throw error;
    }
    if (outcome.type === 'failed') {
      if (outcome.code === 'ERROR') {
        // Possibly transient (storage unavailable, say): the retry resumes
        // from the recorded checkpoint, so it must stay.
        throw new Error(`Training failed: ${outcome.message}`);
      }
      await removeCheckpoints();
      await removeUnregisteredArtifacts(this.deps, job, model.id);
      throw ChorusError.badInput(
        outcome.field ? `config.${outcome.field}` : 'config',
        outcome.message,
      );
    }
    if (outcome.status === 'cancelled' || outcome.status === 'segment-ended') {
      const row = await this.deps.prisma.job.findUnique({
        where: { id: job.id },
        select: { status: true, checkpointEpoch: true },
      });
      if (row?.status !== 'CANCELLED' && outcome.status === 'segment-ended') {
        return {
          continuation:
            `segment of ${env.TRAIN_SEGMENT_SECONDS} s ended after epoch ` +
            `${row?.checkpointEpoch}; continuing from its checkpoint`,
        };
      }
      if (row?.status !== 'CANCELLED') {
        // Stopped by a worker shutdown or a queue expiry, not by the user:
        // keep the checkpoints, and let the retry resume from them.
        throw new Error(
          `Training of job ${job.id} was interrupted before it finished; ` +
            `it resumes from its last checkpoint.`,
        );
      }

      return cancelled();
    }
    const version = await context.commit((tx) =>
      registerVersion(tx, {
        projectId: job.projectId,
        modelId: model.id,
        jobId: job.id,
        artifactKey,
        sha256: outcome.sha256!,
        sizeBytes: outcome.sizeBytes!,
        metrics: outcome.metrics,
        taskArtifacts: outcome.taskArtifacts,
        lineage: fineTune
          ? {
              kind: 'fine-tuned',
              jobId: job.id,
              baseVersionId: fineTune.baseVersionId,
              freeze: fineTune.fineTune.freeze,
              trainRows: outcome.trainRows,
            }
          : { kind: 'trained', jobId: job.id, trainRows: outcome.trainRows },
        backend: job.backend ?? 'unknown',
        parents: fineTune
          ? [{ versionId: fineTune.baseVersionId, relation: 'base' }]
          : [],
      }),
    );
    await removeCheckpoints();
    await removeUnregisteredArtifacts(this.deps, job, model.id, {
      keep: attempt,
    });
    this.deps.logger.info(
      { projectId: job.projectId, jobId: job.id, versionId: version.id },
      'Model version registered',
    );

    return {
      result: {
        versionId: version.id,
        version: version.number,
        status: outcome.status,
        metrics: outcome.metrics ?? {},
      },
    };
  }

  /**
   * The checkpoint to continue from, if it is still stored. A cancelled or
   * diverged run had its checkpoints removed: retried, it starts over, so
   * what the earlier run recorded is cleared with the pointer.
   */
  private async resumePoint({ job, commit }: JobContext) {
    if (!job.checkpointKey) {
      return undefined;
    }
    if (await this.deps.storage.stat(job.checkpointKey)) {
      return job.checkpointKey;
    }
    await commit(async (tx) => {
      await tx.jobMetric.deleteMany({ where: { jobId: job.id } });
      await tx.jobStepWeights.deleteMany({ where: { jobId: job.id } });
      await tx.job.update({
        where: { id: job.id },
        data: { checkpointKey: null, checkpointEpoch: null, progress: 0 },
      });
    });

    return undefined;
  }

  private async record(context: JobContext, message: ChildMessage) {
    const { job } = context;
    if (message.type === 'backend') {
      await context.commit((tx) =>
        tx.job.update({
          where: { id: job.id },
          data: { backend: message.backend },
        }),
      );
      job.backend = message.backend;
    } else if (message.type === 'epoch') {
      const rows: Prisma.JobMetricCreateManyInput[] = [];
      for (const [task, loss] of Object.entries(message.trainLoss)) {
        rows.push({
          jobId: job.id,
          epoch: message.epoch,
          task,
          split: 'train',
          name: 'loss',
          value: loss,
        });
      }
      for (const [task, metrics] of Object.entries(message.validation)) {
        for (const [name, value] of Object.entries(metrics)) {
          if (Number.isFinite(value)) {
            rows.push({
              jobId: job.id,
              epoch: message.epoch,
              task,
              split: 'validation',
              name,
              value,
            });
          }
        }
      }
      const epochs = (job.config as unknown as TrainingJobConfig).options
        .epochs;
      await context.commit(async (tx) => {
        await tx.jobMetric.createMany({ data: rows, skipDuplicates: true });
        await tx.jobStepWeights.createMany({
          data: message.stepWeights.map((s) => ({ jobId: job.id, ...s })),
          skipDuplicates: true,
        });
        if (message.checkpointKey) {
          await tx.job.update({
            where: { id: job.id },
            data: {
              checkpointKey: message.checkpointKey,
              checkpointEpoch: message.epoch,
            },
          });
        }
      });
      const summary = Object.fromEntries(
        rows.map((row) => [`${row.task}.${row.split}.${row.name}`, row.value]),
      );
      await context.reportProgress(
        Math.min(0.99, message.epoch / epochs),
        `epoch ${message.epoch} finished`,
        summary,
      );
    }
  }
}
