import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';

import type { PrismaClient } from '#libs/db';
import { ObjectStorage } from '#libs/storage';

import { Public } from '../auth/decorators';
import { PRISMA, STORAGE } from '../core/tokens';

type Check = { status: 'up' } | { status: 'down'; error: string };

const TIMEOUT_MS = 3000;

@ApiTags('health')
@Controller('health')
@Public()
export class HealthController {
  constructor(
    @Inject(PRISMA) private readonly prisma: PrismaClient,
    @Inject(STORAGE) private readonly storage: ObjectStorage,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Liveness: the process answers.' })
  live() {
    return { status: 'up' };
  }

  @Get('ready')
  @ApiOperation({
    summary: 'Readiness: Postgres and object storage are reachable.',
  })
  async ready(@Res() reply: FastifyReply) {
    const [postgres, storage] = await Promise.all([
      check(() => this.prisma.$queryRaw`SELECT 1`),
      check(() => this.storage.ping()),
    ]);
    const up = postgres.status === 'up' && storage.status === 'up';

    return reply
      .status(up ? 200 : 503)
      .send({ status: up ? 'up' : 'down', checks: { postgres, storage } });
  }
}

async function check(probe: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([probe(), timeout]);

    return { status: 'up' };
  } catch (error) {
    return { status: 'down', error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
