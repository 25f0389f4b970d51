import type { PrismaClient } from '#libs/db';
import type { ObjectStorage } from '#libs/storage';

/** Options for {@link sweepStaleUploads}. */
export interface SweepOptions {
  prisma: PrismaClient;
  storage: ObjectStorage;
  /** Sessions whose last heartbeat is older than this are abandoned. */
  staleSeconds: number;
  /** Only this project's sessions; all projects when unset. */
  projectId?: string;
}

export interface SweepResult {
  aborted: number;
  removedObjects: number;
}

/** Key of the advisory lock that keeps two sweeps from racing. */
const SWEEP_LOCK = 4_217_001;

/**
 * Aborts multipart uploads whose writer stopped heartbeating (a crashed or
 * killed process) and removes any object a half-finished completion left
 * under their key. Runs under an advisory lock; a sweep that cannot take it
 * returns at once, since another process is already sweeping.
 */
export async function sweepStaleUploads(
  options: SweepOptions,
): Promise<SweepResult | undefined> {
  const { prisma, storage } = options;

  return prisma.$transaction(
    async (tx) => {
      // A transaction-scoped lock: released at commit, on whatever pooled
      // connection the transaction ran.
      const [{ locked }] = await tx.$queryRaw<{ locked: boolean }[]>`
        SELECT pg_try_advisory_xact_lock(${SWEEP_LOCK}) AS locked`;
      if (!locked) {
        return undefined;
      }
      const cutoff = new Date(Date.now() - options.staleSeconds * 1000);
      const stale = await tx.uploadSession.findMany({
        where: {
          state: 'ACTIVE',
          heartbeatAt: { lt: cutoff },
          ...(options.projectId ? { projectId: options.projectId } : {}),
        },
        take: 200,
      });
      let removedObjects = 0;
      for (const session of stale) {
        if (session.uploadId) {
          await storage.abortMultipart(session.key, session.uploadId);
        }
        if (await storage.stat(session.key)) {
          await storage.remove(session.key);
          removedObjects += 1;
        }
        await tx.uploadSession.update({
          where: { id: session.id },
          data: { state: 'ABORTED' },
        });
      }

      return { aborted: stale.length, removedObjects };
    },
    { timeout: 300_000, maxWait: 10_000 },
  );
}
