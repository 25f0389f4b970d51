import type { Env } from '#libs/config';
import type { PrismaClient } from '#libs/db';
import type { ObjectStorage } from '#libs/storage';
import { sweepStaleUploads } from '#libs/uploads';

import { JobContext, JobHandler, JobOutcome } from './job-handler';

/** Aborts a project's multipart uploads whose writer stopped heartbeating. */
export class SweepUploadsHandler implements JobHandler {
  readonly kind = 'SWEEP_UPLOADS' as const;

  constructor(
    private readonly deps: {
      env: Env;
      prisma: PrismaClient;
      storage: ObjectStorage;
    },
  ) {}

  async run({ job }: JobContext): Promise<JobOutcome> {
    const result = await sweepStaleUploads({
      prisma: this.deps.prisma,
      storage: this.deps.storage,
      staleSeconds: this.deps.env.UPLOAD_STALE_SECONDS,
      projectId: job.projectId,
    });

    return {
      result: result
        ? { ...result }
        : { aborted: 0, removedObjects: 0, skipped: 'another sweep ran' },
    };
  }
}
