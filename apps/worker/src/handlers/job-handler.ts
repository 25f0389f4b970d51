import type { Job, JobKind, PrismaTransaction } from '#libs/db';

/** What a handler gets besides the Job row. */
export interface JobContext {
  job: Job;
  /** The fencing token of this attempt; only it may write results. */
  attempt: number;
  /** Aborted when the job is cancelled or the worker shuts down. */
  signal: AbortSignal;
  /**
   * Runs writes in a transaction that first checks this attempt still owns
   * the job; a stale attempt gets StaleAttemptError and writes nothing.
   */
  commit<T>(write: (tx: PrismaTransaction) => Promise<T>): Promise<T>;
  /** Records progress (0 to 1) and tells subscribers. */
  reportProgress(
    progress: number,
    message?: string,
    metrics?: Record<string, number>,
  ): Promise<void>;
}

/**
 * What a handler returns when the job did what it should, or, with
 * `continuation`, when it stopped on purpose at a stored checkpoint: the
 * job is then queued again as a new delivery that continues from there
 * (the message says why, for subscribers).
 */
export type JobOutcome = {
  result?: Record<string, unknown>;
  continuation?: string;
};

/** One handler per job kind, thin, calling into libs. */
export interface JobHandler {
  readonly kind: JobKind;
  run(context: JobContext): Promise<JobOutcome>;
  /**
   * Called when the job has failed for good, `attempt` being its last, to
   * remove what its attempts stored that nothing references; the job reads
   * FAILED once it returns. The runner logs what it throws and stops
   * waiting for it after a minute.
   */
  failed?(job: Job, attempt: number): Promise<void>;
}

/** Thrown to an attempt that the queue has replaced by a newer one. */
export class StaleAttemptError extends Error {
  constructor(jobId: string, attempt: number) {
    super(`Attempt ${attempt} of job ${jobId} is no longer current.`);
    this.name = 'StaleAttemptError';
  }
}
