import {
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import pino, { Logger } from 'pino';

import { Env, requireEnv } from '#libs/config';
import { createPrismaClient, PrismaClient } from '#libs/db';
import { JobQueue } from '#libs/queue';
import { ObjectStorage, storageFromEnv } from '#libs/storage';
import { sweepStaleUploads } from '#libs/uploads';

import { FederatedLocalHandler } from './handlers/federated-local.handler';
import { FederatedRoundHandler } from './handlers/federated-round.handler';
import { IngestHandler } from './handlers/ingest.handler';
import { MergeHandler } from './handlers/merge.handler';
import { SweepUploadsHandler } from './handlers/sweep-uploads.handler';
import { TrainHandler } from './handlers/train.handler';
import { JobRunner } from './job-runner';
import { sweepFailedCheckpoints } from './maintenance/failed-checkpoints';

export const ENV = Symbol('ENV');
export const PRISMA = Symbol('PRISMA');
export const STORAGE = Symbol('STORAGE');
export const QUEUE = Symbol('QUEUE');
export const LOGGER = Symbol('LOGGER');

/** Runs the job runner and the periodic upload sweep for the app's lifetime. */
@Injectable()
export class WorkerService
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(ENV) private readonly env: Env,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    @Inject(QUEUE) private readonly queue: JobQueue,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly runner: JobRunner,
  ) {}

  async onApplicationBootstrap() {
    await this.storage.ensureBucket();
    await this.runner.start();
    this.logger.info(
      {
        workerId: this.runner.workerId,
        capabilities: this.runner.capabilities,
        concurrency: this.env.WORKER_CONCURRENCY,
      },
      'Worker started',
    );
    await this.sweep();
    this.timer = setInterval(
      () => void this.sweep(),
      this.env.SWEEP_INTERVAL_SECONDS * 1000,
    );
  }

  async onApplicationShutdown(signal?: string) {
    this.logger.info({ signal }, 'Worker stopping');
    clearInterval(this.timer);
    await this.runner.stop();
    await this.queue.stop();
    await this.prisma.$disconnect();
  }

  /**
   * Aborts uploads of any project whose writer stopped heartbeating, and
   * removes the checkpoints of jobs that failed for good past their
   * retention.
   */
  private async sweep() {
    await this.sweepUploads();
    try {
      const swept = await sweepFailedCheckpoints({
        prisma: this.prisma,
        storage: this.storage,
        retentionSeconds: this.env.FAILED_CHECKPOINT_RETENTION_SECONDS,
      });
      if (swept.length > 0) {
        this.logger.info(
          { jobs: swept },
          'Removed checkpoints of jobs that failed for good',
        );
      }
    } catch (error) {
      this.logger.warn(
        { error: (error as Error).message },
        'Checkpoint retention sweep failed; the next sweep retries',
      );
    }
  }

  private async sweepUploads() {
    try {
      const result = await sweepStaleUploads({
        prisma: this.prisma,
        storage: this.storage,
        staleSeconds: this.env.UPLOAD_STALE_SECONDS,
      });
      if (result && result.aborted > 0) {
        this.logger.info(result, 'Swept interrupted uploads');
      }
    } catch (error) {
      this.logger.warn(
        { error: (error as Error).message },
        'Upload sweep failed; the next sweep retries',
      );
    }
  }
}

/** The worker as a Nest standalone application (no HTTP). */
@Module({})
export class WorkerModule {
  static forRoot(env: Env): DynamicModule {
    const capability = env.WORKER_CAPABILITY ?? 'cpu';

    return {
      module: WorkerModule,
      providers: [
        { provide: ENV, useValue: env },
        {
          provide: LOGGER,
          useValue: pino({
            level: env.LOG_LEVEL,
            base: { service: 'worker', pid: process.pid },
          }),
        },
        {
          provide: PRISMA,
          useFactory: () =>
            createPrismaClient({
              databaseUrl: requireEnv(env, 'DATABASE_URL'),
              poolSize: 5,
            }),
        },
        { provide: STORAGE, useFactory: () => storageFromEnv(env) },
        {
          provide: QUEUE,
          useFactory: () =>
            JobQueue.start({ databaseUrl: requireEnv(env, 'DATABASE_URL') }),
        },
        {
          provide: JobRunner,
          inject: [PRISMA, STORAGE, QUEUE, LOGGER],
          useFactory: (
            prisma: PrismaClient,
            storage: ObjectStorage,
            queue: JobQueue,
            logger: Logger,
          ) =>
            new JobRunner({
              prisma,
              queue,
              logger,
              concurrency: env.WORKER_CONCURRENCY,
              databaseUrl: requireEnv(env, 'DATABASE_URL'),
              capabilities:
                capability === 'cpu'
                  ? ['cpu']
                  : env.WORKER_TAKES_CPU_JOBS
                    ? ['gpu', 'cpu']
                    : ['gpu'],
              handlers: [
                new IngestHandler({ prisma, storage, logger }),
                new SweepUploadsHandler({ env, prisma, storage }),
                new TrainHandler({ env, prisma, storage, logger }),
                new TrainHandler({ env, prisma, storage, logger }, 'FINE_TUNE'),
                new MergeHandler({ prisma, storage, logger }),
                new FederatedRoundHandler({
                  env,
                  prisma,
                  storage,
                  queue,
                  logger,
                }),
                new FederatedLocalHandler({
                  env,
                  prisma,
                  storage,
                  queue,
                  logger,
                }),
              ],
            }),
        },
        WorkerService,
      ],
    };
  }
}
