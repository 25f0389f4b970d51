import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createPrismaClient } from '#libs/db';
import { freePort, PlatformProcess, waitForReady } from '#libs/embedded';

import { PostgresThrottlerStorage } from '../apps/api/src/rate-limit/postgres-throttler.storage';

import { codeOf, gql, newProject } from './support/client';

// An API instance of its own with a budget of 100 requests per key a minute.
const LIMIT = 100;

/** Starts an API instance with that budget; resolves with its address. */
async function startApi(instances: PlatformProcess[]): Promise<string> {
  const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
  const port = await freePort();
  const api = new PlatformProcess('api', {
    ...env,
    PORT: String(port),
    RATE_LIMIT_REQUESTS: String(LIMIT),
  });
  instances.push(api);
  api.start();
  const base = `http://127.0.0.1:${port}`;
  await waitForReady(`${base}/health/ready`);

  return base;
}

describe('rate limit', () => {
  const instances: PlatformProcess[] = [];
  let base: string;
  let second: string;

  beforeAll(async () => {
    [base, second] = await Promise.all([
      startApi(instances),
      startApi(instances),
    ]);
  });

  afterAll(() => Promise.all(instances.map((api) => api.stop())));

  it('counts every aliased GraphQL field and answers 429 with RATE_LIMITED', async () => {
    const project = await newProject();
    const fields = Array.from(
      { length: LIMIT + 10 },
      (_, i) => `a${i}: me { platformAdmin }`,
    );

    const result = await gql(project.key, `{ ${fields.join(' ')} }`, {}, base);

    // The alias counted 101st is over the budget; `me` is non-null, so its
    // error ends the whole operation. Root fields run concurrently, so
    // their counts land in any order: which alias that is varies.
    expect(result.status).toBe(429);
    expect(codeOf(result)).toBe('RATE_LIMITED');
    expect(result.errors?.[0].path).toEqual([expect.stringMatching(/^a\d+$/)]);
    expect(result.errors?.[0].message).toMatch(/more than 100 requests/);
  });

  it('shares one budget between GraphQL and REST, per key', async () => {
    const project = await newProject();
    const other = await newProject();
    const fields = Array.from(
      { length: LIMIT },
      (_, i) => `a${i}: me { platformAdmin }`,
    );
    await gql(project.key, `{ ${fields.join(' ')} }`, {}, base);

    const graphql = await gql(
      project.key,
      '{ me { platformAdmin } }',
      {},
      base,
    );
    const rest = await fetch(
      `${base}/v1/datasets/00000000-0000-4000-8000-000000000000/file`,
      { headers: { Authorization: `Bearer ${project.key}` } },
    );
    const body = (await rest.json()) as { error: { code: string } };
    const otherKey = await gql(other.key, '{ me { platformAdmin } }', {}, base);

    expect(graphql.status).toBe(429);
    expect(codeOf(graphql)).toBe('RATE_LIMITED');
    expect(rest.status).toBe(429);
    expect(rest.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(otherKey.errors).toBeUndefined();
  });

  it('spends one budget per key across API instances', async () => {
    const project = await newProject();
    const fields = (n: number) =>
      Array.from({ length: n }, (_, i) => `a${i}: me { platformAdmin }`);
    const first = await gql(
      project.key,
      `{ ${fields(60).join(' ')} }`,
      {},
      base,
    );
    const other = await gql(
      project.key,
      `{ ${fields(40).join(' ')} }`,
      {},
      second,
    );

    const over = await Promise.all(
      [base, second].map((at) =>
        gql(project.key, '{ me { platformAdmin } }', {}, at),
      ),
    );

    expect(first.errors).toBeUndefined();
    expect(other.errors).toBeUndefined();
    // 60 + 40 spent the budget of 100: each instance refuses the next.
    expect(over.map((r) => codeOf(r))).toEqual([
      'RATE_LIMITED',
      'RATE_LIMITED',
    ]);
  });
});

describe('rate-limit windows in Postgres', () => {
  it('count hits from every client atomically and start over when the window ends', async () => {
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const clients = [0, 1].map(() =>
      createPrismaClient({ databaseUrl: env.DATABASE_URL! }),
    );
    const [a, b] = clients.map((c) => new PostgresThrottlerStorage(c));
    const key = `test:${randomUUID()}`;
    try {
      const hits = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).increment(key, 1500, 15),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 1600));
      const after = await a.increment(key, 1500, 15);

      expect(hits.map((h) => h.totalHits).sort((x, y) => x - y)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect(hits.filter((h) => h.isBlocked)).toHaveLength(5);
      expect(Math.max(...hits.map((h) => h.timeToExpire))).toBeLessThanOrEqual(
        2,
      );
      expect(after).toMatchObject({ totalHits: 1, isBlocked: false });
    } finally {
      await Promise.all(clients.map((c) => c.$disconnect()));
    }
  });
});
