import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { createClient } from 'graphql-ws';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';

import { Predictor, selectBackend, unzipArtifact } from '#libs/training';

import {
  apiUrl,
  codeOf,
  gql,
  jobEventsLive,
  newProject,
} from './support/client';
import {
  createModel,
  createTasks,
  modelOnThreeTargets,
  readyDataset,
  startTraining,
  threeTargetCsv,
  trainVersion,
  waitForJob,
} from './support/training';

/** Deep equality where numbers may differ by `tolerance` (relative above 1). */
function expectClose(actual: unknown, expected: unknown, tolerance: number) {
  const walk = (a: unknown, e: unknown, at: string) => {
    if (typeof e === 'number') {
      expect(typeof a, at).toBe('number');
      expect(
        Math.abs((a as number) - e) / Math.max(1, Math.abs(e)),
        at,
      ).toBeLessThanOrEqual(tolerance);
    } else if (e !== null && typeof e === 'object') {
      expect(Object.keys(a as object).sort(), at).toEqual(
        Object.keys(e).sort(),
      );
      for (const [key, value] of Object.entries(e)) {
        walk((a as Record<string, unknown>)[key], value, `${at}.${key}`);
      }
    } else {
      expect(a, at).toEqual(e);
    }
  };
  walk(actual, expected, 'predictions');
}

