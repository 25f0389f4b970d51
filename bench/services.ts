/**
 * The services a bench runs the platform on: an embedded Postgres with the
 * migrations applied and, unless told otherwise, an embedded S3 server, in a
 * scratch directory that `stop` removes; and the environment an API or
 * worker process needs to use them, with a fresh admin key.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { applyMigrations } from '#libs/db';
import {
  freePort,
  startEmbeddedPostgres,
  startEmbeddedS3,
  type EmbeddedS3Handle,
} from '#libs/embedded';
import { ObjectStorage } from '#libs/storage';

export interface BenchServices {
  databaseUrl: string;
  /** The admin key `env` sets. */
  adminKey: string;
  /** Environment for PlatformProcess: database, storage, key, quiet logs. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startBenchServices(
  options: { s3?: boolean } = {},
): Promise<BenchServices> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chorus-bench-'));
  chmodSync(dir, 0o755);
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
  });
  let s3: EmbeddedS3Handle | undefined;
  const stop = async () => {
    await s3?.stop();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (options.s3 !== false) {
      s3 = await startEmbeddedS3({ directory: path.join(dir, 's3'), port: 0 });
    }
    await applyMigrations(postgres.databaseUrl);
  } catch (error) {
    await stop();
    throw error;
  }
  const adminKey = `chorus_${randomBytes(32).toString('base64url')}`;

  return {
    databaseUrl: postgres.databaseUrl,
    adminKey,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      DATABASE_URL: postgres.databaseUrl,
      ...(s3
        ? {
            S3_ENDPOINT: s3.endpoint,
            S3_ACCESS_KEY: s3.accessKey,
            S3_SECRET_KEY: s3.secretKey,
          }
        : {}),
      CHORUS_ADMIN_KEY: adminKey,
      HOST: '127.0.0.1',
    },
    stop,
  };
}

/**
 * The storage of bench processes that pass an S3 server's endpoint and keys
 * to each other as JSON (`config`); objects go to the bucket `bench`.
 */
export function benchStorage(config: string): ObjectStorage {
  return new ObjectStorage({
    ...(JSON.parse(config) as {
      endpoint: string;
      accessKey: string;
      secretKey: string;
    }),
    region: 'us-east-1',
    bucket: 'bench',
    presignMaxSeconds: 600,
  });
}
