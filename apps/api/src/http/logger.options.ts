import type { IncomingMessage } from 'node:http';

import type { Params } from 'nestjs-pino';

import { Env } from '#libs/config';

/**
 * Structured request logs: one line per request with a request id (taken
 * from X-Request-Id or generated, and echoed back), never the API key.
 */
export function loggerOptions(env: Env): Params {
  return {
    pinoHttp: {
      level: env.LOG_LEVEL,
      // Fastify has already taken X-Request-Id (or made one) and put it
      // back on the raw request.
      genReqId: (request: IncomingMessage) =>
        String(request.headers['x-request-id']),
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.query.key',
        ],
        censor: '[redacted]',
      },
      autoLogging: { ignore: (request) => request.url === '/health' },
      customProps: () => ({ service: 'api' }),
    },
  };
}
