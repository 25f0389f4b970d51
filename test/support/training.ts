import { expect } from 'vitest';

import { gql, newProject, settledDataset, uploadDataset } from './client';

/**
 * `rows` rows with three targets: price (regression), premium (binary) and
 * tier (multiclass), all functions of x1, x2 and colour (seeded).
 */
export function threeTargetCsv(rows: number): string {
  let seed = 11;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
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
  status: string;
  attempts: number;
  result: { versionId?: string } | null;
  error: { message: string; attempt?: number } | null;
  metrics: {
    epoch: number;
    task: string;
    split: string;
    name: string;
    value: number;
  }[];
}

export async function waitForJob(
  key: string,
  id: string,
  done: (job: JobView) => boolean,
  timeoutMs = 120_000,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const result = await gql<{ job: JobView }>(
      key,
      `query($id: ID!) { job(id: $id) { id status attempts result error
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
  const upload = await uploadDataset(
    project.key,
    'shop.csv',
    Buffer.from(threeTargetCsv(rows)),
  );
  const datasetId = String(upload.body.id);
  expect((await settledDataset(project.key, datasetId)).status).toBe('READY');
  const taskIds: string[] = [];
  for (const [name, kind, target] of [
    ['price', 'REGRESSION', 'price'],
    ['premium', 'BINARY', 'premium'],
    ['tier', 'MULTICLASS', 'tier'],
  ]) {
    const created = await gql<{ createTask: { id: string } }>(
      project.key,
      `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
      { input: { datasetId, name, kind, targets: [target] } },
    );
    taskIds.push(created.data!.createTask.id);
  }
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

  return { project, datasetId, model: model.data!.createModel };
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
