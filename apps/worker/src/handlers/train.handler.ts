import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

import type { Logger } from 'pino';

import type { Env } from '#libs/config';
import type { DatasetSchema } from '#libs/datasets';
import type { Prisma, PrismaClient } from '#libs/db';
import { ChorusError } from '#libs/errors';
import type { ObjectStorage } from '#libs/storage';

import type { ChildMessage, TrainChildInput } from '../training/messages';
import { buildTrainingRun, TrainingJobConfig } from '#libs/jobs';
import { JobContext, JobHandler, JobOutcome } from './job-handler';

/**
 * Trains a model in a child process. Each epoch's metrics and checkpoint
 * are recorded under this attempt's fence; a retried job resumes from the
 * last recorded checkpoint; the version is registered only once its
 * artifact is completely stored.
 */
export class TrainHandler implements JobHandler {
  readonly kind = 'TRAIN' as const;

  constructor(
    private readonly deps: {
      env: Env;
      prisma: PrismaClient;
      storage: ObjectStorage;
      logger: Logger;
    },
  ) {}

  async run(context: JobContext): Promise<JobOutcome> {
    const { prisma, storage, env } = this.deps;
    const { job, attempt } = context;
    const config = job.config as unknown as TrainingJobConfig;
    const model = await prisma.model.findFirst({
      where: { id: config.modelId, projectId: job.projectId },
      include: { tasks: { include: { dataset: true } } },
    });
    if (!model) {
      throw ChorusError.notFound('Model', config.modelId);
    }
    const run = buildTrainingRun(model, config);
    const jobPrefix = `projects/${job.projectId}/jobs/${job.id}/`;
    const artifactKey = `projects/${job.projectId}/models/${model.id}/artifacts/${job.id}-${attempt}.zip`;
    const input: TrainChildInput = {
      storage: {
        endpoint: env.S3_ENDPOINT!,
        accessKey: env.S3_ACCESS_KEY!,
        secretKey: env.S3_SECRET_KEY!,
        region: env.S3_REGION,
        bucket: env.S3_BUCKET,
      },
      checkpointPrefix: `${jobPrefix}checkpoints/attempt-${attempt}/`,
      resumeFrom: await this.resumePoint(context),
      artifactKey,
      segmentSeconds: env.TRAIN_SEGMENT_SECONDS,
      checkpoint: {
        everyEpochs: config.options.checkpointEveryEpochs ?? 1,
        everyMinutes: config.options.checkpointEveryMinutes,
      },
      spec: run.spec,
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
    const outcome = await this.supervise(context, input);
    const removeCheckpoints = () =>
      storage.removePrefix(`${jobPrefix}checkpoints/`).catch(() => 0);
    if (outcome.type === 'failed') {
      if (outcome.code === 'ERROR') {
        // Possibly transient (storage unavailable, say): the retry resumes
        // from the recorded checkpoint, so it must stay.
        throw new Error(`Training failed: ${outcome.message}`);
      }
      await removeCheckpoints();
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
          continuation: `segment of ${env.TRAIN_SEGMENT_SECONDS} s ended after epoch ${row?.checkpointEpoch}; continuing from its checkpoint`,
        };
      }
      if (row?.status !== 'CANCELLED') {
        // Stopped by a worker shutdown or a queue expiry, not by the user:
        // keep the checkpoints, and let the retry resume from them.
        throw new Error(
          `Training of job ${job.id} was interrupted before it finished; it resumes from its last checkpoint.`,
        );
      }
      await removeCheckpoints();

      return { result: { cancelled: true } };
    }
    const version = await context.commit(async (tx) => {
      const last = await tx.modelVersion.findFirst({
        where: { modelId: model.id },
        orderBy: { number: 'desc' },
      });

      return tx.modelVersion.create({
        data: {
          projectId: job.projectId,
          modelId: model.id,
          number: (last?.number ?? 0) + 1,
          jobId: job.id,
          artifactKey,
          sha256: outcome.sha256!,
          sizeBytes: BigInt(outcome.sizeBytes!),
          metrics: (outcome.metrics ?? {}) as Prisma.InputJsonValue,
          taskArtifacts: (outcome.taskArtifacts ?? {}) as Prisma.InputJsonValue,
          lineage: { kind: 'trained', jobId: job.id },
          backend: job.backend ?? 'unknown',
        },
      });
    });
    await removeCheckpoints();
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

  /** Runs the child and records what it reports; resolves with its end. */
  private supervise(
    context: JobContext,
    input: TrainChildInput,
  ): Promise<Extract<ChildMessage, { type: 'done' | 'failed' }>> {
    const { job, attempt } = context;
    const child: ChildProcess = fork(
      path.join(__dirname, '..', 'training', 'train-child.js'),
      [],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    let queue = Promise.resolve();
    let ended = false;

    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        if (!ended) {
          ended = true;
          child.kill('SIGKILL');
          reject(error);
        }
      };
      // Cancelled, shutting down, or given up by the queue: the child stops
      // before its next step and reports `cancelled`.
      const stop = () => {
        if (child.connected) {
          child.send({ type: 'cancel' });
        }
      };
      context.signal.addEventListener('abort', stop, { once: true });
      child.on('message', (message: ChildMessage) => {
        // Handled in order: an epoch is recorded before the next one.
        queue = queue
          .then(() => this.record(context, message))
          .then(() => {
            if (message.type === 'done' || message.type === 'failed') {
              ended = true;
              resolve(message);
            }
          })
          .catch(fail);
      });
      child.on('exit', (code, signal) => {
        context.signal.removeEventListener('abort', stop);
        void queue.then(() =>
          fail(
            new Error(
              `The training process of job ${job.id} (attempt ${attempt}) ended without a result (${signal ?? `exit ${code}`}).`,
            ),
          ),
        );
      });
      child.send({ type: 'start', input });
      if (context.signal.aborted) {
        stop();
      }
    });
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
