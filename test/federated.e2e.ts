import { createClient } from 'graphql-ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { FederatedParticipant, rowsToBatches } from '#libs/client';
import { encodeWeights } from '#libs/federation';
import { apiUrl, codeOf, gql, newProject } from './support/client';
import {
  createModel,
  createTasks,
  readyDataset,
  threeTargetCsv,
} from './support/training';

interface RunView {
  id: string;
  status: string;
  round: number;
  globalVersionId: string | null;
  error: { code: string; message: string } | null;
  participants: { id: string; name: string; kind: string }[];
  rounds: {
    number: number;
    status: string;
    updates: number;
    baseVersionId: string;
    versionId: string | null;
    metrics: Record<string, Record<string, Record<string, number>>> | null;
    aggregation: { updateNorms?: number[]; sampleCounts?: number[] } | null;
  }[];
}

const RUN_FIELDS = `id status round globalVersionId error
  participants { id name kind }
  rounds { number status updates baseVersionId versionId metrics aggregation }`;

async function startRun(
  key: string,
  modelId: string,
  participants: object[],
  config: object,
) {
  return gql<{
    startFederatedRun: {
      run: RunView;
      credentials: { participantId: string; name: string; token: string }[];
    };
  }>(
    key,
    `mutation($model: ID!, $participants: [FederatedParticipantInput!]!, $config: JSON) {
      startFederatedRun(modelId: $model, participants: $participants, config: $config) {
        run { ${RUN_FIELDS} } credentials { participantId name token } } }`,
    { model: modelId, participants, config },
  );
}

async function runOf(key: string, id: string): Promise<RunView> {
  const result = await gql<{ federatedRun: RunView }>(
    key,
    `query($id: ID!) { federatedRun(id: $id) { ${RUN_FIELDS} } }`,
    { id },
  );
  if (!result.data) {
    throw new Error(JSON.stringify(result.errors));
  }

  return result.data.federatedRun;
}

async function waitForRun(
  key: string,
  id: string,
  done: (run: RunView) => boolean,
  timeoutMs = 240_000,
): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = await runOf(key, id);
    if (done(run)) {
      return run;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`Run ${id} did not get there in ${timeoutMs} ms`);
}

const rowsOf = (csv: string) => {
  const [header, ...lines] = csv.trim().split('\n');
  const names = header.split(',');

  return lines.map((line) =>
    Object.fromEntries(line.split(',').map((v, i) => [names[i], v])),
  );
};

/** A project with a reference dataset, a binary task and its model. */
async function federatedModel() {
  const project = await newProject();
  const reference = await readyDataset(
    project.key,
    'reference.csv',
    threeTargetCsv(200, 5),
  );
  const [premium] = await createTasks(project.key, reference.id, [
    ['premium', 'BINARY', 'premium'],
  ]);
  const modelId = await createModel(project.key, {
    name: 'premium',
    taskIds: [premium],
    features: ['x1', 'x2', 'colour'],
    backbone: { kind: 'mlp', widths: [8] },
  });

  return { project, reference, modelId };
}

const meanAccuracy = (run: RunView, round: number) => {
  const metrics = Object.values(run.rounds[round - 1].metrics ?? {});

  return (
    metrics.reduce((sum, m) => sum + m.premium.accuracy, 0) / metrics.length
  );
};

