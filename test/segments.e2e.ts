import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';

import { freePort, PlatformProcess } from '#libs/embedded';

import { apiUrl, gql } from './support/client';
import {
  modelOnThreeTargets,
  startTraining,
  waitForJob,
} from './support/training';

/**
 * A GPU worker of its own whose trainings run in 1-second segments; the job
 * is started with capability GPU so the shared CPU worker cannot take it.
 */
describe('a training longer than one segment', () => {
  let worker: PlatformProcess | undefined;

  afterAll(() => worker?.stop());

  it('continues from its checkpoint in new deliveries and ends with one version and every epoch once', async () => {
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
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
    await new Promise((resolve) => setTimeout(resolve, 300));
    worker = new PlatformProcess('worker', {
      ...env,
      WORKER_CAPABILITY: 'gpu',
      WORKER_CONCURRENCY: '1',
      TRAIN_SEGMENT_SECONDS: '1',
      PORT: String(await freePort()),
    });
    worker.start();

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
