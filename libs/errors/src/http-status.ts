import { ErrorCode } from './error-code';

/** The HTTP status for each code; the switch is exhaustive on purpose. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.BadUserInput:
      return 400;
    case ErrorCode.Unauthenticated:
      return 401;
    case ErrorCode.Forbidden:
      return 403;
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.Conflict:
      return 409;
    case ErrorCode.PayloadTooLarge:
      return 413;
    case ErrorCode.RangeNotSatisfiable:
      return 416;
    case ErrorCode.RateLimited:
      return 429;
    case ErrorCode.QueryTooComplex:
      return 400;
    case ErrorCode.Unavailable:
      return 503;
    case ErrorCode.Internal:
      return 500;
    default:
      return assertNever(code);
  }
}

function assertNever(value: never): never {
  throw new Error(`Unhandled error code ${String(value)}`);
}
