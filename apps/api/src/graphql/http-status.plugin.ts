import type { ApolloServerPlugin } from '@apollo/server';

import { ErrorCode, httpStatusFor } from '#libs/errors';

const STATUS_CODES = new Set<string>([
  ErrorCode.Unauthenticated,
  ErrorCode.RateLimited,
]);

/**
 * When an operation produced no data and failed only for lack of a valid key
 * or for the rate limit, answer with that HTTP status (401, 429) as well, so
 * HTTP clients and proxies can react without reading the body.
 */
export function httpStatusPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') {
            return;
          }
          const { data, errors } = response.body.singleResult;
          const codes = new Set(
            (errors ?? []).map((e) => String(e.extensions?.code)),
          );
          const hasData =
            data && Object.values(data).some((value) => value !== null);
          if (codes.size === 1 && !hasData) {
            const [code] = codes;
            if (STATUS_CODES.has(code)) {
              response.http.status = httpStatusFor(code as ErrorCode);
            }
          }
        },
      };
    },
  };
}
