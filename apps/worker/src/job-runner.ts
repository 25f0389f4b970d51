import { hostname } from 'node:os';

import type { Logger } from 'pino';

import type {
  Job,
  JobKind,
  JobStatus,
  Prisma,
  PrismaClient,
  PrismaTransaction,
} from '#libs/db';
import { ChorusError } from '#libs/errors';
import { deliverJob, listenJobEvents, publishJobEvent } from '#libs/jobs';
import type { Capability, JobQueue, ReceivedJob } from '#libs/queue';

import { JobHandler, StaleAttemptError } from './handlers/job-handler';

/** The longest a failed job's clean-up may keep it from reading FAILED. */
const CLEANUP_TIMEOUT_MS = 60_000;

/** Options for {@link JobRunner}. */
export interface JobRunnerOptions {
  prisma: PrismaClient;
  queue: JobQueue;
  handlers: JobHandler[];
  logger: Logger;
  capabilities: Capability[];
  concurrency: number;
  /** For the job-event listener that carries cancellations to running jobs. */
  databaseUrl: string;
}

/**
 * Takes jobs from the queue and drives each Job row through its states.
 * Every write of an attempt is fenced by its attempt number, so an attempt
 * the queue has given up on (a zombie) cannot overwrite a newer one.
 */
export class JobRunner {
  readonly workerId = `${hostname()}:${process.pid}`;
  private readonly handlers: Map<JobKind, JobHandler>;
  private readonly shutdown = new AbortController();
  /** Running jobs of this process, aborted when their job is cancelled. */
  private readonly running = new Map<string, AbortController>();
  private stopListening?: () => Promise<void>;

  get capabilities(): Capability[] {
    return this.options.capabilities;
  }

  constructor(private readonly options: JobRunnerOptions) {
    this.handlers = new Map(options.handlers.map((h) => [h.kind, h]));
  }

  async start(): Promise<void> {
    // cancelJob marks the row CANCELLED and publishes the event; a running
    // job hears it here at once. Should an event be missed, the job's next
    // fenced write fails because the row is no longer RUNNING.
    this.stopListening = await listenJobEvents({
      databaseUrl: this.options.databaseUrl,
      onEvent: (event) => {
        if (event.status === 'CANCELLED') {
          this.running.get(event.jobId)?.abort();
        }
      },
      onError: (error) =>
        this.options.logger.warn(
          { error: error.message },
          'Job event listener lost; reconnecting',
        ),
    });
    for (const capability of this.options.capabilities) {
      await this.options.queue.work(
        { capability, concurrency: this.options.concurrency },
        (job) => this.handle(job),
      );
    }
  }

  async stop(): Promise<void> {
    this.shutdown.abort();
    await this.stopListening?.();
  }

  /** Runs one delivery; throws only for faults the queue should retry. */
  async handle(delivery: ReceivedJob): Promise<void> {
    const { logger } = this.options;
    const { jobId } = delivery.message;
    const log = logger.child({ jobId, projectId: delivery.message.projectId });
    const claimed = await this.claim(jobId);
    if (!claimed) {
      log.info('Job skipped: it was cancelled, finished or removed');

      return;
    }
    const { job, attempt } = claimed;
    log.info({ attempt, kind: job.kind }, 'Job started');
    const handler = this.handlers.get(job.kind);
    const cancel = new AbortController();
    this.running.set(job.id, cancel);
    try {
      if (!handler) {
        throw ChorusError.badInput(
          'kind',
          `No handler for jobs of kind ${job.kind} on this worker.`,
        );
      }
      const outcome = await handler.run({
        job,
        attempt,
        signal: AbortSignal.any([
          this.shutdown.signal,
          delivery.signal,
          cancel.signal,
        ]),
        commit: (write) => this.commit(job.id, attempt, write),
        reportProgress: (progress, message, metrics) =>
          this.progress(job.id, attempt, progress, message, metrics),
      });
      if (outcome.continuation !== undefined) {
        await this.continueLater(job.id, attempt, outcome.continuation);
        log.info({ attempt }, 'Job continues in a new delivery');

        return;
      }
      await this.finish(job.id, attempt, 'SUCCEEDED', {
        result: (outcome.result ?? {}) as Prisma.InputJsonValue,
      });
      log.info({ attempt }, 'Job succeeded');
    } catch (error) {
      if (error instanceof StaleAttemptError) {
        log.warn({ attempt }, 'Attempt superseded; its results were dropped');

        return;
      }
      // A ChorusError is the job's own fault (bad config, bad data): retrying
      // cannot help, so the job fails now. Anything else may be transient.
      const final =
        error instanceof ChorusError ||
        delivery.retryCount >= delivery.retryLimit;
      const detail = {
        code: error instanceof ChorusError ? error.code : 'WORKER_ERROR',
        message: (error as Error).message,
        attempt,
      };
      if (final && handler?.failed) {
        // Removed before the job reads FAILED, so whoever sees the failure
        // finds nothing of it left in storage.
        await this.cleanUpFailed(handler, job, attempt, log);
      }
      await this.finish(job.id, attempt, final ? 'FAILED' : 'QUEUED', {
        error: detail,
      });
      log.warn({ attempt, final, error: detail.message }, 'Job attempt failed');
      if (!final) {
        throw error;
      }
    } finally {
      this.running.delete(job.id);
    }
  }

