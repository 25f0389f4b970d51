import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

import type { Env } from '#libs/config';

import type { JobContext } from '../handlers/job-handler';
import type { ChildMessage, TrainChildInput } from './messages';

/** How a training child ended: its result, or why it failed. */
export type ChildEnd = Extract<ChildMessage, { type: 'done' | 'failed' }>;

/**
 * Forks a training child for one attempt and passes on what it reports, in
 * order (an epoch is recorded before the next one); resolves with its end.
 * Cancelling the job's signal asks the child to stop before its next step;
 * a child that exits without a result rejects, so the job is retried.
 */
export function superviseChild(
  context: JobContext,
  input: TrainChildInput,
  record: (message: ChildMessage) => Promise<void> = async () => undefined,
): Promise<ChildEnd> {
  const { job, attempt } = context;
  const child: ChildProcess = fork(path.join(__dirname, 'train-child.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let queue = Promise.resolve();
  let ended = false;

  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      if (!ended) {
        ended = true;
        child.kill('SIGKILL');
        reject(error);
      }
    };
    // Cancelled, shutting down, or given up by the queue: the child stops
    // before its next step and reports `cancelled`.
    // A child that is exiting can no longer be written to: the callback
    // takes the EPIPE, which would otherwise be an 'error' event that ends
    // the worker; the child's exit is handled below.
    const stop = () => {
      if (child.connected) {
        child.send({ type: 'cancel' }, () => undefined);
      }
    };
    child.on('error', (error) => fail(error));
    context.signal.addEventListener('abort', stop, { once: true });
    child.on('message', (message: ChildMessage) => {
      // Handled in order: an epoch is recorded before the next one.
      queue = queue
        .then(() => record(message))
        .then(() => {
          if (message.type === 'done' || message.type === 'failed') {
            ended = true;
            resolve(message);
          }
        })
        .catch(fail);
    });
    child.on('exit', (code, signal) => {
      context.signal.removeEventListener('abort', stop);
      void queue.then(() =>
        fail(
          new Error(
            `The training process of job ${job.id} (attempt ${attempt}) ` +
              `ended without a result (${signal ?? `exit ${code}`}).`,
          ),
        ),
      );
    });
    child.send({ type: 'start', input });
    if (context.signal.aborted) {
      stop();
    }
  });
}

/** The child's object storage settings, from the worker's environment. */
export const childStorage = (env: Env): TrainChildInput['storage'] => ({
  endpoint: env.S3_ENDPOINT!,
  accessKey: env.S3_ACCESS_KEY!,
  secretKey: env.S3_SECRET_KEY!,
  region: env.S3_REGION,
  bucket: env.S3_BUCKET,
});
