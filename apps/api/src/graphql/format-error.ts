import { HttpException } from '@nestjs/common';
import { GraphQLFormattedError } from 'graphql';

import { ChorusError, ErrorCode } from '#libs/errors';

/** Codes Apollo itself uses for requests it could not accept. */
const APOLLO_INPUT_CODES = new Set([
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
]);

/**
 * The one mapper from thrown errors to GraphQL errors: a ChorusError keeps
 * its code, message and details; Nest HTTP exceptions map by status; Apollo's
 * own input errors become BAD_USER_INPUT; anything else is an internal error
 * whose message is not shown.
 */
export function formatGraphqlError(
  formatted: GraphQLFormattedError,
  error: unknown,
): GraphQLFormattedError {
  const original = (error as { originalError?: unknown })?.originalError;
  if (original instanceof ChorusError) {
    return {
      message: original.message,
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: original.code, ...original.details },
    };
  }
  if (original instanceof HttpException) {
    return {
      message: messageOf(original),
      path: formatted.path,
      extensions: { code: codeForStatus(original.getStatus()) },
    };
  }
  const code = formatted.extensions?.code as string | undefined;
  if (code && APOLLO_INPUT_CODES.has(code)) {
    return {
      ...formatted,
      extensions: { ...formatted.extensions, code: ErrorCode.BadUserInput },
    };
  }
  if (code && (Object.values(ErrorCode) as string[]).includes(code)) {
    return formatted;
  }

  return {
    message: 'Internal server error',
    path: formatted.path,
    extensions: { code: ErrorCode.Internal },
  };
}

export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
    case 422:
      return ErrorCode.BadUserInput;
    case 401:
      return ErrorCode.Unauthenticated;
    case 403:
      return ErrorCode.Forbidden;
    case 404:
      return ErrorCode.NotFound;
    case 409:
      return ErrorCode.Conflict;
    case 413:
      return ErrorCode.PayloadTooLarge;
    case 429:
      return ErrorCode.RateLimited;
    case 503:
      return ErrorCode.Unavailable;
    default:
      return status >= 500 ? ErrorCode.Internal : ErrorCode.BadUserInput;
  }
}

function messageOf(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') {
    return response;
  }
  const message = (response as { message?: unknown }).message;

  return Array.isArray(message)
    ? message.join('; ')
    : String(message ?? exception.message);
}
