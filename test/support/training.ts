import { expect } from 'vitest';

import { gql, newProject, settledDataset, uploadDataset } from './client';

/**
 * `rows` rows with three targets: price (regression), premium (binary) and
 * tier (multiclass), all functions of x1, x2 and colour (seeded).
 */
export function threeTargetCsv(rows: number, seed = 11): string {
  let state = seed;
  const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
  const lines = ['x1,x2,colour,price,premium,tier'];
  for (let i = 0; i < rows; i += 1) {
    const x1 = random() * 2 - 1;
    const x2 = random() * 2 - 1;
    const colour = ['red', 'green', 'blue'][i % 3];
    const price = 3 * x1 - 2 * x2 + (colour === 'red' ? 1 : 0);
    const premium = x1 + x2 > 0 ? 1 : 0;
    const tier = x1 < -0.3 ? 'low' : x1 < 0.3 ? 'mid' : 'high';
    lines.push(
      `${x1.toFixed(4)},${x2.toFixed(4)},${colour},${price.toFixed(4)},${premium},${tier}`,
    );
  }

  return `${lines.join('\n')}\n`;
}

export interface JobView {
  id: string;
  kind: string;
  status: string;
  attempts: number;
  result: ({ versionId?: string } & Record<string, unknown>) | null;
  error: {
    code?: string;
    message: string;
    field?: string;
    attempt?: number;
  } | null;
  metrics: {
    epoch: number;
    task: string;
    split: string;
    name: string;
    value: number;
  }[];
}

/** Polls a job until `done` holds (by default: it finished either way). */
export async function waitForJob(
  key: string,
  id: string,
  done: (job: JobView) => boolean = (job) =>
    ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status),
  timeoutMs = 180_000,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = await gql<{ job: JobView }>(
      key,
      `query($id: ID!) { job(id: $id) { id kind status attempts result error
        metrics { epoch task split name value } } }`,
      { id },
    );
    if (done(result.data!.job)) {
      return result.data!.job;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Job ${id} did not get there in ${timeoutMs} ms`);
}

/** A project with a READY three-target dataset, its tasks and a model. */
export async function modelOnThreeTargets(rows: number) {
  const project = await newProject();
  const dataset = await readyDataset(
    project.key,
    'shop.csv',
    threeTargetCsv(rows),
  );
  const taskIds = await createTasks(project.key, dataset.id, [
    ['price', 'REGRESSION', 'price'],
    ['premium', 'BINARY', 'premium'],
    ['tier', 'MULTICLASS', 'tier'],
  ]);
  const model = await gql<{
    createModel: { id: string; spec: { features: string[] } };
  }>(
    project.key,
    `mutation($input: CreateModelInput!) { createModel(input: $input) { id spec } }`,
    {
      input: {
        name: 'shop',
        taskIds,
        backbone: { kind: 'mlp', widths: [32, 16] },
      },
    },
  );

  return { project, datasetId: dataset.id, model: model.data!.createModel };
}

/** Starts a training; `capability` GPU leaves it to GPU workers. */
export async function startTraining(
  key: string,
  modelId: string,
  config: object,
  capability: 'CPU' | 'GPU' = 'CPU',
) {
  const started = await gql<{ startTraining: { id: string } }>(
    key,
    `mutation($id: ID!, $config: JSON, $capability: JobCapability) {
      startTraining(modelId: $id, config: $config, capability: $capability) {
        id status } }`,
    { id: modelId, config, capability },
  );
  if (!started.data) {
    throw new Error(JSON.stringify(started.errors));
  }

  return started.data.startTraining.id;
}

/** Uploads CSV text and waits until the dataset is READY. */
export async function readyDataset(key: string, name: string, csv: string) {
  const upload = await uploadDataset(key, name, Buffer.from(csv));
  expect(upload.status).toBe(201);
  const id = String(upload.body.id);
  const dataset = await settledDataset(key, id);
  expect(dataset.status).toBe('READY');

  return dataset;
}

/** Creates tasks on a dataset: [name, kind, target] each; returns ids. */
export async function createTasks(
  key: string,
  datasetId: string,
  tasks: [string, string, string][],
): Promise<string[]> {
  const ids: string[] = [];
  for (const [name, kind, target] of tasks) {
    const created = await gql<{ createTask: { id: string } }>(
      key,
      `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
      { input: { datasetId, name, kind, targets: [target] } },
    );
    if (!created.data) {
      throw new Error(JSON.stringify(created.errors));
    }
    ids.push(created.data.createTask.id);
  }

  return ids;
}

export async function createModel(
  key: string,
  input: {
    name: string;
    taskIds: string[];
    features?: string[];
    backbone?: object;
  },
): Promise<string> {
  const created = await gql<{ createModel: { id: string } }>(
    key,
    `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`,
    { input },
  );
  if (!created.data) {
    throw new Error(JSON.stringify(created.errors));
  }

  return created.data.createModel.id;
}

/** Trains a model to completion; returns the new version's id. */
export async function trainVersion(
  key: string,
  modelId: string,
  config: object,
): Promise<string> {
  const started = await gql<{ startTraining: { id: string } }>(
    key,
    `mutation($id: ID!, $config: JSON) { startTraining(modelId: $id, config: $config) { id } }`,
    { id: modelId, config },
  );
  if (!started.data) {
    throw new Error(JSON.stringify(started.errors));
  }
  const job = await waitForJob(key, started.data.startTraining.id);
  expect(job.error).toBeNull();
  expect(job.status).toBe('SUCCEEDED');

  return String(job.result!.versionId);
}
