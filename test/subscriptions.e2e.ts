import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { apiUrl, gql, jobEventsLive, newProject } from './support/client';

interface JobEvent {
  jobId: string;
  kind: string;
  status: string;
  message?: string;
}

function wsClient(key: string) {
  return createClient({
    url: `${apiUrl().replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    lazy: false,
  });
}

describe('subscriptions over graphql-ws', () => {
  it("delivers a job's state changes to its project's subscribers", async () => {
    const project = await newProject();
    const other = await newProject();
    const client = wsClient(project.key);
    const otherClient = wsClient(other.key);
    const seen: JobEvent[] = [];
    const leaked: JobEvent[] = [];
    const errors: unknown[] = [];
    const query = '{ jobEvents { jobId kind status progress at } }';
    for (const [ws, into] of [
      [client, seen],
      [otherClient, leaked],
    ] as const) {
      ws.subscribe<{ jobEvents: JobEvent }>(
        { query: `subscription ${query}` },
        {
          next: ({ data, errors: failed }) =>
            data ? into.push(data.jobEvents) : errors.push(failed),
          error: (error) => errors.push(error),
          complete: () => undefined,
        },
      );
    }
    // Both are live once each has seen a job of its own project.
    const probes = [
      await jobEventsLive(project.key, seen),
      await jobEventsLive(other.key, leaked),
    ];

    const job = await gql<{ sweepUploads: { id: string } }>(
      project.key,
      'mutation { sweepUploads { id } }',
    );
    const jobId = job.data!.sweepUploads.id;
    const deadline = Date.now() + 30_000;
    while (
      !seen.some((e) => e.jobId === jobId && e.status === 'SUCCEEDED') &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    expect(errors).toEqual([]);
    expect(seen.every((e) => [probes[0], jobId].includes(e.jobId))).toBe(true);
    expect(seen.filter((e) => e.jobId === jobId).map((e) => e.status)).toEqual([
      'QUEUED',
      'RUNNING',
      'SUCCEEDED',
    ]);
    // The other project's subscriber saw its own job only.
    expect(leaked.every((e) => e.jobId === probes[1])).toBe(true);
    await client.dispose();
    await otherClient.dispose();
  });

  it("starts a job's progress with its current state, so nothing is missed", async () => {
    const project = await newProject();
    const client = wsClient(project.key);
    const queued = await gql<{ sweepUploads: { id: string } }>(
      project.key,
      'mutation { sweepUploads { id } }',
    );
    const jobId = queued.data!.sweepUploads.id;
    // Subscribed after the job was queued, however far it has got.
    const events: JobEvent[] = [];
    client.subscribe<{ jobProgress: JobEvent }>(
      {
        query:
          'subscription($id: ID!) { jobProgress(jobId: $id) { jobId kind status message } }',
        variables: { id: jobId },
      },
      {
        next: ({ data }) => data && events.push(data.jobProgress),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    const deadline = Date.now() + 30_000;
    while (
      !events.some((e) => e.status === 'SUCCEEDED') &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.dispose();

    expect(events[0]).toMatchObject({
      jobId,
      kind: 'SWEEP_UPLOADS',
      message: 'current state',
    });
    expect(events.map((e) => e.status)).toContain('SUCCEEDED');
    expect(events.every((e) => e.jobId === jobId)).toBe(true);
  });

  it('refuses a connection without a valid key', async () => {
    const client = wsClient('chorus_not-a-real-key-aaaaaaaaaaaaaaaaaaaaaaa');

    const outcome = await new Promise<unknown>((resolve) => {
      client.subscribe(
        { query: 'subscription { jobEvents { jobId } }' },
        {
          next: () => resolve('data'),
          error: resolve,
          complete: () => resolve('complete'),
        },
      );
    });

    expect((outcome as { code?: number }).code).toBe(4403);
    await client.dispose();
  });
});
