import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyInstance } from 'fastify';
import {
  collectDefaultMetrics,
  Counter,
  Histogram,
  Registry,
} from 'prom-client';

/** The sha256 of a string, to compare secrets of any length in constant time. */
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Process and HTTP metrics in Prometheus' text format at /metrics, for a
 * scraper that sends `Authorization: Bearer <token>`. Without a token
 * configured the route refuses every request: route names and traffic are
 * not for anyone who can reach the API.
 */
export function installMetrics(
  app: FastifyInstance,
  token: string | undefined,
): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chorus_' });
  const requests = new Counter({
    name: 'chorus_http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'chorus_http_request_duration_seconds',
    help: 'HTTP request duration by method and route.',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({
      method: request.method,
      route,
      status: String(reply.statusCode),
    });
    duration.observe(
      { method: request.method, route },
      reply.elapsedTime / 1000,
    );
  });
  const expected = token === undefined ? undefined : digest(token);
  app.get('/metrics', async (request, reply) => {
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '');
    if (!expected || !given || !timingSafeEqual(digest(given[1]), expected)) {
      return reply.code(401).send({
        error: {
          code: 'UNAUTHENTICATED',
          message: expected
            ? 'Send the metrics token as "Authorization: Bearer <METRICS_TOKEN>".'
            : 'Metrics are off: set METRICS_TOKEN on the API and send it as a bearer token.',
        },
      });
    }
    reply.header('Content-Type', registry.contentType);

    return registry.metrics();
  });

  return registry;
}
