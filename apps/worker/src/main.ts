import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';

import { ConfigError, loadEnv } from '#libs/config';

import { WorkerModule } from './worker.module';

/**
 * The worker process: takes jobs from the shared queue and sweeps uploads
 * whose writer died. Any number of workers may run, on any machines.
 */
async function main() {
  const env = loadEnv();
  const app = await NestFactory.createApplicationContext(
    WorkerModule.forRoot(env),
    { logger: ['error', 'warn'] },
  );
  app.enableShutdownHooks();
  // Started by `npm start`: exit with the launcher, even if it was killed.
  process.on('disconnect', () => void app.close().then(() => process.exit(0)));
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `The worker failed to start: ${error?.stack ?? error}\n`,
  );
  process.exit(1);
});
