import { Client } from 'pg';

import type { JobKind, JobStatus, PrismaClient } from '#libs/db';

/** The Postgres NOTIFY channel that carries job events between processes. */
export const JOB_EVENTS_CHANNEL = 'chorus_job_events';

/** What subscribers learn when a job changes; small enough for NOTIFY. */
export interface JobEvent {
  projectId: string;
  jobId: string;
  kind: JobKind;
  status: JobStatus;
  progress: number;
  /** A short description of what happened, such as "epoch 3 finished". */
  message?: string;
  /** Epoch metrics or other numbers the event reports. */
  metrics?: Record<string, number>;
  at: string;
}

/**
 * Publishes an event to every API instance. NOTIFY is transactional: sent
 * inside a transaction, it is delivered only if that transaction commits.
 */
export async function publishJobEvent(
  db: Pick<PrismaClient, '$executeRaw'>,
  event: JobEvent,
): Promise<void> {
  await db.$executeRaw`SELECT pg_notify(${JOB_EVENTS_CHANNEL}, ${JSON.stringify(event)})`;
}

/** Options for {@link listenJobEvents}. */
export interface ListenOptions {
  databaseUrl: string;
  onEvent: (event: JobEvent) => void;
  onError: (error: Error) => void;
}

/**
 * Holds one connection that LISTENs for job events and reconnects when it
 * drops. Returns a function that stops listening.
 */
export async function listenJobEvents(
  options: ListenOptions,
): Promise<() => Promise<void>> {
  let client: Client | undefined;
  let stopped = false;

  const connect = async (): Promise<void> => {
    const next = new Client({ connectionString: options.databaseUrl });
    next.on('notification', (message) => {
      if (message.channel === JOB_EVENTS_CHANNEL && message.payload) {
        options.onEvent(JSON.parse(message.payload) as JobEvent);
      }
    });
    next.on('error', (error) => {
      options.onError(error);
      void next.end().catch(() => undefined);
      if (!stopped) {
        setTimeout(() => void connect().catch(options.onError), 1000);
      }
    });
    await next.connect();
    await next.query(`LISTEN ${JOB_EVENTS_CHANNEL}`);
    client = next;
  };
  await connect();

  return async () => {
    stopped = true;
    await client?.end();
  };
}
