import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Client } from 'pg';
import type { TestProject } from 'vitest/node';

import { applyMigrations } from '#libs/db';
import {
  freePort,
  PlatformProcess,
  startEmbeddedPostgres,
  startEmbeddedS3,
} from '#libs/embedded';

/**
 * Starts what the end-to-end tests drive: a real Postgres (embedded, or a
 * fresh database on the server in DATABASE_URL), the embedded S3 server,
 * migrations, and the built API and worker as separate processes.
 */
export default async function setup(project: TestProject) {
  const root = mkdtempSync(path.join(tmpdir(), 'chorus-e2e-'));
  // Postgres runs as its own user when we are root: it must reach the folder.
  chmodSync(root, 0o755);
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) {
      await step().catch((error) => console.error(error));
    }
    rmSync(root, { recursive: true, force: true });
  };

  try {
    const databaseUrl = await startDatabase(root, cleanups);
    const s3 = await startEmbeddedS3({
      directory: path.join(root, 's3'),
      port: 0,
    });
    cleanups.push(() => s3.stop());
    await applyMigrations(databaseUrl);

    const adminKey = `chorus_${randomBytes(32).toString('base64url')}`;
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'warn',
      DATABASE_URL: databaseUrl,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: 'chorus-e2e',
      CHORUS_ADMIN_KEY: adminKey,
      METRICS_TOKEN: 'e2e-metrics-token-0123456789',
      CORS_ORIGINS: 'https://app.example.test',
      GRAPHQL_MAX_DEPTH: '4',
      GRAPHQL_MAX_COST: '400',
      RATE_LIMIT_REQUESTS: '5000',
      RATE_LIMIT_WINDOW_SECONDS: '60',
      UPLOAD_MAX_BYTES: String(110 * 1024 * 1024),
      UPLOAD_PART_BYTES: String(5 * 1024 * 1024),
      UPLOAD_STALE_SECONDS: '3',
      SWEEP_INTERVAL_SECONDS: '1',
      WORKER_CONCURRENCY: '2',
      PORT: String(port),
      HOST: '127.0.0.1',
    };
    const api = new PlatformProcess('api', env);
    const worker = new PlatformProcess('worker', env);
    cleanups.push(
      () => api.stop(),
      () => worker.stop(),
    );
    worker.start();
    api.start();
    await api.waitUntilReady(`http://127.0.0.1:${port}/health/ready`);

    project.provide('apiUrl', `http://127.0.0.1:${port}`);
    project.provide('adminKey', adminKey);
    project.provide('platformEnv', JSON.stringify(env));
    project.provide('s3UploadsDir', s3.uploadsDir('chorus-e2e'));
    project.provide('workerPid', worker.pid ?? 0);
  } catch (error) {
    await cleanup();
    throw error;
  }

  return cleanup;
}

async function startDatabase(
  root: string,
  cleanups: (() => Promise<void>)[],
): Promise<string> {
  const external = process.env.DATABASE_URL;
  if (!external) {
    const postgres = await startEmbeddedPostgres({
      dataDir: path.join(root, 'postgres'),
      port: await freePort(),
    });
    cleanups.push(() => postgres.stop());

    return postgres.databaseUrl;
  }
  // A fresh database per run on the given server, dropped afterwards.
  const name = `chorus_e2e_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: external });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  cleanups.push(async () => {
    const client = new Client({ connectionString: external });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  });
  const url = new URL(external);
  url.pathname = `/${name}`;

  return url.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    apiUrl: string;
    adminKey: string;
    platformEnv: string;
    s3UploadsDir: string;
    workerPid: number;
  }
}
