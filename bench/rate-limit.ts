/**
 * What counting rate limits in Postgres costs a request: the same hits on
 * @nestjs/throttler's in-memory storage and on PostgresThrottlerStorage (an
 * embedded Postgres), one at a time (the latency a request pays) and 32 at
 * a time (the throughput of a busy API instance), both over 32 keys. Prints
 * microseconds per hit and the ratios.
 * Usage: npm run build && node dist/bench/rate-limit.js
 */
import { ThrottlerStorageService } from '@nestjs/throttler';

import { createPrismaClient } from '#libs/db';

import { PostgresThrottlerStorage } from '../apps/api/src/rate-limit/postgres-throttler.storage';
import { startBenchServices } from './services';

type Increment = (key: string) => Promise<unknown>;

const HITS = Number(process.env.HITS ?? 4000);
const CONCURRENCY = 32;
const TTL = 60_000;

/** Microseconds per hit, one at a time and CONCURRENCY at a time. */
async function measure(increment: Increment) {
  const serial = process.hrtime.bigint();
  for (let i = 0; i < HITS; i++) {
    await increment(`key:${i % CONCURRENCY}`);
  }
  const serialUs = Number(process.hrtime.bigint() - serial) / 1e3 / HITS;
  const parallel = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, lane) => {
      for (let i = lane; i < HITS; i += CONCURRENCY) {
        await increment(`key:${lane}`);
      }
    }),
  );
  const parallelUs = Number(process.hrtime.bigint() - parallel) / 1e3 / HITS;

  return { serialUs, parallelUs };
}

async function main() {
  const services = await startBenchServices({ s3: false });
  const prisma = createPrismaClient({ databaseUrl: services.databaseUrl });
  try {
    const memory = new ThrottlerStorageService();
    const database = new PostgresThrottlerStorage(prisma);
    const runs = {
      memory: (key: string) =>
        memory.increment(key, TTL, HITS * 2, TTL, 'api-key'),
      postgres: (key: string) => database.increment(key, TTL, HITS * 2),
    };
    // Warm both (connections, JIT) before measuring.
    await measure(runs.memory);
    await measure(runs.postgres);
    const results = {
      memory: await measure(runs.memory),
      postgres: await measure(runs.postgres),
    };
    memory.onApplicationShutdown();
    for (const [name, r] of Object.entries(results)) {
      console.log(
        `${name.padEnd(8)} ${r.serialUs.toFixed(1).padStart(8)} us/hit one at a time` +
          `  ${r.parallelUs.toFixed(1).padStart(8)} us/hit ${CONCURRENCY} at a time`,
      );
    }
    console.log(
      `postgres / memory: ${(results.postgres.serialUs / results.memory.serialUs).toFixed(0)}x one at a time, ` +
        `${(results.postgres.parallelUs / results.memory.parallelUs).toFixed(0)}x ${CONCURRENCY} at a time`,
    );
  } finally {
    await prisma.$disconnect();
    await services.stop();
  }
}

void main();
