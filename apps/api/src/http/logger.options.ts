import { randomUUID } from 'node:crypto';
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
      genReqId: (request: IncomingMessage, response) => {
        const given = request.headers['x-request-id'];
        const id =
          typeof given === 'string' && /^[\w-]{1,128}$/.test(given)
            ? given
            : randomUUID();
        response.setHeader('X-Request-Id', id);

        return id;
      },
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
