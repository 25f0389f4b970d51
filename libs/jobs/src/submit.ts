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
  await queue.enqueue(
    { jobId: row.id, projectId: row.projectId, kind: row.kind },
    {
      capability: row.capability === 'GPU' ? 'gpu' : 'cpu',
      priority: row.priority,
      startAfter,
      tx: sqlExecutor(tx),
    },
  );
  await announceJob(tx, row, message);
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
