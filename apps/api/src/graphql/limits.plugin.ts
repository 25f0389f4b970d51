import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import {
  getComplexity,
  fieldExtensionsEstimator,
  simpleEstimator,
} from 'graphql-query-complexity';

import { ErrorCode } from '#libs/errors';

import { operationDepth } from './query-depth';

/** Options for {@link queryLimitsPlugin}. */
export interface QueryLimitsOptions {
  maxDepth: number;
  maxCost: number;
}

/**
 * Rejects over-deep and over-costly operations after parsing and validation
 * but before any resolver runs. Cost is one per field, times the page size
 * for list fields (declared with `complexity` on the field).
 */
export function queryLimitsPlugin(
  options: QueryLimitsOptions,
): ApolloServerPlugin {
  const reject = (message: string, details: Record<string, number>) =>
    new GraphQLError(message, {
      extensions: {
        code: ErrorCode.QueryTooComplex,
        ...details,
        http: { status: 400 },
      },
    });

  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request, schema }) {
          if (!operation) {
            return;
          }
          const depth = operationDepth(document, operation);
          if (depth > options.maxDepth) {
            throw reject(
              `The query is ${depth} levels deep; the limit is ` +
                `${options.maxDepth}. Ask for fewer nested fields.`,
              { depth, maxDepth: options.maxDepth },
            );
          }
          const cost = getComplexity({
            schema,
            query: document,
            operationName: request.operationName ?? undefined,
            variables: request.variables,
            estimators: [
              fieldExtensionsEstimator(),
              simpleEstimator({ defaultComplexity: 1 }),
            ],
          });
          if (cost > options.maxCost) {
            throw reject(
              `The query costs ${cost}; the limit is ${options.maxCost}. ` +
                `Ask for smaller pages or fewer fields.`,
              { cost, maxCost: options.maxCost },
            );
          }
        },
      };
    },
  };
}
