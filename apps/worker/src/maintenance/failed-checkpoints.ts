import type { PrismaClient } from '#libs/db';
import type { ObjectStorage } from '#libs/storage';

import { checkpointsOf } from '../handlers/attempt-keys';

/** Options for {@link sweepFailedCheckpoints}. */
export interface FailedCheckpointSweep {
  prisma: PrismaClient;
  storage: ObjectStorage;
  /** A failed job's checkpoints are kept this long after it failed. */
  retentionSeconds: number;
  /** Jobs handled per sweep. */
  limit?: number;
}

/**
 * Removes the checkpoints of jobs that failed for good longer ago than the
 * retention, which `retryJob` would otherwise resume from forever. Jobs are
 * claimed in one statement (marked, only while still FAILED), so sweeps on
 * several workers never take the same job; a retry after the removal finds
 * the checkpoint gone and starts over, clearing the earlier run's metrics
 * (until then they stay). A job that fails again after a retry is swept
 * again once it is old enough. Returns the ids of the jobs swept.
 */
export async function sweepFailedCheckpoints(
  options: FailedCheckpointSweep,
): Promise<string[]> {
  const { prisma, storage } = options;
  const cutoff = new Date(Date.now() - options.retentionSeconds * 1000);
  const claimed = await prisma.$queryRaw<{ id: string; projectId: string }[]>`
    UPDATE "Job" SET "checkpointsRemovedAt" = now()
    WHERE id IN (
      SELECT id FROM "Job"
      WHERE status = 'FAILED' AND "checkpointKey" IS NOT NULL
        AND "finishedAt" < ${cutoff}
        AND ("checkpointsRemovedAt" IS NULL
          OR "checkpointsRemovedAt" < "finishedAt")
      ORDER BY "finishedAt"
      LIMIT ${options.limit ?? 100}
      FOR UPDATE SKIP LOCKED)
    RETURNING id, "projectId"`;
  const swept: string[] = [];
  try {
    for (const job of claimed) {
      await storage.removePrefix(checkpointsOf(job));
      swept.push(job.id);
    }
  } catch (error) {
    // The jobs not yet swept are unclaimed, for the next sweep to retry.
    await prisma.job.updateMany({
      where: {
        id: {
          in: claimed.map((j) => j.id).filter((id) => !swept.includes(id)),
        },
      },
      data: { checkpointsRemovedAt: null },
    });
    throw error;
  }

  return swept;
}
