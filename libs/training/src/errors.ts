/**
 * A training option or spec is invalid. `field` names the option as a dotted
 * path (for example `tasks[1].kind`) so the service can report it as bad user
 * input; the message says what would be valid.
 */
export class TrainingConfigError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'TrainingConfigError';
    this.field = field;
  }
}

/**
 * A task's loss became NaN or infinite. Training stops before the step's
 * gradients are applied, so the weights of the last good step are intact.
 */
export class TrainingDivergedError extends Error {
  readonly task: string;
  readonly epoch: number;
  readonly step: number;
  readonly value: number;

  constructor(task: string, epoch: number, step: number, value: number) {
    super(
      `The loss of task "${task}" became ${value} at epoch ${epoch}, step ` +
        `${step}. Lower the learning rate, enable gradient clipping or check ` +
        'the target column for extreme values.',
    );
    this.name = 'TrainingDivergedError';
    this.task = task;
    this.epoch = epoch;
    this.step = step;
    this.value = value;
  }
}
