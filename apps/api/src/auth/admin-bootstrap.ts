import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';

import { Env } from '#libs/config';
import type { PrismaClient } from '#libs/db';

import { newApiKey } from './api-keys';
import { ENV, PRISMA } from '../core/tokens';

const BOOTSTRAP_LOCK = 4_217_002;

/**
 * On the first start, creates the system project and its ADMIN key: the one
 * from CHORUS_ADMIN_KEY, or a generated one that is printed this once.
 */
@Injectable()
export class AdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger(AdminBootstrap.name);

  constructor(
    @Inject(ENV) private readonly env: Env,
    @Inject(PRISMA) private readonly prisma: PrismaClient,
  ) {}

  async onApplicationBootstrap() {
    const { key, data } = newApiKey(
      'admin',
      ['ADMIN'],
      this.env.CHORUS_ADMIN_KEY,
    );
    const created = await this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`;
      if (await tx.project.findFirst({ where: { system: true } })) {
        return false;
      }
      await tx.project.create({
        data: {
          name: 'system',
          system: true,
          apiKeys: { create: data },
        },
      });

      return true;
    });
    if (!created) {
      return;
    }
    this.logger.log('Created the system project and its admin key');
    if (!this.env.CHORUS_ADMIN_KEY) {
      // Printed once, outside the structured log, so it is not shipped to
      // log storage with every other line.
      process.stdout.write(
        `\n  Admin API key (shown only now, keep it safe):\n  ${key}\n\n`,
      );
    }
  }
}
