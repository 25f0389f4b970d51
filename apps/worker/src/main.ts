import 'reflect-metadata';

import pino from 'pino';

import { ConfigError, loadEnv, requireEnv } from '#libs/config';
import { createPrismaClient } from '#libs/db';
import { JobQueue } from '#libs/queue';
import { ObjectStorage } from '#libs/storage';
import { sweepStaleUploads } from '#libs/uploads';

import { SweepUploadsHandler } from './handlers/sweep-uploads.handler';
import { JobRunner } from './job-runner';

/**
 * The worker process: takes jobs from the shared queue and, on a timer,
 * sweeps uploads whose writer died. Any number of workers may run.
 */
async function main() {
  const env = loadEnv();
  const logger = pino({
    level: env.LOG_LEVEL,
    base: { service: 'worker', pid: process.pid },
  });
  const databaseUrl = requireEnv(env, 'DATABASE_URL');
  const prisma = createPrismaClient({ databaseUrl, poolSize: 5 });
  const storage = new ObjectStorage({
    endpoint: requireEnv(env, 'S3_ENDPOINT'),
    accessKey: requireEnv(env, 'S3_ACCESS_KEY'),
    secretKey: requireEnv(env, 'S3_SECRET_KEY'),
    region: env.S3_REGION,
    bucket: env.S3_BUCKET,
    presignMaxSeconds: env.PRESIGN_MAX_SECONDS,
  });
  await storage.ensureBucket();
  const queue = await JobQueue.start({ databaseUrl });
  const capability = env.WORKER_CAPABILITY ?? 'cpu';
  const runner = new JobRunner({
    prisma,
    queue,
    logger,
    concurrency: env.WORKER_CONCURRENCY,
    capabilities: capability === 'gpu' ? ['gpu', 'cpu'] : ['cpu'],
    handlers: [new SweepUploadsHandler({ env, prisma, storage })],
  });
  await runner.start();
  logger.info(
    {
      workerId: runner.workerId,
      capability,
      concurrency: env.WORKER_CONCURRENCY,
    },
    'Worker started',
  );

  const sweep = async () => {
    try {
      const result = await sweepStaleUploads({
        prisma,
        storage,
        staleSeconds: env.UPLOAD_STALE_SECONDS,
      });
      if (result && result.aborted > 0) {
        logger.info(result, 'Swept interrupted uploads');
      }
    } catch (error) {
      logger.warn({ error: (error as Error).message }, 'Upload sweep failed');
    }
  };
  await sweep();
  const timer = setInterval(sweep, env.SWEEP_INTERVAL_SECONDS * 1000);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      return;
    }
    stopping = true;
    logger.info({ signal }, 'Worker stopping');
    clearInterval(timer);
    runner.stop();
    await queue.stop();
    await prisma.$disconnect();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Started by `npm start`: exit with the launcher, even if it was killed.
  process.on('disconnect', () => void stop('launcher gone'));
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `The worker failed to start: ${error?.stack ?? error}\n`,
  );
  process.exit(1);
});
