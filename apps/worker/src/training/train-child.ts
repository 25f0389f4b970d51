import { createHash } from 'node:crypto';

import type { ShardManifest } from '#libs/datasets';
import { ObjectStorage } from '#libs/storage';
import {
  exportArtifact,
  selectBackend,
  train,
  TrainingConfigError,
  TrainingDivergedError,
  zipArtifact,
} from '#libs/training';

import { decodeCheckpoint, encodeCheckpoint } from './checkpoint-codec';
import type { ChildMessage, ParentMessage, TrainChildInput } from './messages';
import { readJson, shardBatches } from './shard-source';
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
      const stream = (split: 'train' | 'validation') => () =>
        shardBatches({ storage, prefix: source.shardPrefix, manifest, split });

      return {
        name: source.name,
        schema: source.schema,
        train: stream('train'),
        validation: stream('validation'),
      };
    }),
  );
  const resumeFrom = input.resumeFrom
    ? decodeCheckpoint(await readBytes(storage, input.resumeFrom))
    : undefined;

  const segmentStart = Date.now();
  let segmentEnded = false;
  let lastCheckpoint = Date.now();
  let stepWeights: StepWeights[] = [];
  const result = await train({
    ...input.options,
    spec: input.spec,
    data: sources,
    signal: controller.signal,
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
        Date.now() - segmentStart >= input.segmentSeconds * 1000;
      const due =
        segmentEnded ||
        done % input.checkpoint.everyEpochs === 0 ||
        done === input.options.epochs ||
        (input.checkpoint.everyMinutes !== undefined &&
          Date.now() - lastCheckpoint >=
            input.checkpoint.everyMinutes * 60_000);
      let key: string | undefined;
      if (due) {
        key = `${input.checkpointPrefix}epoch-${done}.ckpt`;
        const bytes = encodeCheckpoint(checkpoint);
        await storage.put(key, bytes, bytes.length);
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
  if (result.status === 'cancelled') {
    result.model.dispose();
    await send({
      type: 'done',
      status: segmentEnded ? 'segment-ended' : 'cancelled',
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
  const artifact = await exportArtifact(result.model, { metrics });
  const zip = await zipArtifact(artifact);
  await storage.put(input.artifactKey, zip, zip.length, 'application/zip');
  const taskArtifacts: Record<
    string,
    { key: string; sha256: string; sizeBytes: number }
  > = {};
  for (const task of input.spec.tasks) {
    const single = await zipArtifact(
      await exportArtifact(result.model, {
        task: task.name,
        metrics: metrics[task.name] ? { [task.name]: metrics[task.name] } : {},
      }),
    );
    const key = `${input.artifactKey.replace(/\.zip$/, '')}/tasks/${encodeURIComponent(task.name)}.zip`;
    await storage.put(key, single, single.length, 'application/zip');
    taskArtifacts[task.name] = {
      key,
      sha256: createHash('sha256').update(single).digest('hex'),
      sizeBytes: single.length,
    };
  }
  result.model.dispose();
  await send({
    type: 'done',
    status: result.status,
    sha256: createHash('sha256').update(zip).digest('hex'),
    sizeBytes: zip.length,
    metrics,
    taskArtifacts,
  });
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

async function readBytes(storage: ObjectStorage, key: string) {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.get(key)) {
    chunks.push(chunk as Buffer);
  }

  return Buffer.concat(chunks);
}
