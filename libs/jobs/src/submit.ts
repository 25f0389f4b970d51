import {
  sqlExecutor,
  type Job,
  type JobCapability,
  type JobKind,
  type Prisma,
  type PrismaTransaction,
} from '#libs/db';
import type { JobQueue } from '#libs/queue';

import { publishJobEvent } from './job-events';

export interface SubmitJobOptions {
  projectId: string;
  kind: JobKind;
  config: Prisma.InputJsonValue;
  /** Datasets the job reads; they cannot be deleted while it is live. */
  datasetIds?: string[];
  modelId?: string;
  capability?: JobCapability;
  priority?: number;
  /** Deliver no earlier than this (a deadline, for example). */
  startAfter?: Date;
}

/**
 * Records a Job row, sends it to the queue and announces it, all inside the
 * caller's transaction: no job without a row, no row no worker will see.
 * The API and the worker (which queues follow-up jobs) both submit here.
 */
export async function submitJob(
  tx: PrismaTransaction,
  queue: JobQueue,
  options: SubmitJobOptions,
): Promise<Job> {
  const row = await tx.job.create({
    data: {
      projectId: options.projectId,
      kind: options.kind,
      config: options.config,
      datasetIds: options.datasetIds ?? [],
      modelId: options.modelId,
      capability: options.capability ?? 'CPU',
      priority: options.priority ?? 0,
    },
  });
  await enqueueJob(tx, queue, row, 'queued', options.startAfter);

  return row;
}

/** Sends a QUEUED job row to the workers and tells subscribers, in tx. */
export async function enqueueJob(
  tx: PrismaTransaction,
  queue: JobQueue,
  row: Job,
  message: string,
  startAfter?: Date,
): Promise<void> {
  await deliverJob(tx, queue, row, startAfter);
  await announceJob(tx, row, message);
}

/** The highest job priority a caller may give, and the lowest its negative. */
export const MAX_JOB_PRIORITY = 1000;

/** How many places back fair sharing may put a job among its priority. */
const FAIR_SPAN = 1000;

/**
 * Puts a job row on the queue, in tx. The queue takes higher priorities
 * first and, within one, older jobs first; so that one project queueing a
 * hundred jobs does not hold every worker while another's single job
 * waits, a job goes as many places back within its priority as its project
 * has other live jobs (QUEUED or RUNNING) of its capability. Projects thus
 * take turns; the row keeps the priority it was given.
 */
export async function deliverJob(
  tx: PrismaTransaction,
  queue: JobQueue,
  row: Job,
  startAfter?: Date,
): Promise<void> {
  const ahead = await tx.job.count({
    where: {
      projectId: row.projectId,
      capability: row.capability,
      status: { in: ['QUEUED', 'RUNNING'] },
      id: { not: row.id },
    },
  });
  await queue.enqueue(
    { jobId: row.id, projectId: row.projectId, kind: row.kind },
    {
      capability: row.capability === 'GPU' ? 'gpu' : 'cpu',
      priority: row.priority * FAIR_SPAN - Math.min(ahead, FAIR_SPAN - 1),
      startAfter,
      tx: sqlExecutor(tx),
    },
  );
}

/** Publishes the row's current state as a job event, in tx. */
export async function announceJob(
  tx: PrismaTransaction,
  row: Job,
  message: string,
): Promise<void> {
  await publishJobEvent(tx, {
    projectId: row.projectId,
    jobId: row.id,
    kind: row.kind,
    status: row.status,
    progress: row.progress,
    message,
    at: new Date().toISOString(),
  });
}
