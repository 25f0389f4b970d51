/** One recorded training step: the effective weight of each task. */
export interface StepWeights {
  /** Global step, counted from 0 over the whole run. */
  step: number;
  /** The epoch it belongs to, counted from 1 as in the job's metrics. */
  epoch: number;
  weights: Record<string, number>;
}

/** Every step below this is kept; later decades keep 1 step in 10, 100, ... */
export const ALL_STEPS_BELOW = 1000;

/**
 * Whether a step's task weights are stored. A job keeps at most about
 * 1,000 rows plus 900 per further decade of steps (2,800 for a million
 * steps), so a long run stays small while the start, where balancing moves
 * fastest, is kept in full.
 */
export function keepsStep(step: number): boolean {
  const stride =
    step < ALL_STEPS_BELOW
      ? 1
      : 10 ** Math.floor(Math.log10(step / ALL_STEPS_BELOW) + 1);

  return step % stride === 0;
}