  /**
   * Runs the handler's clean-up of a job that failed for good. Its failure
   * is logged, not thrown, and it gets at most {@link CLEANUP_TIMEOUT_MS}:
   * an unreachable store must not hold the job RUNNING.
   */
  private async cleanUpFailed(
    handler: JobHandler,
    job: Job,
    attempt: number,
    log: Logger,
  ): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`gave up after ${CLEANUP_TIMEOUT_MS} ms`)),
        CLEANUP_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([handler.failed!(job, attempt), timeout]);
    } catch (error) {
      log.warn(
        { attempt, error: (error as Error).message },
        'What the failed job stored was not all removed',
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Marks the job RUNNING under a new attempt number, or returns undefined. */
  private async claim(jobId: string) {
    const { prisma } = this.options;

    return prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ attempt: number }[]>`
        UPDATE "Job"
        SET status = 'RUNNING', attempts = attempts + 1,
            attempt = attempt + 1, "workerId" = ${this.workerId},
            "startedAt" = now(), error = NULL
        WHERE id = ${jobId}::uuid AND status IN ('QUEUED', 'RUNNING')
        RETURNING attempt`;
      if (rows.length === 0) {
        return undefined;
      }
      const job = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
      await publishJobEvent(tx, {
        projectId: job.projectId,
        jobId,
        kind: job.kind,
        status: 'RUNNING',
        progress: job.progress,
        message: `attempt ${rows[0].attempt} started on ${this.workerId}`,
        at: new Date().toISOString(),
      });

      return { job, attempt: rows[0].attempt };
    });
  }

  private async commit<T>(
    jobId: string,
    attempt: number,
    write: (tx: PrismaTransaction) => Promise<T>,
  ): Promise<T> {
    return this.options.prisma.$transaction(
      async (tx) => {
        const owned = await tx.$queryRaw<unknown[]>`
          SELECT 1 FROM "Job"
          WHERE id = ${jobId}::uuid AND attempt = ${attempt}
            AND status = 'RUNNING'
          FOR UPDATE`;
        if (owned.length === 0) {
          throw new StaleAttemptError(jobId, attempt);
        }

        return write(tx);
      },
      { timeout: 60_000 },
    );
  }

  private async progress(
    jobId: string,
    attempt: number,
    progress: number,
    message?: string,
    metrics?: Record<string, number>,
  ) {
    await this.commit(jobId, attempt, async (tx) => {
      const job = await tx.job.update({
        where: { id: jobId },
        data: { progress: Math.min(1, Math.max(0, progress)) },
      });
      await publishJobEvent(tx, {
        projectId: job.projectId,
        jobId,
        kind: job.kind,
        status: job.status,
        progress: job.progress,
        message,
        metrics,
        at: new Date().toISOString(),
      });
    });
  }

  /**
   * Queues a job that stopped at a checkpoint as a new delivery of the same
   * row (QUEUED, progress kept), unless it was cancelled or superseded.
   * The next claim is a new attempt, so fencing holds across segments.
   */
  private async continueLater(jobId: string, attempt: number, message: string) {
    await this.options.prisma.$transaction(async (tx) => {
      const updated = await tx.job.updateMany({
        where: { id: jobId, attempt, status: 'RUNNING' },
        data: { status: 'QUEUED', workerId: null },
      });
      if (updated.count === 0) {
        return;
      }
      const job = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
      await deliverJob(tx, this.options.queue, job);
      await publishJobEvent(tx, {
        projectId: job.projectId,
        jobId,
        kind: job.kind,
        status: 'QUEUED',
        progress: job.progress,
        message,
        at: new Date().toISOString(),
      });
    });
  }

  /** Writes the end of an attempt unless a newer attempt has taken over. */
  private async finish(
    jobId: string,
    attempt: number,
    status: JobStatus,
    data: { result?: Prisma.InputJsonValue; error?: Prisma.InputJsonValue },
  ) {
    await this.options.prisma.$transaction(async (tx) => {
      const done = status !== 'QUEUED';
      const updated = await tx.job.updateMany({
        where: { id: jobId, attempt, status: 'RUNNING' },
        data: {
          status,
          ...data,
          progress: status === 'SUCCEEDED' ? 1 : undefined,
          finishedAt: done ? new Date() : null,
        },
      });
      if (updated.count === 0) {
        return;
      }
      const job = await tx.job.findUniqueOrThrow({ where: { id: jobId } });
      await publishJobEvent(tx, {
        projectId: job.projectId,
        jobId,
        kind: job.kind,
        status,
        progress: job.progress,
        message: done ? status.toLowerCase() : 'retrying',
        at: new Date().toISOString(),
      });
    });
  }
}
