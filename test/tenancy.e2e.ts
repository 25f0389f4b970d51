import { randomBytes, randomUUID } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  apiUrl,
  codeOf,
  gql,
  newProject,
  uploadDataset,
} from './support/client';

/** What a caller sees for an id: status, code and message with the id masked. */
async function restShape(key: string, id: string) {
  const response = await fetch(`${apiUrl()}/v1/datasets/${id}/file`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  const body = (await response.json()) as {
    error: { code: string; message: string };
  };

  return {
    status: response.status,
    code: body.error.code,
    message: body.error.message.replace(id, '<id>'),
  };
}

async function gqlShape(key: string, query: string, id: string) {
  const result = await gql(key, query, { id });

  return {
    code: codeOf(result),
    message: result.errors?.[0].message.replace(id, '<id>'),
    data: result.data,
  };
}

describe('tenancy', () => {
  it("treats another project's ids exactly like unknown ids", async () => {
    const a = await newProject('tenant-a');
    const b = await newProject('tenant-b');
    const upload = await uploadDataset(b.key, 'b-data', randomBytes(1000));
    const bDataset = String(upload.body.id);
    const bJob = await gql<{ sweepUploads: { id: string } }>(
      b.key,
      'mutation { sweepUploads { id } }',
    );
    const bKeys = await gql<{ apiKeys: { nodes: { id: string }[] } }>(
      b.key,
      '{ apiKeys { nodes { id } } }',
    );
    const ids: Record<string, string> = {
      dataset: bDataset,
      job: bJob.data!.sweepUploads.id,
      key: bKeys.data!.apiKeys.nodes[0].id,
    };
    const queries = {
      dataset: 'query($id: ID!) { dataset(id: $id) { id name } }',
      job: 'query($id: ID!) { job(id: $id) { id status } }',
      key: 'mutation($id: ID!) { revokeApiKey(id: $id) { id } }',
      deleteDataset: 'mutation($id: ID!) { deleteDataset(id: $id) { id } }',
      task: `mutation($id: ID!) { createTask(input: {
        datasetId: $id, name: "t", kind: BINARY, targets: ["a"] }) { id } }`,
      project: 'query($id: ID!) { project(id: $id) { id name } }',
    };

    const more = { deleteDataset: bDataset, task: bDataset };
    Object.assign(ids, more);
    for (const kind of [
      'dataset',
      'job',
      'key',
      'deleteDataset',
      'task',
    ] as const) {
      const foreign = await gqlShape(a.key, queries[kind], ids[kind]);
      const unknown = await gqlShape(a.key, queries[kind], randomUUID());

      expect(foreign.code, kind).toBe('NOT_FOUND');
      expect(foreign, kind).toEqual(unknown);
    }
    const foreignProject = await gqlShape(a.key, queries.project, b.id);
    const unknownProject = await gqlShape(a.key, queries.project, randomUUID());
    expect(foreignProject).toEqual(unknownProject);
    expect(await restShape(a.key, bDataset)).toEqual(
      await restShape(a.key, randomUUID()),
    );

    // B's key still works: A's attempt to revoke it changed nothing.
    const bMe = await gql(b.key, '{ me { project { id } } }');
    expect(bMe.errors).toBeUndefined();
  });

  it("lists only the caller's own objects", async () => {
    const a = await newProject('list-a');
    const b = await newProject('list-b');
    await uploadDataset(b.key, 'only-b', randomBytes(100));

    const datasets = await gql<{ datasets: { nodes: { name: string }[] } }>(
      a.key,
      '{ datasets { nodes { name } } }',
    );
    const projects = await gql<{ projects: { nodes: { id: string }[] } }>(
      a.key,
      '{ projects { nodes { id } } }',
    );

    expect(datasets.data!.datasets.nodes).toEqual([]);
    expect(projects.data!.projects.nodes.map((p) => p.id)).toEqual([a.id]);
  });
});
