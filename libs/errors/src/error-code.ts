/**
 * Every failure a Chorus user can see carries one of these codes. Transports
 * map them exhaustively: GraphQL puts the code in `extensions.code`, REST maps
 * it to an HTTP status (see `httpStatusFor`).
 */
export enum ErrorCode {
  BadUserInput = 'BAD_USER_INPUT',
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  Conflict = 'CONFLICT',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  RangeNotSatisfiable = 'RANGE_NOT_SATISFIABLE',
  RateLimited = 'RATE_LIMITED',
  QueryTooComplex = 'QUERY_TOO_COMPLEX',
  Unavailable = 'UNAVAILABLE',
  Internal = 'INTERNAL_SERVER_ERROR',
}