/** Pids of the training children of the test platform's worker. */
const trainingChildren = () => {
  try {
    return execFileSync('pgrep', [
      '-P',
      String(inject('workerPid')),
      '-f',
      'training/train-child.js',
    ])
      .toString()
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
};

describe('training service', () => {
  it('trains three heads, streams metrics, stores a verifiable artifact and predicts', async () => {
    const { project, model } = await modelOnThreeTargets(600);
    const events: {
      jobId: string;
      status: string;
      metrics?: Record<string, number>;
    }[] = [];
    const client = createClient({
      url: `${apiUrl().replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${project.key}` },
    });
    client.subscribe<{ jobEvents: (typeof events)[number] }>(
      { query: 'subscription { jobEvents { jobId status progress metrics } }' },
      {
        next: ({ data }) => data && events.push(data.jobEvents),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    const probe = await jobEventsLive(project.key, events);

    const jobId = await startTraining(project.key, model.id, {
      epochs: 4,
      learningRate: 0.01,
    });
    const job = await waitForJob(project.key, jobId, (j) =>
      ['SUCCEEDED', 'FAILED'].includes(j.status),
    );
    // The final event travels apart from the row the poll read.
    const deadline = Date.now() + 10_000;
    while (
      !events.some((e) => e.jobId === jobId && e.status === job.status) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.dispose();

    expect(job.error).toBeNull();
    expect(job.status).toBe('SUCCEEDED');
    const trainLoss = job.metrics.filter((m) => m.split === 'train');
    expect(new Set(trainLoss.map((m) => m.task))).toEqual(
      new Set(['price', 'premium', 'tier']),
    );
    expect(
      trainLoss.filter((m) => m.task === 'price').map((m) => m.epoch),
    ).toEqual([1, 2, 3, 4]);
    const names = new Set(
      job.metrics
        .filter((m) => m.split === 'validation')
        .map((m) => `${m.task}.${m.name}`),
    );
    expect(names).toContain('price.rmse');
    expect(names).toContain('premium.accuracy');
    expect(names).toContain('tier.accuracy');
    const jobEvents = events.filter((e) => e.jobId !== probe);
    expect(new Set(jobEvents.map((e) => e.jobId))).toEqual(new Set([jobId]));
    const epochEvents = jobEvents.filter(
      (e) => e.metrics && Object.keys(e.metrics).length > 0,
    );
    expect(epochEvents.length).toBe(4);
    expect(jobEvents.at(-1)?.status).toBe('SUCCEEDED');

    const versionId = job.result!.versionId!;
    const version = await gql<{
      modelVersion: {
        sha256: string;
        number: number;
        metrics: Record<string, Record<string, number>>;
      };
    }>(
      project.key,
      'query($id: ID!) { modelVersion(id: $id) { sha256 number metrics backend } }',
      { id: versionId },
    );
    const download = await fetch(
      `${apiUrl()}/v1/model-versions/${versionId}/artifact`,
      {
        headers: { Authorization: `Bearer ${project.key}` },
      },
    );
    const zip = Buffer.from(await download.arrayBuffer());
    const sha256 = createHash('sha256').update(zip).digest('hex');
    expect(version.data!.modelVersion.number).toBe(1);
    expect(download.headers.get('x-content-sha256')).toBe(sha256);
    expect(version.data!.modelVersion.sha256).toBe(sha256);
    expect(version.data!.modelVersion.metrics.premium.accuracy).toBeGreaterThan(
      0.7,
    );

    const rows = [
      { x1: 0.5, x2: -0.2, colour: 'red' },
      { x1: -0.8, x2: 0.1, colour: 'blue' },
      { x1: 'oops', x2: 0.1, colour: 'blue' },
    ];
    const predicted = await gql<{
      predict: {
        predictions: unknown[];
        errors: { row: number; field: string }[];
      };
    }>(
      project.key,
      'query($id: ID!, $rows: JSON!) { predict(versionId: $id, rows: $rows) }',
      { id: versionId, rows },
    );
    const rest = await fetch(
      `${apiUrl()}/v1/model-versions/${versionId}/predict`,
      {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${project.key}`,
          'Content-Type': 'application/json',
        },
        body: JSON.stringify({ rows }),
      },
    );
    await selectBackend();
    const local = await Predictor.fromArtifact(await unzipArtifact(zip));
    const expected = local.predict(rows);
    local.dispose();

    expect(predicted.data!.predict.predictions).toEqual(
      JSON.parse(JSON.stringify(expected.predictions)),
    );
    expect(predicted.data!.predict.errors).toEqual([
      expect.objectContaining({ row: 2, field: 'x1' }),
    ]);
    expect(await rest.json()).toEqual(predicted.data!.predict);
    // The version is cached now; another project still cannot reach it.
    const stranger = await newProject();
    const foreign = await gql(
      stranger.key,
      'query($id: ID!, $rows: JSON!) { predict(versionId: $id, rows: $rows) }',
      { id: versionId, rows },
    );
    expect(codeOf(foreign)).toBe('NOT_FOUND');

    // A new user's reproduction: the documented plain script, which uses
    // @tensorflow/tfjs (default backend) and the manifest, nothing of ours.
    const folder = mkdtempSync(path.join(tmpdir(), 'chorus-plain-'));
    writeFileSync(path.join(folder, 'model.zip'), zip);
    writeFileSync(path.join(folder, 'rows.json'), JSON.stringify(rows));
    const plain = await promisify(execFile)(process.execPath, [
      'docs/examples/predict-plain.mjs',
      path.join(folder, 'model.zip'),
      path.join(folder, 'rows.json'),
    ]).finally(() => rmSync(folder, { recursive: true, force: true }));
    const reproduced = JSON.parse(plain.stdout) as typeof expected;
    expect(reproduced.errors).toEqual([
      expect.objectContaining({ row: 2, field: 'x1' }),
    ]);
    expectClose(
      reproduced.predictions,
      predicted.data!.predict.predictions,
      1e-5,
    );

    const aliased = await gql(
      project.key,
      `mutation($m: ID!, $v: ID!) { setModelAlias(modelId: $m, alias: "production", versionId: $v) {
        aliases { name versionId } } }`,
      { m: model.id, v: versionId },
    );
    const byAlias = await gql<{ predict: { predictions: unknown[] } }>(
      project.key,
      'query($m: ID!, $rows: JSON!) { predict(modelId: $m, alias: "production", rows: $rows) }',
      { m: model.id, rows },
    );
    const compared = await gql<{
      compareModelVersions: { task: string; delta: number }[];
    }>(
      project.key,
      'query($v: ID!) { compareModelVersions(a: $v, b: $v) { task metric a b delta } }',
      { v: versionId },
    );
    const retried = await gql(
      project.key,
      'mutation($id: ID!) { retryJob(id: $id) { id } }',
      { id: jobId },
    );
    expect(aliased.errors).toBeUndefined();
    expect(byAlias.data!.predict.predictions).toEqual(
      predicted.data!.predict.predictions,
    );
    expect(
      new Set(compared.data!.compareModelVersions.map((c) => c.task)),
    ).toEqual(new Set(['price', 'premium', 'tier']));
    expect(
      compared.data!.compareModelVersions.every((c) => c.delta === 0),
    ).toBe(true);
    expect(codeOf(retried)).toBe('CONFLICT');

    const single = await fetch(
      `${apiUrl()}/v1/model-versions/${versionId}/artifact?task=premium`,
      { headers: { Authorization: `Bearer ${project.key}` } },
    );
    const singleZip = Buffer.from(await single.arrayBuffer());
    const premiumOnly = await unzipArtifact(singleZip);
    const unknownTask = await fetch(
      `${apiUrl()}/v1/model-versions/${versionId}/artifact?task=colour`,
      { headers: { Authorization: `Bearer ${project.key}` } },
    );
    expect(single.headers.get('x-content-sha256')).toBe(
      createHash('sha256').update(singleZip).digest('hex'),
    );
    expect(premiumOnly.manifest.tasks.map((t) => t.name)).toEqual(['premium']);
    expect(unknownTask.status).toBe(400);
    expect(await unknownTask.json()).toMatchObject({
      error: { field: 'task', message: expect.stringContaining('price') },
    });
  });

  it('trains 5.8M parameters (a checkpoint over 64 MiB) and serves the artifacts', async () => {
    const project = await newProject();
    const dataset = await readyDataset(
      project.key,
      'wide.csv',
      threeTargetCsv(256),
    );
    const taskIds = await createTasks(project.key, dataset.id, [
      ['price', 'REGRESSION', 'price'],
      ['premium', 'BINARY', 'premium'],
    ]);
    // 2400 x 2400 weights: 23 MiB of floats, the checkpoint with Adam's two
    // slots over 64 MiB, past where a buffered PUT to the embedded S3 failed.
    const modelId = await createModel(project.key, {
      name: 'wide',
      taskIds,
      backbone: { kind: 'mlp', widths: [2400, 2400] },
    });

    const versionId = await trainVersion(project.key, modelId, {
      epochs: 1,
      batchSize: 64,
    });
    const version = await gql<{
      modelVersion: { sha256: string; sizeBytes: string };
    }>(
      project.key,
      'query($id: ID!) { modelVersion(id: $id) { sha256 sizeBytes } }',
      { id: versionId },
    );
    const download = async (query = '') => {
      const response = await fetch(
        `${apiUrl()}/v1/model-versions/${versionId}/artifact${query}`,
        { headers: { Authorization: `Bearer ${project.key}` } },
      );
      const zip = Buffer.from(await response.arrayBuffer());

      return { response, zip, artifact: await unzipArtifact(zip) };
    };
    const whole = await download();
    const single = await download('?task=premium');
    const rows = [
      { x1: 0.5, x2: -0.2, colour: 'red' },
      { x1: -0.8, x2: 0.1, colour: 'blue' },
    ];
    const predicted = await gql<{ predict: { predictions: unknown[] } }>(
      project.key,
      'query($id: ID!, $rows: JSON!) { predict(versionId: $id, rows: $rows) }',
      { id: versionId, rows },
    );
    await selectBackend();
    const local = await Predictor.fromArtifact(whole.artifact);
    const expected = local.predict(rows);
    local.dispose();

    expect(Number(version.data!.modelVersion.sizeBytes)).toBe(whole.zip.length);
    expect(whole.zip.length).toBeGreaterThan(2400 * 2400 * 4);
    expect(version.data!.modelVersion.sha256).toBe(
      createHash('sha256').update(whole.zip).digest('hex'),
    );
    expect(single.response.headers.get('x-content-sha256')).toBe(
      createHash('sha256').update(single.zip).digest('hex'),
    );
    expect(single.artifact.manifest.tasks.map((t) => t.name)).toEqual([
      'premium',
    ]);
    expect(predicted.data!.predict.predictions).toEqual(
      JSON.parse(JSON.stringify(expected.predictions)),
    );
  });

  it('runs each of 30 concurrently started trainings exactly once', async () => {
    const { project, model } = await modelOnThreeTargets(60);

    const jobIds = await Promise.all(
      Array.from({ length: 30 }, () =>
        startTraining(project.key, model.id, { epochs: 1, batchSize: 30 }),
      ),
    );
    const jobs = [];
    for (const id of jobIds) {
      jobs.push(
        await waitForJob(project.key, id, (j) =>
          ['SUCCEEDED', 'FAILED'].includes(j.status),
        ),
      );
    }
    const versions = await gql<{
      model: { versions: { number: number; jobId: string }[] };
    }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { number jobId } } }',
      {
        id: model.id,
      },
    );
    const url = await gql<{ artifactUrl: string }>(
      project.key,
      'query($v: ID!) { artifactUrl(versionId: $v, expiresInSeconds: 60) }',
      { v: jobs[0].result!.versionId },
    );

    const listed = await gql<{ jobs: { nodes: { id: string }[] } }>(
      project.key,
      'query($m: ID!) { jobs(kind: TRAIN, modelId: $m, status: SUCCEEDED, ' +
        'first: 100) { nodes { id } } }',
      { m: model.id },
    );
    expect(new Set(listed.data!.jobs.nodes.map((j) => j.id))).toEqual(
      new Set(jobIds),
    );
    expect(new Set(jobIds).size).toBe(30);
    // Exactly once is judged by results: every job succeeded and registered
    // one version. (A transient storage error may retry an attempt; a retry
    // resumes and still yields one version, which the unique jobId enforces.)
    expect(jobs.map((j) => j.status)).toEqual(jobIds.map(() => 'SUCCEEDED'));
    const list = versions.data!.model.versions;
    expect(list.map((v) => v.number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(new Set(list.map((v) => v.jobId))).toEqual(new Set(jobIds));
    expect((await fetch(url.data!.artifactUrl)).status).toBe(200);
  });

  it('fails a diverging run with the task and step named, and no version', async () => {
    const { project, model } = await modelOnThreeTargets(300);

    const jobId = await startTraining(project.key, model.id, {
      epochs: 5,
      optimizer: 'sgd',
      learningRate: 10,
    });
    const job = await waitForJob(project.key, jobId, (j) =>
      ['SUCCEEDED', 'FAILED'].includes(j.status),
    );
    const versions = await gql<{ model: { versions: unknown[] } }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { id } } }',
      { id: model.id },
    );

    expect(job.status).toBe('FAILED');
    expect(job.attempts).toBe(1);
    expect(job.error!.message).toMatch(/task "?(price|premium|tier)"?/);
    expect(job.error!.message).toMatch(/step \d+/);
    expect(versions.data!.model.versions).toEqual([]);
  });

  it('rejects a bad config before queueing anything, naming the field', async () => {
    const { project, model } = await modelOnThreeTargets(60);

    const result = await gql(
      project.key,
      `mutation($id: ID!) { startTraining(modelId: $id, config: { epochs: 0 }) { id } }`,
      { id: model.id },
    );
    const unknownField = await gql(
      project.key,
      `mutation($id: ID!) { startTraining(modelId: $id, config: { epocs: 3 }) { id } }`,
      { id: model.id },
    );
    const priority = await gql(
      project.key,
      `mutation($id: ID!) { startTraining(modelId: $id, priority: 5000) { id } }`,
      { id: model.id },
    );
    const jobs = await gql<{ jobs: { nodes: { kind: string }[] } }>(
      project.key,
      '{ jobs { nodes { kind } } }',
    );

    expect(codeOf(result)).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0].extensions?.field).toBe('config.epochs');
    expect(codeOf(unknownField)).toBe('BAD_USER_INPUT');
    expect(codeOf(priority)).toBe('BAD_USER_INPUT');
    expect(priority.errors?.[0].extensions?.field).toBe('priority');
    expect(priority.errors?.[0].message).toMatch(/-1000 and 1000/);
    expect(jobs.data!.jobs.nodes.map((j) => j.kind)).toEqual(['INGEST']);
  });

  it('trains one model on two datasets that code a column in other orders, and refuses inputs one lacks', async () => {
    const project = await newProject();
    const shop = await readyDataset(
      project.key,
      'shop.csv',
      threeTargetCsv(300),
    );
    // Colours first seen as blue, red, green: other codes than shop's
    // red, green, blue. `sale` is 1 for red rows only.
    const lines = ['x1,x2,colour,sale'];
    for (let i = 0; i < 300; i += 1) {
      const colour = ['blue', 'red', 'green'][i % 3];
      const x = ((i * 37) % 100) / 50 - 1;
      lines.push(`${x},${-x},${colour},${colour === 'red' ? 1 : 0}`);
    }
    const sales = await readyDataset(
      project.key,
      'sales.csv',
      `${lines.join('\n')}\n`,
    );
    const [price] = await createTasks(project.key, shop.id, [
      ['price', 'REGRESSION', 'price'],
    ]);
    const [sale] = await createTasks(project.key, sales.id, [
      ['sale', 'BINARY', 'sale'],
    ]);
    const refused = await gql(
      project.key,
      `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`,
      {
        input: {
          name: 'both',
          taskIds: [price, sale],
          features: ['x1', 'tier'],
        },
      },
    );
    const created = await gql<{
      createModel: { id: string; spec: { features: string[] } };
    }>(
      project.key,
      `mutation($input: CreateModelInput!) { createModel(input: $input) { id spec } }`,
      { input: { name: 'both', taskIds: [price, sale] } },
    );
    const model = created.data!.createModel;
    const versionId = await trainVersion(project.key, model.id, {
      epochs: 12,
      learningRate: 0.01,
    });
    const predicted = await gql<{
      predict: { predictions: { sale: { probability: number } }[] };
    }>(
      project.key,
      'query($id: ID!, $rows: JSON!) { predict(versionId: $id, rows: $rows) }',
      {
        id: versionId,
        rows: ['red', 'green', 'blue'].map((colour) => ({
          x1: 0.1,
          x2: -0.1,
          colour,
        })),
      },
    );
    const [red, green, blue] = predicted.data!.predict.predictions.map(
      (p) => p.sale.probability,
    );

    expect(codeOf(refused)).toBe('BAD_USER_INPUT');
    expect(refused.errors?.[0].extensions?.field).toBe('input.features');
    expect(refused.errors?.[0].message).toContain(`dataset ${sales.id}`);
    // Only the columns both datasets have.
    expect(model.spec.features).toEqual(['x1', 'x2', 'colour']);
    // Read with shop's codes, sales' red rows would teach "green".
    expect(red).toBeGreaterThan(0.8);
    expect(green).toBeLessThan(0.2);
    expect(blue).toBeLessThan(0.2);
  });

  it('resumes from the checkpoint after the training process is killed, with one version and every epoch once', async () => {
    const { project, model } = await modelOnThreeTargets(6000);
    const epochs = 6;
    // Checkpoints every 2 epochs: the retry may repeat an epoch whose
    // metrics were already recorded, and must not record it twice.
    const jobId = await startTraining(project.key, model.id, {
      epochs,
      batchSize: 16,
      checkpointEveryEpochs: 2,
    });
    await waitForJob(project.key, jobId, (j) =>
      j.metrics.some((m) => m.epoch >= 2 && m.split === 'train'),
    );

    const pids = trainingChildren();
    expect(pids.length).toBe(1);
    process.kill(pids[0], 'SIGKILL');
    // What attempt 1 would leave had it died between storing its artifact
    // and registering its version: the successful retry removes it.
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    const bucket = `${env.S3_ENDPOINT}/${env.S3_BUCKET}`;
    const artifacts = `projects/${project.id}/models/${model.id}/artifacts/`;
    for (const key of [`${jobId}-1.zip`, `${jobId}-1/tasks/price.zip`]) {
      const put = await fetch(`${bucket}/${artifacts}${key}`, {
        method: 'PUT',
        body: 'left by a killed attempt',
      });
      expect(put.status).toBe(200);
    }
    const job = await waitForJob(
      project.key,
      jobId,
      (j) => ['SUCCEEDED', 'FAILED'].includes(j.status),
      180_000,
    );

    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBe(2);
    const listing = await fetch(
      `${bucket}?list-type=2&prefix=${artifacts}${jobId}-`,
    );
    const keys = [...(await listing.text()).matchAll(/<Key>([^<]+)<\/Key>/g)]
      .map((m) => m[1].slice(artifacts.length))
      .sort();
    expect(keys).toEqual([
      `${jobId}-2.zip`,
      `${jobId}-2/tasks/premium.zip`,
      `${jobId}-2/tasks/price.zip`,
      `${jobId}-2/tasks/tier.zip`,
    ]);
    for (const task of ['price', 'premium', 'tier']) {
      const seen = job.metrics
        .filter((m) => m.task === task && m.split === 'train')
        .map((m) => m.epoch);
      expect(seen, task).toEqual([1, 2, 3, 4, 5, 6]);
    }
    const versions = await gql<{ model: { versions: { jobId: string }[] } }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { jobId } } }',
      { id: model.id },
    );
    expect(versions.data!.model.versions).toEqual([{ jobId }]);
  });

  it('cancels a running job within a batch, with no version and no checkpoints left', async () => {
    const { project, model } = await modelOnThreeTargets(6000);
    const jobId = await startTraining(project.key, model.id, {
      epochs: 50,
      batchSize: 16,
    });
    await waitForJob(project.key, jobId, (j) =>
      j.metrics.some((m) => m.split === 'train'),
    );

    const cancelled = await gql<{ cancelJob: { status: string } }>(
      project.key,
      'mutation($id: ID!) { cancelJob(id: $id) { status } }',
      { id: jobId },
    );
    const stoppedAt = Date.now();
    while (trainingChildren().length > 0 && Date.now() - stoppedAt < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const childStoppedAfter = Date.now() - stoppedAt;
    const env = JSON.parse(inject('platformEnv')) as NodeJS.ProcessEnv;
    // The worker removes the checkpoints once the child has stopped; the
    // job already reads CANCELLED, so wait for the listing to empty.
    const checkpoints = async () =>
      (
        await fetch(
          `${env.S3_ENDPOINT}/${env.S3_BUCKET}?list-type=2&prefix=projects/${project.id}/jobs/${jobId}/`,
        ).then((r) => r.text())
      ).match(/<Key>[^<]+<\/Key>/g) ?? [];
    let left = await checkpoints();
    while (left.length > 0 && Date.now() - stoppedAt < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      left = await checkpoints();
    }
    const model2 = await gql<{ model: { versions: unknown[] } }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { id } } }',
      { id: model.id },
    );
    const job = await waitForJob(project.key, jobId, () => true);

    expect(cancelled.data!.cancelJob.status).toBe('CANCELLED');
    expect(trainingChildren()).toEqual([]);
    expect(childStoppedAfter).toBeLessThan(10_000);
    expect(job.status).toBe('CANCELLED');
    expect(model2.data!.model.versions).toEqual([]);
    expect(left).toEqual([]);
  });
  it('starts a cancelled training over when it is retried, with every epoch once and one version', async () => {
    const { project, model } = await modelOnThreeTargets(6000);
    const jobId = await startTraining(project.key, model.id, {
      epochs: 3,
      batchSize: 16,
    });
    await waitForJob(project.key, jobId, (j) =>
      j.metrics.some((m) => m.split === 'train'),
    );
    await gql(project.key, 'mutation($id: ID!) { cancelJob(id: $id) { id } }', {
      id: jobId,
    });
    const stoppedAt = Date.now();
    while (trainingChildren().length > 0 && Date.now() - stoppedAt < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const retried = await gql(
      project.key,
      'mutation($id: ID!) { retryJob(id: $id) { id } }',
      { id: jobId },
    );
    const job = await waitForJob(
      project.key,
      jobId,
      (j) => ['SUCCEEDED', 'FAILED'].includes(j.status),
      180_000,
    );
    const versions = await gql<{ model: { versions: { jobId: string }[] } }>(
      project.key,
      'query($id: ID!) { model(id: $id) { versions { jobId } } }',
      { id: model.id },
    );

    expect(retried.errors).toBeUndefined();
    expect(job.error).toBeNull();
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBe(2);
    for (const task of ['price', 'premium', 'tier']) {
      const epochs = job.metrics
        .filter((m) => m.task === task && m.split === 'train')
        .map((m) => m.epoch);
      expect(epochs, task).toEqual([1, 2, 3]);
    }
    expect(versions.data!.model.versions).toEqual([{ jobId }]);
  }, 200_000);
});
