import { PgBoss, type JobWithMetadata } from 'pg-boss';

/** Where a job can run: workers take only the queues they can serve. */
export type Capability = 'cpu' | 'gpu';

/** The payload of every queued Chorus job; the Job row holds the rest. */
export interface JobMessage {
  jobId: string;
  projectId: string;
  kind: string;
}

/** Runs SQL inside the caller's transaction, so a job and its row commit together. */
export interface SqlExecutor {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** Options for {@link JobQueue.start}. */
export interface JobQueueOptions {
  databaseUrl: string;
  /** Postgres schema for the queue tables. */
  schema?: string;
  /** Seconds without a heartbeat before a running job counts as dead. */
  heartbeatSeconds?: number;
  /** How many times a failed or expired job is tried again. */
  retryLimit?: number;
}

export interface EnqueueOptions {
  capability: Capability;
  /** Higher runs first. */
  priority?: number;
  /** Enqueue inside this transaction; without it the job is sent at once. */
  tx?: SqlExecutor;
  /** Deliver no earlier than this. */
  startAfter?: Date;
}

export interface WorkOptions {
  capability: Capability;
  /** Jobs this process runs at the same time. */
  concurrency: number;
}

export interface ReceivedJob {
  /** The queue's own id for this delivery. */
  queueJobId: string;
  /** How many times this job was delivered before (0 on the first try). */
  retryCount: number;
  /** Deliveries allowed after the first; the last try is retryCount === retryLimit. */
  retryLimit: number;
  /** Aborted when the queue gives up on this delivery or it is cancelled. */
  signal: AbortSignal;
  message: JobMessage;
}

export const queueName = (capability: Capability) =>
  `chorus-jobs-${capability}`;

/**
 * The adapter over pg-boss. Jobs are sent in the same transaction that
 * records them; workers heartbeat while a job runs, so a job is retried only
 * when its worker is really gone, however long the job takes.
 */
export class JobQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly options: Required<Omit<JobQueueOptions, 'databaseUrl'>>,
  ) {}

  static async start(options: JobQueueOptions): Promise<JobQueue> {
    const settings = {
      schema: options.schema ?? 'pgboss',
      heartbeatSeconds: options.heartbeatSeconds ?? 30,
      retryLimit: options.retryLimit ?? 3,
    };
    const boss = new PgBoss({
      connectionString: options.databaseUrl,
      schema: settings.schema,
      max: 4,
      // Workers wake on NOTIFY when a job is sent, instead of waiting out
      // their polling interval (which stays as the fallback).
      useListenNotify: true,
    });
    boss.on('error', (error) => {
      // pg-boss reports background maintenance failures here; they are
      // retried on its next cycle, so they are surfaced, not fatal.
      process.emitWarning(`pg-boss: ${(error as Error).message}`);
    });
    await boss.start();
    for (const capability of ['cpu', 'gpu'] as const) {
      await boss.createQueue(queueName(capability), {
        heartbeatSeconds: settings.heartbeatSeconds,
        // Heartbeats detect dead workers quickly; the expiry only bounds a
        // job that heartbeats forever. pg-boss caps it at 24 hours, so a job
        // that may run longer must checkpoint and continue in a new delivery.
        expireInSeconds: 24 * 3600,
        retryLimit: settings.retryLimit,
        retryDelay: 2,
        retryBackoff: true,
        notify: true,
      });
    }

    return new JobQueue(boss, settings);
  }

  async enqueue(message: JobMessage, options: EnqueueOptions): Promise<string> {
    const id = await this.boss.send(queueName(options.capability), message, {
      priority: options.priority ?? 0,
      db: options.tx,
      ...(options.startAfter ? { startAfter: options.startAfter } : {}),
    });
    if (!id) {
      throw new Error(`The queue refused job ${message.jobId}`);
    }

    return id;
  }

  /** Calls the handler for each job; a throw fails the delivery (retried). */
  async work(
    options: WorkOptions,
    handler: (job: ReceivedJob) => Promise<void>,
  ): Promise<void> {
    await this.boss.work<JobMessage>(
      queueName(options.capability),
      {
        localConcurrency: options.concurrency,
        batchSize: 1,
        includeMetadata: true,
        pollingIntervalSeconds: 1,
        // NOTIFY wakes an idle worker at once; this poll picks up the
        // backlog after each job (pg-boss' default backstop is 30 s).
        notifyPollingIntervalSeconds: 1,
      },
      async (jobs) => {
        const [job] = jobs as unknown as JobWithMetadata<JobMessage>[];
        await handler({
          signal: job.signal,
          queueJobId: job.id,
          retryCount: job.retryCount,
          retryLimit: job.retryLimit,
          message: job.data,
        });
      },
    );
  }

  /** Marks a queued or running delivery cancelled so no worker takes it. */
  async cancel(capability: Capability, queueJobId: string): Promise<void> {
    await this.boss.cancel(queueName(capability), queueJobId);
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, timeout: 10_000 });
  }

  get schema(): string {
    return this.options.schema;
  }
}
