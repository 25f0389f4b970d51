import * as tf from '@tensorflow/tfjs';

import { augment } from './augmentation';
import { LossBalancer } from './balancing';
import {
  assignTensors,
  canonicalJson,
  readCheckpointTensors,
  writeCheckpoint,
  type Checkpoint,
} from './checkpoint';
import { epochBatches } from './data';
import { TrainingConfigError } from './errors';
import { evaluate } from './evaluate';
import { startFineTune, type EpochSetting } from './finetune-run';
import type { BestEpoch, EpochRecord, TrainingHistory } from './history';
import { monitorValue, validateMonitor } from './monitor';
import {
  buildModel,
  inputTensors,
  type BuiltModel,
  type ModelPlan,
} from './model';
import { learningRateAt, Optimizer } from './optimizer';
import { planModel } from './plan';
import { encodeRows } from './preprocessing';
import { Random } from './random';
import { trainStep, type StepContext } from './step';
import { encodeLabels } from './tasks';
import { validateTrainOptions, type TrainOptions } from './train-options';

/** A trained model: its plan and the two views of its layers. */
export interface TrainedModel {
  plan: ModelPlan;
  /** Outputs logits per task. */
  training: tf.LayersModel;
  /** Outputs predictions per task; this is what an artifact holds. */
  inference: tf.LayersModel;
  dispose(): void;
}

export interface TrainResult {
  /** `cancelled` when the signal aborted; `early-stopped` by patience. */
  status: 'completed' | 'early-stopped' | 'cancelled';
  /** The tfjs backend that ran the computation. */
  backend: string;
  model: TrainedModel;
  history: TrainingHistory;
  best: BestEpoch | null;
  /** State at the end of the last completed epoch (null if none). */
  checkpoint: Checkpoint | null;
  /** With `base`: the tasks whose head was loaded from it. */
  reusedHeads?: string[];
}

