import { ApolloDriverConfig } from '@nestjs/apollo';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { Env } from '#libs/config';

import { ApiKeyService } from '../auth/api-key.service';
import { Principal } from '../auth/principal';
import { formatGraphqlError } from './format-error';
import { httpStatusPlugin } from './http-status.plugin';
import { queryLimitsPlugin } from './limits.plugin';

interface WsContext {
  connectionParams?: Record<string, unknown>;
  extra: { principal?: Principal };
}

/**
 * Apollo on the Fastify server: code-first schema, CSRF prevention, depth
 * and cost limits, errors through one mapper, and graphql-ws subscriptions
 * on the same port that authenticate with the key in connection parameters
 * (`{ authorization: "Bearer <key>" }`).
 */
export function graphqlOptions(
  env: Env,
  keys: ApiKeyService,
): ApolloDriverConfig {
  return {
    path: '/graphql',
    autoSchemaFile: true,
    sortSchema: true,
    csrfPrevention: true,
    introspection: env.GRAPHQL_INTROSPECTION ?? env.NODE_ENV !== 'production',
    playground: false,
    includeStacktraceInErrorResponses: false,
    formatError: formatGraphqlError,
    // Nest would reset every execution result to 200; httpStatusPlugin
    // decides instead (401 and 429 when nothing was resolved).
    preserveHttpStatusForExecutionErrors: false,
    plugins: [
      queryLimitsPlugin({
        maxDepth: env.GRAPHQL_MAX_DEPTH,
        maxCost: env.GRAPHQL_MAX_COST,
      }),
      httpStatusPlugin(),
    ],
    subscriptions: {
      'graphql-ws': {
        onConnect: async (ctx: WsContext) => {
          const params = ctx.connectionParams ?? {};
          const header = params.authorization ?? params.Authorization;
          try {
            ctx.extra.principal = await keys.authenticateHeader(header);

            return true;
          } catch {
            return false;
          }
        },
      },
    },
    context: (request: FastifyRequest | WsContext, reply?: FastifyReply) => {
      if ('extra' in request && request.extra) {
        return { req: { principal: request.extra.principal } };
      }

      return { req: request, reply };
    },
  } as ApolloDriverConfig;
}
