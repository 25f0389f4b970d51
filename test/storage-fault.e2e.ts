import { createHash } from 'node:crypto';

import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { freePort, PlatformProcess } from '#libs/embedded';

import { gql } from './support/client';
import { S3FaultProxy } from './support/s3-fault-proxy';
import {
  modelOnThreeTargets,
  startTraining,
  waitForJob,
  type JobView,
} from './support/training';

/**
 * A GPU worker of its own talks to S3 through a proxy that refuses the first
 * attempt's artifact upload. The job is started with capability GPU, so the
 * shared (CPU-only) worker cannot take it.
 */
describe('object storage unavailable while the artifact is written', () => {
  const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
  let proxy: S3FaultProxy;
  let worker: PlatformProcess | undefined;
  let db: Client;

  beforeAll(async () => {
    proxy = await S3FaultProxy.start(env.S3_ENDPOINT!);
    db = new Client({ connectionString: env.DATABASE_URL });
    await db.connect();
  });

  afterAll(async () => {
    await worker?.stop();
    await proxy.stop();
    await db.end();
  });

  /** Versions of the model whose artifact object is not in storage. */
  async function versionsMissingTheirObject(modelId: string) {
    const { rows } = await db.query<{ id: string; artifactKey: string }>(
      'SELECT id, "artifactKey" FROM "ModelVersion" WHERE "modelId" = $1',
      [modelId],
    );
    const missing: string[] = [];
    for (const row of rows) {
      const head = await fetch(
        `${env.S3_ENDPOINT}/${env.S3_BUCKET}/${row.artifactKey}`,
        { method: 'HEAD' },
      );
      if (head.status !== 200) {
        missing.push(`${row.id} -> ${row.artifactKey} (${head.status})`);
      }
    }

    return missing;
  }

  it('retries the job, which then registers one version whose object exists with the published sha256', async () => {
    const { project, model } = await modelOnThreeTargets(300);
    const jobId = await startTraining(
      project.key,
      model.id,
      { epochs: 3, batchSize: 32 },
      'GPU',
    );
    // Every write of attempt 1's artifact is refused, however often the
    // storage client retries it; attempt 2 writes under its own key.
    proxy.fail(
      (method, path) =>
        method !== 'GET' &&
        method !== 'HEAD' &&
        path.includes(`/artifacts/${jobId}-1`),
    );
    worker = new PlatformProcess('worker', {
      ...env,
      S3_ENDPOINT: proxy.endpoint,
      WORKER_CAPABILITY: 'gpu',
      WORKER_CONCURRENCY: '1',
      PORT: String(await freePort()),
    });
    worker.start();

    // While the job runs, every version row must point at a stored object.
    const dangling: string[] = [];
    let running = true;
    const watcher = (async () => {
      while (running) {
        dangling.push(...(await versionsMissingTheirObject(model.id)));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const seen: JobView[] = [];
    const job = await waitForJob(
      project.key,
      jobId,
      (view) => {
        seen.push(view);

        return ['SUCCEEDED', 'FAILED'].includes(view.status);
      },
      150_000,
    )
      .catch((error: Error) => {
        // What the worker said is the only clue when the job never ends.
        error.message += `\nworker output:\n${worker?.output.join('').slice(-4000)}`;
        throw error;
      })
      .finally(async () => {
        running = false;
        await watcher;
      });
    dangling.push(...(await versionsMissingTheirObject(model.id)));

    const retrying = seen.find(
      (view) => view.status === 'QUEUED' && view.error?.attempt === 1,
    );
    const { rows } = await db.query<{
      artifactKey: string;
      sha256: string;
      jobId: string;
    }>(
      'SELECT "artifactKey", sha256, "jobId" FROM "ModelVersion" WHERE "modelId" = $1',
      [model.id],
    );
    const published = await gql<{ modelVersion: { sha256: string } }>(
      project.key,
      'query($id: ID!) { modelVersion(id: $id) { sha256 } }',
      { id: job.result!.versionId },
    );
    const object = await fetch(
      `${env.S3_ENDPOINT}/${env.S3_BUCKET}/${rows[0].artifactKey}`,
    );
    const sha256 = createHash('sha256')
      .update(Buffer.from(await object.arrayBuffer()))
      .digest('hex');

    expect(dangling).toEqual([]);
    expect(proxy.refused.length).toBeGreaterThan(0);
    expect(proxy.refused.every((r) => r.path.includes(`${jobId}-1`))).toBe(
      true,
    );
    expect(retrying?.error?.message).toMatch(/Training failed/);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBe(2);
    expect(rows).toEqual([
      expect.objectContaining({ jobId, artifactKey: expect.any(String) }),
    ]);
    expect(rows[0].artifactKey).toMatch(new RegExp(`${jobId}-2\\.zip$`));
    expect(object.status).toBe(200);
    expect(sha256).toBe(rows[0].sha256);
    expect(published.data!.modelVersion.sha256).toBe(sha256);
    for (const task of ['price', 'premium', 'tier']) {
      const epochs = job.metrics
        .filter((m) => m.task === task && m.split === 'train')
        .map((m) => m.epoch);
      expect(epochs, task).toEqual([1, 2, 3]);
    }
  }, 200_000);
});