describe('federated runs', { timeout: 240_000 }, () => {
  it('runs rounds over three silos and an SDK client, with the global accuracy rising', async () => {
    const { project, modelId } = await federatedModel();
    const silos: { id: string }[] = [];
    for (const seed of [21, 31, 41]) {
      silos.push(
        await readyDataset(
          project.key,
          `silo-${seed}.csv`,
          threeTargetCsv(150, seed),
        ),
      );
    }
    const started = await startRun(
      project.key,
      modelId,
      [
        ...silos.map((s) => ({ datasetId: s.id })),
        { external: true, name: 'clinic' },
      ],
      {
        rounds: 3,
        localEpochs: 1,
        batchSize: 16,
        learningRate: 0.003,
        minClients: 4,
        roundTimeoutSeconds: 180,
        seed: 3,
      },
    );
    expect(started.errors).toBeUndefined();
    const { run, credentials } = started.data!.startFederatedRun;
    const events: { kind: string; message?: string }[] = [];
    const subscriber = createClient({
      url: `${apiUrl().replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${project.key}` },
    });
    subscriber.subscribe<{ jobEvents: { kind: string; message?: string } }>(
      { query: 'subscription { jobEvents { kind status message metrics } }' },
      {
        next: ({ data }) => data && events.push(data.jobEvents),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    expect(run.participants.map((p) => p.kind)).toEqual([
      'SILO',
      'SILO',
      'SILO',
      'EXTERNAL',
    ]);
    expect(credentials.map((c) => c.name)).toEqual(['clinic']);

    const client = new FederatedParticipant({
      apiUrl: apiUrl(),
      runId: run.id,
      token: credentials[0].token,
    });
    const local = rowsOf(threeTargetCsv(150, 51));
    const joined = client.participate(
      {
        rows: local.length,
        train: (schema) => rowsToBatches(local, schema, 32),
      },
      { pollMs: 200 },
    );

    const finished = await waitForRun(project.key, run.id, (r) =>
      ['SUCCEEDED', 'FAILED', 'STOPPED'].includes(r.status),
    );
    const contributed = await joined;
    await subscriber.dispose();
    // Round progress reaches subscribers as FEDERATED_ROUND job events.
    const stored = events.filter(
      (e) =>
        e.kind === 'FEDERATED_ROUND' &&
        /stored as version/.test(e.message ?? ''),
    );
    expect(stored.length).toBeGreaterThanOrEqual(1);
    expect(finished.error).toBeNull();
    expect(finished.status).toBe('SUCCEEDED');
    expect(contributed).toEqual({ rounds: [1, 2, 3], runStatus: 'SUCCEEDED' });
    expect(finished.rounds.map((r) => [r.number, r.status, r.updates])).toEqual(
      [
        [1, 'COMPLETED', 4],
        [2, 'COMPLETED', 4],
        [3, 'COMPLETED', 4],
      ],
    );
    for (const round of finished.rounds) {
      expect(Object.keys(round.metrics!).sort()).toEqual(
        silos.map((s) => `silo-${[21, 31, 41][silos.indexOf(s)]}.csv`).sort(),
      );
      expect(round.aggregation!.updateNorms).toHaveLength(4);
    }
    const accuracies = [1, 2, 3].map((r) => meanAccuracy(finished, r));
    expect(accuracies[2]).toBeGreaterThan(accuracies[0]);

    // The final global version carries the alias and its lineage runs back
    // through every round to the initial weights.
    expect(finished.globalVersionId).toBe(finished.rounds[2].versionId);
    const model = await gql<{
      model: { aliases: { name: string; versionId: string }[] };
    }>(
      project.key,
      `query($id: ID!) { model(id: $id) { aliases { name versionId } } }`,
      { id: modelId },
    );
    expect(model.data!.model.aliases).toEqual([
      { name: 'federated', versionId: finished.globalVersionId },
    ]);
    const lineage = await gql<{
      modelVersionLineage: { ancestors: { id: string; kind: string }[] };
    }>(
      project.key,
      `query($id: ID!) { modelVersionLineage(versionId: $id) { ancestors { id kind } } }`,
      { id: finished.globalVersionId },
    );
    const ancestors = lineage.data!.modelVersionLineage.ancestors;
    expect(ancestors.map((a) => a.id)).toEqual([
      finished.rounds[1].versionId,
      finished.rounds[0].versionId,
      finished.rounds[0].baseVersionId,
    ]);
    expect(new Set(ancestors.map((a) => a.kind))).toEqual(
      new Set(['federated']),
    );
  });

  it('rejects malformed, non-finite, oversized, duplicate and stale updates without touching the global weights', async () => {
    const { project, modelId } = await federatedModel();
    const started = await startRun(
      project.key,
      modelId,
      [
        { external: true, name: 'a' },
        { external: true, name: 'b' },
      ],
      { rounds: 1, minClients: 2, roundTimeoutSeconds: 300, maxUpdateNorm: 50 },
    );
    expect(started.errors).toBeUndefined();
    const { run, credentials } = started.data!.startFederatedRun;
    const [a, b] = credentials.map(
      (c) =>
        new FederatedParticipant({
          apiUrl: apiUrl(),
          runId: run.id,
          token: c.token,
        }),
    );
    let info = await a.currentRound();
    for (let i = 0; i < 100 && info.roundStatus !== 'OPEN'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      info = await a.currentRound();
    }
    expect(info).toMatchObject({
      round: 1,
      roundStatus: 'OPEN',
      selected: true,
    });
    const url = `${apiUrl()}/v1/federated-runs/${run.id}/rounds/1`;
    const weightsBytes = async () =>
      Buffer.from(
        await (
          await fetch(`${url}/weights`, {
            headers: { Authorization: `Bearer ${credentials[0].token}` },
          })
        ).arrayBuffer(),
      );
    const before = await weightsBytes();
    const global = await a.globalWeights(1);
    const post = async (body: Uint8Array, sampleCount = 10, round = 1) => {
      const response = await fetch(
        `${apiUrl()}/v1/federated-runs/${run.id}/rounds/${round}/updates?sampleCount=${sampleCount}`,
        {
          method: 'POST',
          headers: {
            Authorization: `Bearer ${credentials[0].token}`,
            'Content-Type': 'application/vnd.chorus.weights',
          },
          body,
        },
      );

      return {
        status: response.status,
        body: (await response.json()) as {
          error?: { code: string; field?: string; message: string };
          norm?: number;
        },
      };
    };
    const changed = (change: (name: string, values: Float32Array) => void) => {
      const copy = new Map(
        [...global].map(([name, t]) => [
          name,
          { shape: [...t.shape], values: t.values.slice() },
        ]),
      );
      const [name, tensor] = [...copy][0];
      change(name, tensor.values);

      return encodeWeights(copy);
    };
    const firstName = [...global.keys()][0];

    const garbage = await post(Buffer.from('not a weights file at all'));
    expect(garbage.status).toBe(400);
    expect(garbage.body.error!.field).toBe('header');

    const nan = await post(changed((_, v) => (v[3] = NaN)));
    expect(nan.status).toBe(400);
    expect(nan.body.error!.field).toBe(`weights.${firstName}`);

    const huge = await post(changed((_, v) => v.fill(1e6)));
    expect(huge.status).toBe(400);
    expect(huge.body.error!.message).toMatch(/norm/);

    const reshaped = new Map(global);
    const first = global.get(firstName)!;
    reshaped.set(firstName, {
      shape: [first.values.length],
      values: first.values,
    });
    const shape = await post(encodeWeights(reshaped));
    expect(shape.status).toBe(400);
    expect(shape.body.error!.field).toBe(`weights.${firstName}`);

    const badCount = await post(
      changed(() => undefined),
      0,
    );
    expect(badCount.body.error!.field).toBe('sampleCount');

    expect((await weightsBytes()).equals(before)).toBe(true);

    const good = await post(
      changed((_, v) => (v[0] += 0.5)),
      12,
    );
    expect(good.status).toBe(201);
    expect(good.body.norm).toBeCloseTo(0.5, 4);
    const duplicate = await post(changed((_, v) => (v[0] += 0.5)));
    expect(duplicate.status).toBe(409);
    const stale = await post(
      changed(() => undefined),
      10,
      2,
    );
    expect(stale.status).toBe(409);

    const wrongToken = await fetch(`${url}/weights`, {
      headers: { Authorization: 'Bearer chorusfl_not-a-real-token-at-all-000' },
    });
    expect(wrongToken.status).toBe(401);
    const otherRun = await fetch(
      `${apiUrl()}/v1/federated-runs/00000000-0000-4000-8000-000000000000/round`,
      { headers: { Authorization: `Bearer ${credentials[0].token}` } },
    );
    expect(otherRun.status).toBe(404);

    await b.submitUpdate(1, global, 8);
    const finished = await waitForRun(project.key, run.id, (r) =>
      ['SUCCEEDED', 'FAILED'].includes(r.status),
    );
    expect(finished.status).toBe('SUCCEEDED');
    expect(finished.rounds[0].updates).toBe(2);
    expect(finished.rounds[0].aggregation!.sampleCounts).toEqual([12, 8]);
    // fedavg of (global + 0.5 at one weight) x 12 and global x 8.
    const merged = await gql<{ modelVersion: { id: string } }>(
      project.key,
      `query($id: ID!) { modelVersion(id: $id) { id } }`,
      { id: finished.globalVersionId },
    );
    expect(merged.data!.modelVersion.id).toBe(finished.rounds[0].versionId);
  });

  it('fails a round nobody contributes to and keeps the previous global version', async () => {
    const { project, modelId } = await federatedModel();
    const started = await startRun(
      project.key,
      modelId,
      [{ external: true, name: 'absent' }],
      { rounds: 2, minClients: 1, roundTimeoutSeconds: 5 },
    );
    const { run } = started.data!.startFederatedRun;
    const failed = await waitForRun(project.key, run.id, (r) =>
      ['SUCCEEDED', 'FAILED'].includes(r.status),
    );
    expect(failed.status).toBe('FAILED');
    expect(failed.error!.code).toBe('NOT_ENOUGH_UPDATES');
    expect(failed.rounds.map((r) => [r.number, r.status])).toEqual([
      [1, 'FAILED'],
    ]);
    expect(failed.globalVersionId).toBe(failed.rounds[0].baseVersionId);
  });

  it("stops a run, and refuses bad configs and other projects' models and datasets", async () => {
    const { project, modelId, reference } = await federatedModel();
    const bad = await startRun(
      project.key,
      modelId,
      [{ external: true, name: 'x' }],
      {
        minClients: 2,
      },
    );
    expect(codeOf(bad)).toBe('BAD_USER_INPUT');
    expect(bad.errors![0].extensions!.field).toBe('config.minClients');
    const noise = await startRun(
      project.key,
      modelId,
      [{ datasetId: reference.id }],
      {
        noiseMultiplier: 1,
      },
    );
    expect(noise.errors![0].extensions!.field).toBe('config.noiseMultiplier');

    const other = await newProject();
    const foreignModel = await startRun(
      other.key,
      modelId,
      [{ external: true, name: 'x' }],
      {},
    );
    expect(codeOf(foreignModel)).toBe('NOT_FOUND');
    const otherModel = await federatedModel();
    const foreignSilo = await startRun(
      otherModel.project.key,
      otherModel.modelId,
      [{ datasetId: reference.id }],
      {},
    );
    expect(codeOf(foreignSilo)).toBe('NOT_FOUND');

    const started = await startRun(
      project.key,
      modelId,
      [{ external: true, name: 'slow' }],
      {
        roundTimeoutSeconds: 600,
      },
    );
    const { run } = started.data!.startFederatedRun;
    await waitForRun(project.key, run.id, (r) => r.round === 1);
    const stopped = await gql<{ stopFederatedRun: RunView }>(
      project.key,
      `mutation($id: ID!) { stopFederatedRun(id: $id) { ${RUN_FIELDS} } }`,
      { id: run.id },
    );
    expect(stopped.data!.stopFederatedRun.status).toBe('STOPPED');
    expect(stopped.data!.stopFederatedRun.rounds[0].status).toBe('FAILED');
    const again = await gql(
      project.key,
      `mutation($id: ID!) { stopFederatedRun(id: $id) { id } }`,
      { id: run.id },
    );
    expect(codeOf(again)).toBe('CONFLICT');
  });
});
