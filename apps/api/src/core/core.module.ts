import {
  Global,
  Inject,
  Module,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';

import { Env, requireEnv } from '#libs/config';
import { createPrismaClient, PrismaClient } from '#libs/db';
import { JobQueue } from '#libs/queue';
import { ObjectStorage, storageFromEnv } from '#libs/storage';

import { JobEventBus } from './job-event-bus';
import { ENV, PRISMA, QUEUE, STORAGE } from './tokens';

/** The adapters every feature module uses: database, storage, queue, events. */
@Global()
@Module({})
export class CoreModule implements OnModuleInit, OnApplicationShutdown {
  static forRoot(env: Env) {
    return {
      module: CoreModule,
      providers: [
        { provide: ENV, useValue: env },
        {
          provide: PRISMA,
          useFactory: () =>
            createPrismaClient({
              databaseUrl: requireEnv(env, 'DATABASE_URL'),
            }),
        },
        { provide: STORAGE, useFactory: () => storageFromEnv(env) },
        {
          provide: QUEUE,
          useFactory: () =>
            JobQueue.start({ databaseUrl: requireEnv(env, 'DATABASE_URL') }),
        },
        JobEventBus,
      ],
      exports: [ENV, PRISMA, STORAGE, QUEUE, JobEventBus],
    };
  }

  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
    @Inject(QUEUE) private readonly queue: JobQueue,
  ) {}

  async onModuleInit() {
    await this.storage.ensureBucket();
  }

  async onApplicationShutdown() {
    await this.queue.stop();
    await this.prisma.$disconnect();
  }
}
