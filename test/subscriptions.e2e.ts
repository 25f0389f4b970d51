import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { apiUrl, gql, newProject } from './support/client';

interface JobEvent {
  jobId: string;
  kind: string;
  status: string;
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
    const query = '{ jobEvents { jobId kind status progress at } }';
    const done = new Promise<void>((resolve, reject) => {
      client.subscribe<{ jobEvents: JobEvent }>(
        { query: `subscription ${query}` },
        {
          next: ({ data, errors }) => {
            if (!data) {
              reject(new Error(JSON.stringify(errors)));

              return;
            }
            seen.push(data!.jobEvents);
            if (data!.jobEvents.status === 'SUCCEEDED') {
              resolve();
            }
          },
          error: reject,
          complete: () => undefined,
        },
      );
    });
    otherClient.subscribe<{ jobEvents: JobEvent }>(
      { query: `subscription ${query}` },
      {
        next: ({ data }) => leaked.push(data!.jobEvents),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    // Give both subscriptions time to register before the job starts.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const job = await gql<{ sweepUploads: { id: string } }>(
      project.key,
      'mutation { sweepUploads { id } }',
    );
    await done;

    const jobId = job.data!.sweepUploads.id;
    expect(seen.every((event) => event.jobId === jobId)).toBe(true);
    expect(seen.map((event) => event.status)).toEqual([
      'QUEUED',
      'RUNNING',
      'SUCCEEDED',
    ]);
    expect(leaked).toEqual([]);
    await client.dispose();
    await otherClient.dispose();
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
