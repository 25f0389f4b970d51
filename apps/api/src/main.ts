import 'reflect-metadata';

import { ConfigError, loadEnv } from '#libs/config';

import { createApiApp } from './create-app';

async function main() {
  const env = loadEnv();
  const app = await createApiApp(env);
  await app.listen({ port: env.PORT, host: env.HOST });
  // Started by `npm start`: exit with the launcher, even if it was killed.
  process.on('disconnect', () => void app.close().then(() => process.exit(0)));
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`The API failed to start: ${error?.stack ?? error}\n`);
  process.exit(1);
});
