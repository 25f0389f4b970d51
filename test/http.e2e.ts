import { describe, expect, inject, it } from 'vitest';

import { adminKey, apiUrl } from './support/client';

describe('HTTP surface', () => {
  it('reports liveness and readiness of Postgres and S3 without a key', async () => {
    const live = await fetch(`${apiUrl()}/health`);
    const ready = await fetch(`${apiUrl()}/health/ready`);

    expect(live.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'up',
      checks: { postgres: { status: 'up' }, storage: { status: 'up' } },
    });
  });

  it('serves Prometheus metrics that count requests, to the metrics token only', async () => {
    await fetch(`${apiUrl()}/health`);
    const { METRICS_TOKEN } = JSON.parse(inject('platformEnv')) as {
      METRICS_TOKEN: string;
    };
    const scrape = (authorization?: string) =>
      fetch(`${apiUrl()}/metrics`, {
        headers: authorization ? { authorization } : {},
      });

    const response = await scrape(`Bearer ${METRICS_TOKEN}`);
    const text = await response.text();
    const refused = [
      await scrape(),
      await scrape(`Bearer ${METRICS_TOKEN}x`),
      await scrape(`Bearer ${adminKey()}`),
    ];

    expect(response.status).toBe(200);
    for (const other of refused) {
      expect(other.status).toBe(401);
      expect(await other.json()).toMatchObject({
        error: {
          code: 'UNAUTHENTICATED',
          message: expect.stringContaining('METRICS_TOKEN'),
        },
      });
    }

    expect(text).toMatch(
      /chorus_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/,
    );
    expect(text).toContain('chorus_process_resident_memory_bytes');
  });

  it('publishes an OpenAPI document and a docs page', async () => {
    const document = (await (
      await fetch(`${apiUrl()}/docs/openapi.json`)
    ).json()) as { paths: Record<string, unknown> };
    const page = await fetch(`${apiUrl()}/docs`);

    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/datasets',
        '/v1/datasets/{id}/file',
        '/health/ready',
      ]),
    );
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/swagger/i);
  });

  it('allows the configured frontend origin and no other', async () => {
    const preflight = (origin: string) =>
      fetch(`${apiUrl()}/graphql`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization,content-type',
        },
      });

    const allowed = await preflight('https://app.example.test');
    const other = await preflight('https://evil.example.test');

    expect(allowed.headers.get('access-control-allow-origin')).toBe(
      'https://app.example.test',
    );
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('echoes the request id the caller sent', async () => {
    const response = await fetch(`${apiUrl()}/health/ready`, {
      headers: {
        'X-Request-Id': 'trace-123',
        Authorization: `Bearer ${adminKey()}`,
      },
    });

    expect(response.headers.get('x-request-id')).toBe('trace-123');
  });
});
