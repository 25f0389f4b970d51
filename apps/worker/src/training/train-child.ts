import { Readable } from 'node:stream';

import type { ShardManifest } from '#libs/datasets';
import {
  openArtifactWeights,
  readWeightsStream,
  storeWeights,
  writeArtifact,
} from '#libs/federation';
import { ObjectStorage } from '#libs/storage';
import {
  artifactLayout,
  evaluateWeights,
  selectBackend,
  train,
  TrainingConfigError,
  TrainingDivergedError,
  weightStreamOf,
  type BaseStatistics,
  type ExportOptions,
  type NamedWeights,
  type TrainOptions,
} from '#libs/training';

import { taskArtifactsOf } from '../handlers/attempt-keys';
import { checkpointParts, readCheckpoint } from './checkpoint-codec';
import type { ChildMessage, ParentMessage, TrainChildInput } from './messages';
import { readJson, remapCategories, shardBatches } from './shard-source';
import { keepsStep, type StepWeights } from './step-weights';

/**
 * The training child: the worker forks one per training attempt, so a
 * native crash or a kill ends only this process and the worker's event loop
 * keeps heartbeating. It streams shards, trains, stores a checkpoint every
 * epoch and the artifact at the end, and reports each step to the worker.
 */
const send = (message: ChildMessage) =>
  new Promise<void>((resolve) => process.send!(message, () => resolve()));

const controller = new AbortController();

process.on('message', (message: ParentMessage) => {
  if (message.type === 'cancel') {
    controller.abort();
  } else if (message.type === 'start') {
    run(message.input)
      .catch(async (error) => send(failure(error)))
      .finally(() => process.exit(0));
  }
});
// The worker is gone: nobody would record what this process does.
process.on('disconnect', () => process.exit(1));

async function run(input: TrainChildInput) {
  const storage = new ObjectStorage({
    ...input.storage,
    presignMaxSeconds: 60,
  });
  const backend = await selectBackend();
  await send({ type: 'backend', backend: backend.backend });
  const sources = await Promise.all(
    input.sources.map(async (source) => {
      const manifest = await readJson<ShardManifest>(
        storage,
        `${source.shardPrefix}manifest.json`,
      );
      const stream = (split: 'train' | 'validation') => () => {
        const batches = shardBatches({
          storage,
          prefix: source.shardPrefix,
          manifest,
          split,
        });

        return source.dataSchema
          ? remapCategories(batches, source.dataSchema, source.schema)
          : batches;
      };

      return {
        source: {
          name: source.name,
          schema: source.schema,
          train: stream('train'),
          validation: stream('validation'),
        },
        trainRows: manifest.split?.counts.train ?? manifest.rowCount,
      };
    }),
  );
  const data = sources.map((s) => s.source);
  const trainRows = sources.reduce((sum, s) => sum + s.trainRows, 0);
  const base = input.base ? await loadBase(storage, input) : undefined;
  if (input.mode === 'evaluate') {
    const evaluation = await evaluateWeights({
      spec: input.spec,
      data,
      weights: base!.weights,
      statistics: base!.statistics,
    });
    await send({
      type: 'done',
      status: 'completed',
      metrics: (evaluation?.metrics ?? {}) as Record<
        string,
        Record<string, number>
      >,
      trainRows,
    });

    return;
  }
  const init = new AbortController();
  if (input.mode === 'init') {
    // An untrained model: the run stops before its first step, leaving
    // the seeded initial weights.
    init.abort();
  }
  const resumeFrom = input.resumeFrom
    ? await readCheckpoint(await storage.get(input.resumeFrom))
    : undefined;

  const segmentStart = Date.now();
  let segmentEnded = false;
  let lastCheckpoint = Date.now();
  const fineTune: Partial<TrainOptions> = base
    ? {
        base: {
          weights: base.weights,
          newInputs: base.newInputs,
          statistics: base.statistics,
        },
        ...(input.base?.freeze ? { freeze: input.base.freeze } : {}),
        ...(input.base?.freezeHeads?.length
          ? { freezeHeads: input.base.freezeHeads }
          : {}),
        ...(input.base?.learningRates
          ? { learningRates: input.base.learningRates }
          : {}),
        ...(input.base?.proximalMu
          ? { proximal: { mu: input.base.proximalMu } }
          : {}),
      }
    : {};
  let stepWeights: StepWeights[] = [];
  const result = await train({
    ...input.options,
    ...fineTune,
    spec: input.spec,
    data,
    signal: input.mode === 'init' ? init.signal : controller.signal,
    resumeFrom,
    // The worker stores the steps it needs; a history of every step would
    // grow without bound on a long run.
    recordSteps: false,
    onBatch: ({ epoch, step, record }) => {
      if (keepsStep(step)) {
        stepWeights.push({
          step,
          epoch: epoch + 1,
          weights: record.taskWeights,
        });
      }
    },
    onEpoch: async ({ epoch, record, checkpoint }) => {
      const done = epoch + 1;
      // Time is up for this segment: checkpoint now and continue later.
      segmentEnded =
        done < input.options.epochs &&
        input.segmentSeconds !== undefined &&
        Date.now() - segmentStart >= input.segmentSeconds * 1000;
      const cadence = input.checkpoint;
      const due =
        cadence !== undefined &&
        (segmentEnded ||
          done % cadence.everyEpochs === 0 ||
          done === input.options.epochs ||
          (cadence.everyMinutes !== undefined &&
            Date.now() - lastCheckpoint >= cadence.everyMinutes * 60_000));
      let key: string | undefined;
      if (due) {
        key = `${cadence.prefix}epoch-${done}.ckpt`;
        const { parts, size } = checkpointParts(checkpoint);
        await storage.putStream(key, Readable.from(parts), size);
        lastCheckpoint = Date.now();
      }
      await send({
        type: 'epoch',
        epoch: epoch + 1,
        trainLoss: record.trainLoss,
        validation: record.validation as Record<string, Record<string, number>>,
        combinedScore: record.combinedScore,
        checkpointKey: key,
        stepWeights,
      });
      stepWeights = [];
      if (segmentEnded) {
        controller.abort();
      }
    },
  });
  if (result.status === 'cancelled' && input.mode !== 'init') {
    result.model.dispose();
    await send({
      type: 'done',
      status: segmentEnded ? 'segment-ended' : 'cancelled',
    });

    return;
  }
  if (input.updateKey) {
    // A weight at a time into the weights file: the model's values are
    // never gathered beside the backend's copy.
    const weights = weightStreamOf(result.model);
    const stored = await storeWeights(
      storage,
      input.updateKey,
      weights.specs,
      weights.tensors(),
    );
    result.model.dispose();
    await send({
      type: 'done',
      status: result.status,
      ...stored,
      trainRows,
    });

    return;
  }
  const best = result.best
    ? result.history.epochs.find((e) => e.epoch === result.best!.epoch)
    : result.history.epochs.at(-1);
  const metrics = (best?.validation ?? {}) as Record<
    string,
    Record<string, number>
  >;
  // Each artifact streams into storage a weight at a time.
  const store = (key: string, options: ExportOptions) => {
    const layout = artifactLayout(result.model, options);

    return writeArtifact(storage, {
      key,
      modelJson: layout.modelJson,
      manifest: layout.manifest,
      specs: layout.specs,
      values: layout.values(),
    });
  };
  const artifact = await store(input.artifactKey, { metrics });
  const taskArtifacts: Record<
    string,
    { key: string; sha256: string; sizeBytes: number }
  > = {};
  for (const task of input.spec.tasks) {
    const key =
      taskArtifactsOf(input.artifactKey) +
      `${encodeURIComponent(task.name)}.zip`;
    const stored = await store(key, {
      task: task.name,
      metrics: metrics[task.name] ? { [task.name]: metrics[task.name] } : {},
    });
    taskArtifacts[task.name] = { key, ...stored };
  }
  result.model.dispose();
  await send({
    type: 'done',
    status: input.mode === 'init' ? 'completed' : result.status,
    ...artifact,
    metrics,
    taskArtifacts,
    trainRows,
  });
}

