import type { ThrottlerStorage } from '@nestjs/throttler';

import type { PrismaClient } from '#libs/db';

/** How often windows that ended a while ago are deleted. */
const SWEEP_MS = 60_000;

/**
 * Rate-limit counts in Postgres, so that every API instance spends from one
 * budget per key. Each key has a fixed window: the first hit opens it for
 * `ttl`, hits past `limit` are blocked until it ends. One statement per hit
 * (an upsert on the key) counts atomically, whichever instance serves it.
 * Ended windows are deleted by a sweep every minute.
 */
export class PostgresThrottlerStorage implements ThrottlerStorage {
  constructor(private readonly prisma: PrismaClient) {
    setInterval(() => void this.sweep(), SWEEP_MS).unref();
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
  ): ReturnType<ThrottlerStorage['increment']> {
    const [row] = await this.prisma.$queryRaw<
      { hits: number; seconds: number }[]
    >`
      INSERT INTO "RateLimitWindow" AS w (key, hits, "expiresAt")
      VALUES (${key}, 1, now() + ${ttl} * interval '1 millisecond')
      ON CONFLICT (key) DO UPDATE SET
        hits = CASE WHEN w."expiresAt" <= now() THEN 1 ELSE w.hits + 1 END,
        "expiresAt" = CASE WHEN w."expiresAt" <= now()
          THEN excluded."expiresAt" ELSE w."expiresAt" END
      RETURNING w.hits,
        extract(epoch FROM w."expiresAt" - now())::float8 AS seconds`;
    const timeToExpire = Math.max(0, Math.ceil(row.seconds));
    const isBlocked = row.hits > limit;

    return {
      totalHits: row.hits,
      timeToExpire,
      isBlocked,
      timeToBlockExpire: isBlocked ? timeToExpire : 0,
    };
  }

  /** Deletes windows that ended over a minute ago. */
  async sweep(): Promise<number> {
    return this.prisma.$executeRaw`
      DELETE FROM "RateLimitWindow"
      WHERE "expiresAt" < now() - interval '1 minute'`.catch(() => 0);
  }
}
