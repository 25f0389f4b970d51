import { EventEmitter, on } from 'node:events';

import {
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';

import { Env, requireEnv } from '#libs/config';
import { JobEvent, listenJobEvents } from '#libs/jobs';

import { ENV } from './tokens';

/**
 * Carries job events from Postgres NOTIFY to this instance's subscribers, so
 * every API instance sees every event whichever process published it.
 */
@Injectable()
export class JobEventBus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(JobEventBus.name);
  private readonly emitter = new EventEmitter();
  private stopListening?: () => Promise<void>;

  constructor(@Inject(ENV) private readonly env: Env) {
    this.emitter.setMaxListeners(0);
  }

  async onModuleInit() {
    this.stopListening = await listenJobEvents({
      databaseUrl: requireEnv(this.env, 'DATABASE_URL'),
      onEvent: (event) => this.emitter.emit(event.projectId, event),
      onError: (error) =>
        this.logger.warn(`Job event listener lost: ${error.message}`),
    });
  }

  async onApplicationShutdown() {
    await this.stopListening?.();
  }

  /** Events of one project, ended when the subscriber goes away. */
  async *events(
    projectId: string,
    filter: (event: JobEvent) => boolean = () => true,
  ): AsyncGenerator<JobEvent> {
    const controller = new AbortController();
    try {
      for await (const [event] of on(this.emitter, projectId, {
        signal: controller.signal,
      })) {
        if (filter(event as JobEvent)) {
          yield event as JobEvent;
        }
      }
    } finally {
      controller.abort();
    }
  }
}
