import { ErrorCode } from './error-code';

/** Structured facts about an error, safe to show to the caller. */
export interface ChorusErrorDetails {
  /** The input field or object at fault, as a dotted path. */
  field?: string;
  [key: string]: unknown;
}

/**
 * The one exception type domain code throws for expected failures. The
 * message is written for the user: it names the field or object and says what
 * would be valid.
 */
export class ChorusError extends Error {
  readonly code: ErrorCode;
  readonly details: ChorusErrorDetails;

  constructor(
    code: ErrorCode,
    message: string,
    details: ChorusErrorDetails = {},
  ) {
    super(message);
    this.name = 'ChorusError';
    this.code = code;
    this.details = details;
  }

  static badInput(field: string, message: string, extra: object = {}) {
    return new ChorusError(ErrorCode.BadUserInput, message, {
      field,
      ...extra,
    });
  }

  /** The same answer whether the id is unknown or belongs to another project. */
  static notFound(kind: string, id: string) {
    return new ChorusError(ErrorCode.NotFound, `${kind} ${id} was not found.`, {
      kind,
      id,
    });
  }

  static conflict(message: string, details: ChorusErrorDetails = {}) {
    return new ChorusError(ErrorCode.Conflict, message, details);
  }

  static unauthenticated(message: string) {
    return new ChorusError(ErrorCode.Unauthenticated, message);
  }

  static forbidden(message: string) {
    return new ChorusError(ErrorCode.Forbidden, message);
  }
}
