import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { ConfigError, loadEnv } from '#libs/config';
import { applyMigrations } from '#libs/db';
import {
  EmbeddedPostgresHandle,
  EmbeddedS3Handle,
  freePort,
  startEmbeddedPostgres,
  startEmbeddedS3,
  waitForReady,
} from '#libs/embedded';

import { Child } from './children';

const log = (line: string) => process.stdout.write(`[chorus] ${line}\n`);

/**
 * `npm start`: the whole platform on one machine. Uses DATABASE_URL and
 * S3_ENDPOINT when set, else starts an embedded Postgres and S3 server in
 * CHORUS_DATA_DIR; applies migrations; runs the API and one worker.
 */
async function main() {
  const env = loadEnv();
  const dataDir = path.resolve(env.CHORUS_DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  let postgres: EmbeddedPostgresHandle | undefined;
  let s3: EmbeddedS3Handle | undefined;
  const children: Child[] = [];

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) {
      return;
    }
    stopping = true;
    log('Stopping…');
    await Promise.all(children.map((child) => child.stop()));
    await s3?.stop().catch(() => undefined);
    await postgres?.stop().catch(() => undefined);
    log('Stopped.');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    let databaseUrl = env.DATABASE_URL;
    if (!databaseUrl) {
      postgres = await startEmbeddedPostgres({
        dataDir: path.join(dataDir, 'postgres'),
        port: await freePort(),
      });
      databaseUrl = postgres.databaseUrl;
      log(`Embedded Postgres running on ${new URL(databaseUrl).host}`);
    }
    const s3Env: NodeJS.ProcessEnv = {};
    if (!env.S3_ENDPOINT) {
      s3 = await startEmbeddedS3({
        directory: path.join(dataDir, 's3'),
        port: await freePort(),
      });
      Object.assign(s3Env, {
        S3_ENDPOINT: s3.endpoint,
        S3_ACCESS_KEY: s3.accessKey,
        S3_SECRET_KEY: s3.secretKey,
      });
      log(`Embedded S3 server running on ${s3.endpoint}`);
    }
    await applyMigrations(databaseUrl);
    log('Database migrations applied');

    // A metrics token for this run unless one is configured, so that the
    // printed /metrics URL can be scraped.
    const metricsToken =
      env.METRICS_TOKEN ?? `metrics_${randomBytes(24).toString('base64url')}`;
    const childEnv = {
      ...process.env,
      ...s3Env,
      DATABASE_URL: databaseUrl,
      METRICS_TOKEN: metricsToken,
    };
    const dist = path.resolve(__dirname, '..', '..');
    children.push(
      new Child({
        name: 'API',
        script: path.join(dist, 'api', 'src', 'main.js'),
        env: childEnv,
        log,
      }),
      new Child({
        name: 'worker',
        script: path.join(dist, 'worker', 'src', 'main.js'),
        env: childEnv,
        log,
      }),
    );
    children.forEach((child) => child.start());
    const base = `http://localhost:${env.PORT}`;
    await waitForReady(`${base}/health/ready`, 120_000);
    log(`Chorus is up.
    GraphQL   ${base}/graphql
    REST docs ${base}/docs
    Health    ${base}/health/ready
    Metrics   ${base}/metrics (Authorization: Bearer ${metricsToken})
  Press Ctrl-C to stop.`);
  } catch (error) {
    log(
      error instanceof ConfigError
        ? error.message
        : `Start failed: ${(error as Error).stack ?? error}`,
    );
    await stop(1);
  }
}

main().catch((error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
