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

  /**
   * Events of one project, ended when the subscriber goes away. The
   * listener is in place when this returns, so an event published after
   * the call is delivered even if nothing has asked for one yet; `first`,
   * when given, is delivered before them (a snapshot read after the call,
   * which so misses nothing between the two).
   */
  events(
    projectId: string,
    filter: (event: JobEvent) => boolean = () => true,
    first?: () => Promise<JobEvent>,
  ): AsyncGenerator<JobEvent> {
    const controller = new AbortController();
    const live = on(this.emitter, projectId, { signal: controller.signal });

    const generator = (async function* () {
      try {
        if (first) {
          yield await first();
        }
        for await (const [event] of live) {
          if (filter(event as JobEvent)) {
            yield event as JobEvent;
          }
        }
      } catch (error) {
        // Ended by return() while waiting: the wait ends, quietly.
        if (!controller.signal.aborted) {
          throw error;
        }
      } finally {
        controller.abort();
      }
    })();
    // Ended before its first next(), a generator skips its finally: the
    // listener must go all the same.
    const end = generator.return.bind(generator);
    generator.return = (value) => {
      controller.abort();

      return end(value);
    };

    return generator;
  }
}
