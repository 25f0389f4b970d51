import { createHash } from 'node:crypto';

import { createClient } from 'graphql-ws';
import { Client } from 'pg';
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  inject,
  it,
} from 'vitest';
import WebSocket from 'ws';

import { freePort, PlatformProcess } from '#libs/embedded';

import { apiUrl, gql } from './support/client';
import { S3FaultProxy } from './support/s3-fault-proxy';
import {
  modelOnThreeTargets,
  startTraining,
  waitForJob,
  type JobView,
} from './support/training';

/**
 * Trainings on a worker each test starts for itself, with settings of its
 * own. Their jobs are started with capability GPU and the worker takes only
 * GPU jobs, so neither the shared CPU worker takes these jobs nor this
 * worker anyone else's. The tests share this file so that they run one
 * after the other: their workers would otherwise take each other's jobs.
 */
const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
let worker: PlatformProcess | undefined;

async function startGpuWorker(settings: NodeJS.ProcessEnv) {
  worker = new PlatformProcess('worker', {
    ...env,
    WORKER_CAPABILITY: 'gpu',
    WORKER_TAKES_CPU_JOBS: 'false',
    WORKER_CONCURRENCY: '1',
    PORT: String(await freePort()),
    ...settings,
  });
  worker.start();

  return worker;
}

afterEach(async () => {
  await worker?.stop();
  worker = undefined;
});

describe('object storage unavailable while the artifact is written', () => {
  let proxy: S3FaultProxy;
  let db: Client;

  beforeAll(async () => {
    proxy = await S3FaultProxy.start(env.S3_ENDPOINT!);
    db = new Client({ connectionString: env.DATABASE_URL });
    await db.connect();
  });

  afterAll(async () => {
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
    await startGpuWorker({ S3_ENDPOINT: proxy.endpoint });

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
    // The first attempt failed on the refused artifact upload.
    expect(retrying?.error?.message).toMatch(/Training failed/);
    expect(retrying?.error?.message).toMatch(/HTTP 503/);
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

  it('fails for good after its retries and leaves no artifact of any attempt', async () => {
    const { project, model } = await modelOnThreeTargets(120);
    const jobId = await startTraining(
      project.key,
      model.id,
      { epochs: 1, batchSize: 32 },
      'GPU',
    );
    // Every attempt stores its artifact, then fails on its first per-task
    // artifact: nothing is ever registered.
    proxy.refused.length = 0;
    proxy.fail(
      (method, path) =>
        method === 'PUT' &&
        path.includes(`/artifacts/${jobId}-`) &&
        path.includes('/tasks/'),
    );
    await startGpuWorker({ S3_ENDPOINT: proxy.endpoint });

    const job = await waitForJob(
      project.key,
      jobId,
      (view) => ['SUCCEEDED', 'FAILED'].includes(view.status),
      150_000,
    ).catch((error: Error) => {
      error.message += `\nworker output:\n${worker?.output.join('').slice(-4000)}`;
      throw error;
    });
    const artifacts = `projects/${project.id}/models/${model.id}/artifacts/`;
    const listing = await fetch(
      `${env.S3_ENDPOINT}/${env.S3_BUCKET}?list-type=2&prefix=${artifacts}`,
    );
    const keys = [...(await listing.text()).matchAll(/<Key>([^<]+)<\/Key>/g)];
    const attempts = new Set(
      proxy.refused.map((r) => /-(\d+)\/tasks\//.exec(r.path)?.[1]),
    );

    expect(job.status).toBe('FAILED');
    expect(job.error?.message).toMatch(/HTTP 503/);
    expect(job.attempts).toBeGreaterThan(1);
    // Every attempt got as far as its per-task artifacts.
    expect([...attempts].sort()).toEqual(
      Array.from({ length: job.attempts }, (_, i) => String(i + 1)),
    );
    expect(keys.map((k) => k[1])).toEqual([]);
  }, 200_000);
});

describe('a training longer than one segment', () => {
  it('continues from its checkpoint in new deliveries and ends with one version and every epoch once', async () => {
    const { project, model } = await modelOnThreeTargets(3000);
    const events: { status: string; message?: string }[] = [];
    const client = createClient({
      url: `${apiUrl().replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${project.key}` },
    });
    const jobId = await startTraining(
      project.key,
      model.id,
      { epochs: 4, batchSize: 16 },
      'GPU',
    );
    client.subscribe<{ jobProgress: { status: string; message?: string } }>(
      {
        query: `subscription($id: ID!) { jobProgress(jobId: $id) { status message } }`,
        variables: { id: jobId },
      },
      {
        next: ({ data }) => data && events.push(data.jobProgress),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    // The subscription's first event is the job's state: it is live.
    while (events.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Segments of one second: every epoch or two ends one.
    await startGpuWorker({ TRAIN_SEGMENT_SECONDS: '1' });

    const job = await waitForJob(
      project.key,
      jobId,
      (j) => ['SUCCEEDED', 'FAILED'].includes(j.status),
      180_000,
    );
    await client.dispose();
    const versions = await gql<{ model: { versions: { jobId: string }[] } }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { jobId } } }',
      { id: model.id },
    );

    expect(job.error).toBeNull();
    expect(job.status).toBe('SUCCEEDED');
    const continued = events.filter(
      (e) => e.status === 'QUEUED' && /segment/.test(e.message ?? ''),
    );
    // At least two segments: one continuation or more, each a new attempt.
    expect(continued.length).toBeGreaterThanOrEqual(1);
    expect(job.attempts).toBe(continued.length + 1);
    for (const task of ['price', 'premium', 'tier']) {
      const epochs = job.metrics
        .filter((m) => m.task === task && m.split === 'train')
        .map((m) => m.epoch);
      expect(epochs, task).toEqual([1, 2, 3, 4]);
    }
    expect(versions.data!.model.versions).toEqual([{ jobId }]);
  }, 200_000);
});

describe('projects sharing the workers', () => {
  it('take turns: a job queued after another project’s backlog runs second, not last', async () => {
    const busy = await modelOnThreeTargets(60);
    const other = await modelOnThreeTargets(60);
    const backlog: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      backlog.push(
        await startTraining(
          busy.project.key,
          busy.model.id,
          { epochs: 1, batchSize: 32 },
          'GPU',
        ),
      );
    }
    const late = await startTraining(
      other.project.key,
      other.model.id,
      { epochs: 1, batchSize: 32 },
      'GPU',
    );
    // One job at a time, in the queue's order.
    await startGpuWorker({});
    const started = async (key: string, id: string) => {
      await waitForJob(key, id, (j) => j.status === 'SUCCEEDED', 150_000);
      const view = await gql<{ job: { startedAt: string } }>(
        key,
        'query($id: ID!) { job(id: $id) { startedAt } }',
        { id },
      );

      return { id, at: Date.parse(view.data!.job.startedAt) };
    };
    const order = (
      await Promise.all([
        ...backlog.map((id) => started(busy.project.key, id)),
        started(other.project.key, late),
      ])
    )
      .sort((a, b) => a.at - b.at)
      .map((s) => s.id);

    // Oldest first within one project; the other project's job right after
    // the backlog's first (first in first out, it would be fifth).
    expect(order).toEqual([backlog[0], late, ...backlog.slice(1)]);
  }, 200_000);
});
