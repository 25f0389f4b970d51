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
 * retention, which `retryJob` would otherwise resume from forever. Each job
 * is claimed first (marked, only while it is still FAILED), so a sweep on
 * another worker or a retry in between leaves it alone; a retry after the
 * removal finds the checkpoint gone and starts over, clearing the earlier
 * run's metrics (until then they stay). A job
 * that fails again after a retry is swept again once it is old enough.
 * Returns the ids of the jobs swept.
 */
export async function sweepFailedCheckpoints(
  options: FailedCheckpointSweep,
): Promise<string[]> {
  const { prisma, storage } = options;
  const cutoff = new Date(Date.now() - options.retentionSeconds * 1000);
  const due = await prisma.$queryRaw<{ id: string; projectId: string }[]>`
    SELECT id, "projectId" FROM "Job"
    WHERE status = 'FAILED' AND "checkpointKey" IS NOT NULL
      AND "finishedAt" < ${cutoff}
      AND ("checkpointsRemovedAt" IS NULL
        OR "checkpointsRemovedAt" < "finishedAt")
    ORDER BY "finishedAt"
    LIMIT ${options.limit ?? 100}`;
  const swept: string[] = [];
  for (const job of due) {
    const claimed = await prisma.$executeRaw`
      UPDATE "Job" SET "checkpointsRemovedAt" = now()
      WHERE id = ${job.id}::uuid AND status = 'FAILED'
        AND ("checkpointsRemovedAt" IS NULL
          OR "checkpointsRemovedAt" < "finishedAt")`;
    if (claimed !== 1) {
      continue;
    }
    try {
      await storage.removePrefix(checkpointsOf(job));
    } catch (error) {
      // Unclaimed again, so that the next sweep tries once more.
      await prisma.job.update({
        where: { id: job.id },
        data: { checkpointsRemovedAt: null },
      });
      throw error;
    }
    swept.push(job.id);
  }

  return swept;
}
