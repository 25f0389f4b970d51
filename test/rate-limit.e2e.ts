import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { freePort, PlatformProcess, waitForReady } from '#libs/embedded';

import { codeOf, gql, newProject } from './support/client';

// An API instance of its own with a budget of 100 requests per key a minute.
const LIMIT = 100;

describe('rate limit', () => {
  let api: PlatformProcess;
  let base: string;

  beforeAll(async () => {
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const port = await freePort();
    api = new PlatformProcess('api', {
      ...env,
      PORT: String(port),
      RATE_LIMIT_REQUESTS: String(LIMIT),
    });
    api.start();
    base = `http://127.0.0.1:${port}`;
    await waitForReady(`${base}/health/ready`);
  });

  afterAll(() => api.stop());

  it('counts every aliased GraphQL field and answers 429 with RATE_LIMITED', async () => {
    const project = await newProject();
    const fields = Array.from(
      { length: LIMIT + 10 },
      (_, i) => `a${i}: me { platformAdmin }`,
    );

    const result = await gql(project.key, `{ ${fields.join(' ')} }`, {}, base);

    // The 101st alias is the first over the budget; `me` is non-null, so
    // its error ends the whole operation.
    expect(result.status).toBe(429);
    expect(codeOf(result)).toBe('RATE_LIMITED');
    expect(result.errors?.[0].path).toEqual([`a${LIMIT}`]);
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
});
