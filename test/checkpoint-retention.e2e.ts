import { randomUUID } from 'node:crypto';

import { describe, expect, inject, it } from 'vitest';

import { loadEnv } from '#libs/config';
import { createPrismaClient } from '#libs/db';
import { storageFromEnv } from '#libs/storage';

import { sweepFailedCheckpoints } from '../apps/worker/src/maintenance/failed-checkpoints';

import { newProject } from './support/client';

describe('checkpoint retention', () => {
  it('removes only the checkpoints of jobs that failed past the retention', async () => {
    const env = loadEnv(JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv);
    const prisma = createPrismaClient({ databaseUrl: env.DATABASE_URL! });
    const storage = storageFromEnv(env);
    const project = await newProject();
    const hourAgo = new Date(Date.now() - 3600_000);
    // A job of each kind, each with two stored checkpoints.
    const jobs = {
      oldFailure: { status: 'FAILED', finishedAt: hourAgo },
      newFailure: { status: 'FAILED', finishedAt: new Date() },
      succeeded: { status: 'SUCCEEDED', finishedAt: hourAgo },
      swept: {
        status: 'FAILED',
        finishedAt: hourAgo,
        checkpointsRemovedAt: new Date(Date.now() - 1800_000),
      },
    } as const;
    const ids: Record<string, string> = {};
    const listing = (jobId: string) =>
      storage.list(`projects/${project.id}/jobs/${jobId}/checkpoints/`);
    try {
      for (const [name, fields] of Object.entries(jobs)) {
        const id = randomUUID();
        ids[name] = id;
        const prefix = `projects/${project.id}/jobs/${id}/checkpoints/`;
        for (const epoch of [1, 2]) {
          const bytes = Buffer.from(`checkpoint ${epoch}`);
          await storage.put(
            `${prefix}attempt-1/epoch-${epoch}.ckpt`,
            bytes,
            bytes.length,
          );
        }
        await prisma.job.create({
          data: {
            id,
            projectId: project.id,
            kind: 'TRAIN',
            checkpointKey: `${prefix}attempt-1/epoch-2.ckpt`,
            checkpointEpoch: 2,
            ...fields,
          },
        });
      }
      await prisma.jobMetric.create({
        data: {
          jobId: ids.oldFailure,
          epoch: 1,
          task: 't',
          split: 'train',
          name: 'loss',
          value: 1,
        },
      });

      // Sweeps until one finds nothing: a database shared with earlier runs
      // may hold more old failures than one sweep takes.
      const swept: string[] = [];
      for (let sweeps = 0; sweeps < 100; sweeps++) {
        const batch = await sweepFailedCheckpoints({
          prisma,
          storage,
          retentionSeconds: 600,
        });
        swept.push(...batch);
        if (batch.length === 0) {
          break;
        }
      }

      expect(swept.filter((id) => Object.values(ids).includes(id))).toEqual([
        ids.oldFailure,
      ]);
      expect(await listing(ids.oldFailure)).toEqual([]);
      for (const kept of ['newFailure', 'succeeded', 'swept']) {
        expect(await listing(ids[kept]), kept).toHaveLength(2);
      }
      const row = await prisma.job.findUniqueOrThrow({
        where: { id: ids.oldFailure },
        include: { metrics: true },
      });
      expect(row.checkpointsRemovedAt).not.toBeNull();
      expect(row.metrics).toHaveLength(1);
    } finally {
      await prisma.job.deleteMany({
        where: { id: { in: Object.values(ids) } },
      });
      await storage.removePrefix(`projects/${project.id}/jobs/`);
      await prisma.$disconnect();
    }
  });
});
