import { ChorusError, ErrorCode } from '#libs/errors';

/**
 * A federated update (or any weights file) was refused. `field` names the
 * part at fault (`header`, `body`, `weights.<name>`), `reason` says what was
 * wrong and what would be valid.
 */
export class UpdateRejectedError extends ChorusError {
  readonly field: string;
  readonly reason: string;

  constructor(field: string, reason: string) {
    super(ErrorCode.BadUserInput, `${field}: ${reason}`, { field, reason });
    this.name = 'UpdateRejectedError';
    this.field = field;
    this.reason = reason;
  }
}

/**
 * Two models cannot be combined. `field` names the first difference found
 * (`features[2]`, `weights.backbone/dense_1/kernel`, `tasks.price.labels`);
 * the message names the sources involved.
 */
export class IncompatibleModelsError extends ChorusError {
  readonly field: string;

  constructor(field: string, message: string) {
    super(ErrorCode.BadUserInput, message, { field });
    this.name = 'IncompatibleModelsError';
    this.field = field;
  }
}

/** An option of a merge or round is invalid; `field` names it. */
export function badOption(field: string, message: string): ChorusError {
  return ChorusError.badInput(field, `${field}: ${message}`);
}
