import { Inject, Injectable, Logger } from '@nestjs/common';

import { Prisma, PrismaClient, PrismaTransaction } from '#libs/db';
import { ChorusError } from '#libs/errors';
import {
  announceJob,
  enqueueJob,
  submitJob,
  type SubmitJobOptions,
} from '#libs/jobs';
import { JobQueue } from '#libs/queue';

import { Principal } from '../auth/principal';
import { parseId } from '../common/input';
import { pageQuery, toPage } from '../common/pagination';
import type { JobListArgs } from './job.types';
import { PRISMA, QUEUE } from '../core/tokens';

/** Records jobs and queues them in the same transaction. */
@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(QUEUE) private readonly queue: JobQueue,
  ) {}

  /**
   * The Job row, its queue entry and its QUEUED event commit together or
   * not at all: no job without a row, no row that no worker will ever see.
   */
  async submit(options: SubmitJobOptions, tx?: PrismaTransaction) {
    const job = tx
      ? await submitJob(tx, this.queue, options)
      : await this.prisma.$transaction((inner) =>
          submitJob(inner, this.queue, options),
        );
    this.logger.log(
      { projectId: job.projectId, jobId: job.id, kind: job.kind },
      'Job queued',
    );

    return job;
  }

  /** Cancels a queued or running job; a running one stops within a batch. */
  async cancel(principal: Principal, id: string) {
    const job = await this.find(principal, id);
    if (!['QUEUED', 'RUNNING'].includes(job.status)) {
      throw ChorusError.conflict(
        `Job ${id} is ${job.status}; only QUEUED or RUNNING jobs can be cancelled.`,
      );
    }

    return this.prisma.$transaction(async (tx) => {
      // A queued delivery is skipped by the worker that takes it; a running
      // one notices the status and stops its training.
      const row = await tx.job.update({
        where: { id },
        data: { status: 'CANCELLED', finishedAt: new Date() },
      });
      await announceJob(tx, row, 'cancelled');

      return row;
    });
  }

  /** Queues a FAILED or CANCELLED job again, as a new attempt. */
  async retry(principal: Principal, id: string) {
    const job = await this.find(principal, id);
    if (!['FAILED', 'CANCELLED'].includes(job.status)) {
      throw ChorusError.conflict(
        `Job ${id} is ${job.status}; only FAILED or CANCELLED jobs can be retried.`,
      );
    }

    return this.prisma.$transaction(async (tx) => {
      const row = await tx.job.update({
        where: { id },
        data: { status: 'QUEUED', error: Prisma.DbNull, finishedAt: null },
      });
      await enqueueJob(tx, this.queue, row, 'queued again');

      return row;
    });
  }

  async find(principal: Principal, id: string) {
    parseId(id);
    const job = await this.prisma.job.findFirst({
      where: { id, projectId: principal.projectId },
    });
    if (!job) {
      throw ChorusError.notFound('Job', id);
    }

    return job;
  }

  async list(principal: Principal, args: JobListArgs) {
    const query = pageQuery(args);
    if (args.modelId) {
      parseId(args.modelId, 'modelId');
    }
    const rows = await this.prisma.job.findMany({
      ...query,
      where: {
        AND: [
          query.where,
          { projectId: principal.projectId },
          args.status ? { status: args.status } : {},
          args.kind ? { kind: args.kind } : {},
          args.modelId ? { modelId: args.modelId } : {},
        ],
      },
    });

    return toPage(rows, args);
  }
}
