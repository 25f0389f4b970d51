/**
 * The training service end to end, on an embedded Postgres and S3 server:
 * 1. queue pickup latency (job recorded -> RUNNING) with an idle worker,
 *    p50 and p95 over 40 jobs;
 * 2. the same 8 small training jobs with 1 and then 2 worker processes:
 *    throughput ratio;
 * 3. predict rows per second through the API for a cached model, against
 *    the same Predictor called in this process: ratio.
 *
 *   npm run build && node dist/bench/jobs.js
 */
import { freePort, PlatformProcess, waitForReady } from '#libs/embedded';
import { Predictor, selectBackend, unzipArtifact } from '#libs/training';

import { startBenchServices } from './services';

let base = '';
let key = '';

async function gql<T>(query: string, variables: object = {}): Promise<T> {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${key}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data: T; errors?: unknown };
  if (body.errors) {
    throw new Error(JSON.stringify(body.errors));
  }

  return body.data;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitJob(id: string) {
  for (;;) {
    const { job } = await gql<{
      job: { status: string; createdAt: string; startedAt: string };
    }>('query($id: ID!) { job(id: $id) { status createdAt startedAt } }', {
      id,
    });
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status)) {
      return job;
    }
    await sleep(20);
  }
}

function csv(rows: number): string {
  const lines = ['x1,x2,y,flag'];
  for (let i = 0; i < rows; i += 1) {
    const x1 = Math.sin(i);
    const x2 = Math.cos(i * 0.7);
    lines.push(`${x1},${x2},${2 * x1 - x2},${x1 > x2 ? 1 : 0}`);
  }

  return `${lines.join('\n')}\n`;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[
    Math.min(values.length - 1, Math.floor((p / 100) * values.length))
  ];

async function main() {
  const services = await startBenchServices();
  key = services.adminKey;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    ...services.env,
    RATE_LIMIT_REQUESTS: '1000000',
    PORT: String(port),
  };
  const api = new PlatformProcess('api', env);
  const workers = [new PlatformProcess('worker', env)];
  api.start();
  workers[0].start();
  try {
    await waitForReady(`${base}/health/ready`);
    await sleep(2000);

    // 1. Pickup latency.
    const latencies: number[] = [];
    for (let i = 0; i < 40; i += 1) {
      const { sweepUploads } = await gql<{ sweepUploads: { id: string } }>(
        'mutation { sweepUploads { id } }',
      );
      const job = await waitJob(sweepUploads.id);
      latencies.push(Date.parse(job.startedAt) - Date.parse(job.createdAt));
      await sleep(100);
    }
    console.log(
      `pickup latency: p50 ${percentile(latencies, 50)} ms, p95 ${percentile(latencies, 95)} ms`,
    );

    // 2. One worker, then two.
    const upload = await fetch(`${base}/v1/datasets?name=bench`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'text/csv' },
      body: csv(3000),
    });
    const datasetId = ((await upload.json()) as { id: string }).id;
    for (;;) {
      const { dataset } = await gql<{ dataset: { status: string } }>(
        'query($id: ID!) { dataset(id: $id) { status } }',
        { id: datasetId },
      );
      if (dataset.status === 'READY') break;
      await sleep(100);
    }
    const taskIds = [];
    for (const [name, kind, target] of [
      ['y', 'REGRESSION', 'y'],
      ['flag', 'BINARY', 'flag'],
    ]) {
      const { createTask } = await gql<{ createTask: { id: string } }>(
        'mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }',
        { i: { datasetId, name, kind, targets: [target] } },
      );
      taskIds.push(createTask.id);
    }
    const { createModel } = await gql<{ createModel: { id: string } }>(
      'mutation($i: CreateModelInput!) { createModel(input: $i) { id } }',
      { i: { name: 'bench', taskIds, features: ['x1', 'x2'] } },
    );
    const runEight = async () => {
      const started = performance.now();
      const ids = await Promise.all(
        Array.from({ length: 8 }, () =>
          gql<{ startTraining: { id: string } }>(
            'mutation($m: ID!) { startTraining(modelId: $m, config: { epochs: 3 }) { id } }',
            { m: createModel.id },
          ).then((r) => r.startTraining.id),
        ),
      );
      for (const id of ids) {
        await waitJob(id);
      }

      return { seconds: (performance.now() - started) / 1000, ids };
    };
    const one = await runEight();
    workers.push(new PlatformProcess('worker', env));
    workers[1].start();
    await sleep(3000);
    const two = await runEight();
    console.log(
      `8 training jobs: 1 worker ${one.seconds.toFixed(1)} s, 2 workers ` +
        `${two.seconds.toFixed(1)} s, throughput ratio ` +
        `${(one.seconds / two.seconds).toFixed(2)}`,
    );

    // 3. Predict through the API against the same predictor in process.
    const { job } = await gql<{ job: { result: { versionId: string } } }>(
      'query($id: ID!) { job(id: $id) { result } }',
      { id: one.ids[0] },
    );
    await selectBackend();
    const zip = Buffer.from(
      await (
        await fetch(
          `${base}/v1/model-versions/${job.result.versionId}/artifact`,
          {
            headers: { Authorization: `Bearer ${key}` },
          },
        )
      ).arrayBuffer(),
    );
    const local = await Predictor.fromArtifact(await unzipArtifact(zip));
    // API and in-process rounds alternate, and each side's median round is
    // kept, so load from other processes on the machine weighs on both.
    for (const size of [1000, 10]) {
      const rows = Array.from({ length: size }, (_, i) => ({
        x1: Math.sin(i * 3),
        x2: Math.cos(i),
      }));
      const body = JSON.stringify({ rows });
      const predictApi = () =>
        fetch(`${base}/v1/model-versions/${job.result.versionId}/predict`, {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${key}`,
            'Content-Type': 'application/json',
          },
          body,
        }).then((r) => r.json());
      await predictApi();
      local.predict(rows);
      const calls = size >= 1000 ? 20 : 200;
      const apiRates: number[] = [];
      const localRates: number[] = [];
      for (let round = 0; round < 5; round += 1) {
        let started = performance.now();
        for (let i = 0; i < calls; i += 1) await predictApi();
        apiRates.push((calls * size) / ((performance.now() - started) / 1000));
        started = performance.now();
        for (let i = 0; i < calls; i += 1) local.predict(rows);
        localRates.push(
          (calls * size) / ((performance.now() - started) / 1000),
        );
      }
      const apiRate = percentile(apiRates, 50);
      const localRate = percentile(localRates, 50);
      console.log(
        `predict ${size} rows a call: API ${apiRate.toFixed(0)} rows/s, in ` +
          `process ${localRate.toFixed(0)} rows/s, ratio ` +
          `${(apiRate / localRate).toFixed(2)}`,
      );
    }
    local.dispose();
  } finally {
    await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
    await services.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