/**
 * The weights a run starts from: an artifact's (whose features decide
 * whether the inputs are new) or an imported backbone's weights file, with
 * a participant's own heads laid over them.
 */
async function loadBase(
  storage: ObjectStorage,
  input: TrainChildInput,
): Promise<{
  weights: NamedWeights;
  newInputs: boolean;
  statistics?: BaseStatistics;
}> {
  const key = input.base!.key;
  let weights: NamedWeights;
  let newInputs = false;
  let statistics: BaseStatistics | undefined;
  if (key.endsWith('.weights')) {
    weights = await readWeightsFile(storage, key);
  } else {
    // Tensor by tensor from storage: the artifact's bytes are never held
    // beside the weights.
    const reader = await openArtifactWeights(storage, key);
    weights = new Map();
    try {
      for await (const { name, shape, values } of reader) {
        weights.set(name, { shape, values });
      }
    } finally {
      await reader.close();
    }
    const columns = (features: (string | { column: string })[]) =>
      features.map((f) => (typeof f === 'string' ? f : f.column)).join('\n');
    newInputs =
      columns(reader.manifest.features) !== columns(input.spec.features);
    const { features, tasks } = reader.manifest;
    statistics = { features, tasks };
  }
  if (input.base!.headsKey) {
    for (const [name, tensor] of await readWeightsFile(
      storage,
      input.base!.headsKey,
    )) {
      if (name.startsWith('head/')) {
        weights.set(name, tensor);
      }
    }
  }

  return { weights, newInputs, statistics };
}

async function readWeightsFile(
  storage: ObjectStorage,
  key: string,
): Promise<NamedWeights> {
  const weights: NamedWeights = new Map();
  for await (const tensor of readWeightsStream(await storage.get(key))) {
    weights.set(tensor.name, { shape: tensor.shape, values: tensor.values });
  }

  return weights;
}

function failure(error: unknown): ChildMessage {
  if (error instanceof TrainingConfigError) {
    return {
      type: 'failed',
      code: 'BAD_USER_INPUT',
      message: error.message,
      field: error.field,
    };
  }
  if (error instanceof TrainingDivergedError) {
    return { type: 'failed', code: 'DIVERGED', message: error.message };
  }

  return {
    type: 'failed',
    code: 'ERROR',
    message: (error as Error)?.stack ?? String(error),
  };
}