/**
 * Trains a shared-backbone multi-task model. Validates options first
 * (TrainingConfigError), throws TrainingDivergedError on a non-finite loss,
 * returns `cancelled` with the last epoch checkpoint when `signal` aborts.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const statistics = options.base?.statistics;
  const { plan, taskSources, sources } = planModel(
    options.spec,
    validateTrainOptions(options),
    statistics && options.base?.newInputs
      ? { features: [], tasks: statistics.tasks }
      : statistics,
  );
  validateMonitor(options.earlyStopping?.monitor, plan);
  const batchSize = options.batchSize ?? 32;
  const random = new Random(options.seed ?? 1);
  const built = buildModel(plan, random);
  const weights = built.training.weights;
  const trainable = built.training.trainableWeights;
  const variables = trainable.map((w) => w.read() as tf.Variable);
  const shared = trainable.map((w) => w.originalName.startsWith('backbone/'));
  const lastShared = trainable.reduce(
    (last, w, i) =>
      shared[i] && /kernel$|embeddings$/.test(w.originalName) ? i : last,
    -1,
  );
  const balancer = new LossBalancer(
    options.balancing ?? { strategy: 'equal' },
    plan.tasks,
  );
  const optimizer = new Optimizer(options.optimizer ?? { kind: 'adam' }, [
    ...trainable.map((w, i) => ({
      variable: variables[i],
      decay: /kernel$|embeddings$/.test(w.originalName),
    })),
    ...balancer.variables.map((variable) => ({ variable, decay: false })),
  ]);
  let fineTune;
  try {
    fineTune = startFineTune(
      options,
      plan,
      built,
      optimizer.learningRate,
      options.resumeFrom !== undefined,
    );
  } catch (error) {
    optimizer.dispose();
    balancer.dispose();
    disposeModel(built);
    throw error;
  }
  const context: StepContext = {
    plan,
    model: built,
    variables,
    shared,
    lastShared,
    optimizer,
    balancer,
    random,
    clipNorm: options.clipNorm,
    clipValue: options.clipValue,
    owners: fineTune?.owners,
    proximal: fineTune?.anchors
      ? { mu: fineTune.mu, anchors: fineTune.anchors }
      : undefined,
  };
  const specJson = canonicalJson(options.spec);
  const weightEntries = () =>
    weights.map((w) => ({
      name: `weight/${w.originalName}`,
      variable: w.read() as tf.Variable,
    }));
  const slotEntries = () =>
    optimizer
      .slotTensors()
      .map((variable, i) => ({ name: `slot/${i}`, variable }));
  let history: TrainingHistory = { steps: [], epochs: [] };
  let best: BestEpoch | null = null;
  let bestWeights: Float32Array[] | null = null;
  let wait = 0;
  let startEpoch = 0;
  let globalStep = 0;
  let checkpoint: Checkpoint | null = null;

  if (options.resumeFrom) {
    const manifest = options.resumeFrom.manifest;
    if (manifest?.spec !== specJson) {
      throw new TrainingConfigError(
        'resumeFrom',
        'the checkpoint was made for a different model spec.',
      );
    }
    const saved = readCheckpointTensors(options.resumeFrom);
    assignTensors([...weightEntries(), ...slotEntries()], saved);
    optimizer.iterations = manifest.optimizerIterations;
    balancer.setState(manifest.balancer);
    random.setState(manifest.random);
    history = structuredClone(manifest.history);
    best = manifest.best;
    wait = manifest.wait;
    startEpoch = manifest.epoch;
    globalStep = manifest.step;
    if (saved.has(`best/${weights[0]?.originalName}`)) {
      bestWeights = weights.map((w) =>
        saved.get(`best/${w.originalName}`)!.values.slice(),
      );
    }
    checkpoint = options.resumeFrom;
  }

  const sizes = sources.map((s) => s.schema.rowCount);
  const stepsPerEpoch = sizes.reduce(
    (n, rows) => n + Math.ceil(rows / batchSize),
    0,
  );
  const totalSteps = stepsPerEpoch * options.epochs;
  const peak = optimizer.learningRate;
  const rowOptions = {
    batchSize,
    shuffleBuffer: options.shuffleBuffer ?? 1024,
    prefetch: options.prefetch ?? 2,
  };
  let status: TrainResult['status'] = 'completed';

  try {
    for (let epoch = startEpoch; epoch < options.epochs; epoch++) {
      const started = Date.now();
      const setting: EpochSetting | undefined = fineTune?.enterEpoch(epoch);
      context.frozen = setting?.frozen;
      context.scales = setting?.scales;
      const sums = plan.tasks.map(() => 0);
      const counts = plan.tasks.map(() => 0);
      let batch = 0;
      const stream = epochBatches(
        sources,
        rowOptions,
        options.sourceSchedule ?? { kind: 'proportional' },
        random,
      );
      for await (const { source, rows } of stream) {
        if (options.signal?.aborted) {
          status = 'cancelled';
          break;
        }
        const features = encodeRows(plan.features, plan.layout, rows);
        const labels = plan.tasks.map((task, t) => {
          const encoded = encodeLabels(task, rows);
          if (!taskSources[t][source]) {
            encoded.mask.fill(0);
          }

          return encoded;
        });
        if (options.augmentation) {
          augment(
            options.augmentation,
            plan.features,
            plan.layout,
            features,
            labels,
            random,
          );
        }
        const tensors = {
          inputs: inputTensors(plan.layout, features),
          labels: labels.map((l, t) =>
            tf.tensor2d(l.values, [rows.length, plan.tasks[t].units]),
          ),
          masks: labels.map((l) =>
            tf.tensor2d(l.mask, [rows.length, l.mask.length / rows.length]),
          ),
          present: tf.tensor1d(
            labels.map((l) => (l.mask.some((m) => m > 0) ? 1 : 0)),
          ),
        };
        const learningRate = learningRateAt(
          peak,
          options.schedule,
          globalStep,
          totalSteps,
        );
        let outcome;
        try {
          outcome = trainStep(context, tensors, learningRate, {
            epoch,
            step: globalStep,
          });
        } finally {
          tf.dispose([
            ...tensors.inputs,
            ...tensors.labels,
            ...tensors.masks,
            tensors.present,
          ]);
        }
        const record = {
          epoch,
          step: globalStep,
          learningRate,
          loss: outcome.loss,
          taskLosses: byTask(plan, outcome.taskLosses),
          taskWeights: byTask(plan, outcome.taskWeights),
          ...(setting && {
            learningRates: {
              backbone: (setting.rates.backbone * learningRate) / peak,
              heads: (setting.rates.heads * learningRate) / peak,
            },
          }),
          ...(outcome.proximal !== undefined && {
            proximal: outcome.proximal,
          }),
        };
        plan.tasks.forEach((_, t) => {
          if (labels[t].mask.some((m) => m > 0)) {
            sums[t] += outcome.taskLosses[t];
            counts[t]++;
          }
        });
        if (options.recordSteps ?? true) {
          history.steps.push(record);
        }
        options.onBatch?.({ epoch, step: globalStep, batch, record });
        globalStep++;
        batch++;
      }
      if (status === 'cancelled') {
        break;
      }
      if (batch === 0) {
        throw new TrainingConfigError(
          'data',
          `the train stream yielded no rows in epoch ${epoch}; pass a ` +
            'function that returns a fresh stream for every epoch.',
        );
      }
      const meanLosses = sums.map((sum, t) =>
        counts[t] ? sum / counts[t] : 0,
      );
      balancer.endEpoch(meanLosses);
      const evaluation = await evaluate({
        plan,
        model: built,
        sources,
        taskSources,
        batchSize: Math.max(batchSize, 256),
        signal: options.signal,
      });
      if (options.signal?.aborted) {
        status = 'cancelled';
        break;
      }
      const monitor = monitorValue(
        options.earlyStopping?.monitor,
        plan,
        evaluation,
        meanLosses,
      );
      const record: EpochRecord = {
        epoch,
        trainLoss: byTask(plan, meanLosses),
        validation: evaluation?.metrics ?? {},
        combinedScore: evaluation?.combinedScore ?? NaN,
        monitored: monitor.value,
        seconds: (Date.now() - started) / 1000,
        ...(options.base &&
          setting && {
            trainableBackbone: setting.trainableBackbone,
            frozenLayers: setting.frozenLayers,
          }),
      };
      history.epochs.push(record);
      const minDelta = options.earlyStopping?.minDelta ?? 0;
      const improved =
        best === null ||
        (monitor.higherIsBetter
          ? monitor.value > best.monitored + minDelta
          : monitor.value < best.monitored - minDelta);
      if (improved) {
        best = { epoch, monitored: monitor.value };
        bestWeights = weights.map((w) =>
          (w.read().dataSync() as Float32Array).slice(),
        );
        wait = 0;
      } else {
        wait++;
      }
      checkpoint = writeCheckpoint(
        {
          spec: specJson,
          epoch: epoch + 1,
          step: globalStep,
          optimizerIterations: optimizer.iterations,
          random: random.getState(),
          balancer: balancer.getState(),
          history,
          best,
          wait,
        },
        [
          ...[...weightEntries(), ...slotEntries()].map(
            ({ name, variable }) => ({
              name,
              shape: variable.shape,
              values: () => variable.dataSync() as Float32Array,
            }),
          ),
          ...(bestWeights ?? []).map((values, i) => ({
            name: `best/${weights[i].originalName}`,
            shape: weights[i].shape as number[],
            values,
          })),
        ],
      );
      await options.onEpoch?.({ epoch, record, improved, checkpoint });
      const patience = options.earlyStopping?.patience;
      if (patience !== undefined && wait >= patience) {
        status = 'early-stopped';
        break;
      }
    }
  } catch (error) {
    optimizer.dispose();
    balancer.dispose();
    fineTune?.dispose();
    disposeModel(built);
    throw error;
  }
  optimizer.dispose();
  balancer.dispose();
  fineTune?.dispose();
  if ((options.restoreBest ?? true) && bestWeights && status !== 'cancelled') {
    const restored = bestWeights;
    tf.tidy(() =>
      weights.forEach((w, i) =>
        w.write(tf.tensor(restored[i], w.shape as number[])),
      ),
    );
  }

  return {
    status,
    backend: tf.getBackend(),
    model: {
      plan,
      training: built.training,
      inference: built.inference,
      dispose: () => disposeModel(built),
    },
    history,
    best,
    checkpoint,
    ...(options.base && { reusedHeads: fineTune?.reusedHeads ?? [] }),
  };
}

/** Both views share layers; each holds a reference, so release both. */
function disposeModel(built: BuiltModel): void {
  built.training.dispose();
}

function byTask(plan: ModelPlan, values: number[]): Record<string, number> {
  return Object.fromEntries(
    plan.tasks.map((task, t) => [task.name, values[t]]),
  );
}
