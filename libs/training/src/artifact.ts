import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import type { TaskMetrics } from './metrics';
import type { ModelPlan } from './model';
import type { FeaturePlan, InputLayout } from './preprocessing';
import type { BackboneOptions } from './spec';
import type { TaskPlan } from './tasks';
import type { TrainedModel } from './train';
import { bytesOfSpecs, type WeightSpec } from './named-weights';

/** What a task's head outputs and how to read it; stored in the manifest. */
export interface ArtifactTask {
  name: string;
  kind: TaskPlan['kind'];
  /** Target columns the task was trained on. */
  columns: string[];
  /** Class or label names, in output order (binary: [negative, positive]). */
  labels: string[];
  /** Regression outputs are standardised: value = output * std + mean. */
  targetMean: number;
  targetStd: number;
}

/**
 * Everything a client needs beside model.json and the weights: how to turn a
 * row into the model's inputs (`features`, `layout`, `inputs`) and how to
 * read each output (`tasks`, in the model's output order).
 */
export interface ArtifactManifest {
  format: 'chorus.artifact';
  version: 1;
  /** The model's input names, in order. */
  inputs: string[];
  features: FeaturePlan[];
  layout: InputLayout;
  backbone: BackboneOptions;
  tasks: ArtifactTask[];
  /** Validation metrics per task when the artifact was made, if given. */
  metrics: Record<string, TaskMetrics>;
}

/** The tfjs layers format in memory plus the manifest; no file system. */
export interface Artifact {
  manifest: ArtifactManifest;
  /** The content of model.json; its weights manifest names `weights.bin`. */
  modelJson: string;
  /** The content of weights.bin. */
  weights: Uint8Array;
}

export interface ExportOptions {
  /** Export only this task: the backbone plus its head. Default all. */
  task?: string;
  /** Metrics to record in the manifest, per task. */
  metrics?: Record<string, TaskMetrics>;
}

export const WEIGHTS_FILE = 'weights.bin';

export function manifestFor(
  plan: ModelPlan,
  model: tf.LayersModel,
  tasks: TaskPlan[],
  metrics: Record<string, TaskMetrics> = {},
): ArtifactManifest {
  return {
    format: 'chorus.artifact',
    version: 1,
    inputs: model.inputs.map((input) => input.name.replace(/:\d+$/, '')),
    features: structuredClone(plan.features),
    layout: structuredClone(plan.layout),
    backbone: structuredClone(plan.backbone),
    tasks: tasks.map((task) => ({
      name: task.name,
      kind: task.kind,
      columns: [...task.columns],
      labels: [...task.labels],
      targetMean: task.targetMean,
      targetStd: task.targetStd,
    })),
    metrics: Object.fromEntries(
      tasks
        .filter((task) => metrics[task.name])
        .map((task) => [task.name, { ...metrics[task.name] }]),
    ),
  };
}

/**
 * An artifact to be written a weight at a time: model.json's fields but its
 * weights manifest, the manifest, the weights.bin layout, and the weights'
 * values read from the model one tensor at a time (so a writer that streams
 * them holds one layer, not the model, beside the backend's copy).
 */
export interface ArtifactLayout {
  manifest: ArtifactManifest;
  /** model.json without `weightsManifest`, which follows `specs`. */
  modelJson: {
    format: 'layers-model';
    generatedBy: string;
    convertedBy: null;
    modelTopology: object;
  };
  /** weights.bin's order: names (originalName), shapes, all float32. */
  specs: WeightSpec[];
  /** Each weight's values, in `specs` order, copied when asked for. */
  values(): AsyncIterable<Float32Array>;
}

/**
 * A trained model (or one task of it) laid out as an artifact, as
 * `model.save` would write it (topology from `toJSON`, weights in
 * `model.weights` order under their original names) but without gathering
 * the weights into one buffer.
 */
export function artifactLayout(
  trained: TrainedModel,
  options: ExportOptions = {},
): ArtifactLayout {
  const { plan, inference } = trained;
  let model = inference;
  let tasks = plan.tasks;
  if (options.task !== undefined) {
    const index = plan.tasks.findIndex((t) => t.name === options.task);
    if (index < 0) {
      throw new TrainingConfigError(
        'task',
        `the model has no task "${options.task}"; tasks are ` +
          `${plan.tasks.map((t) => t.name).join(', ')}.`,
      );
    }
    tasks = [plan.tasks[index]];
    model = tf.model({
      inputs: inference.inputs,
      outputs: inference.outputs[index],
      name: `chorus_${options.task.replace(/[^A-Za-z0-9_]/g, '_')}`,
    });
  }
  const weights = model.weights;
  for (const weight of weights) {
    if (weight.dtype !== 'float32') {
      throw new Error(
        `weight ${weight.originalName} is ${weight.dtype}; artifacts ` +
          'hold float32 weights only.',
      );
    }
  }

  return {
    manifest: manifestFor(plan, model, tasks, options.metrics),
    modelJson: {
      format: 'layers-model',
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
      convertedBy: null,
      modelTopology: model.toJSON(null, false) as object,
    },
    specs: weights.map((w) => ({
      name: w.originalName,
      shape: [...w.shape] as number[],
      dtype: 'float32',
    })),
    async *values() {
      for (const weight of weights) {
        // read() is the variable itself: its data is copied, never disposed.
        yield (await weight.read().data()) as Float32Array;
      }
    },
  };
}

/** Saves a trained model (or one task of it) as an artifact in memory. */
export async function exportArtifact(
  trained: TrainedModel,
  options: ExportOptions = {},
): Promise<Artifact> {
  const layout = artifactLayout(trained, options);
  const weights = new Uint8Array(bytesOfSpecs(layout.specs));
  let offset = 0;
  for await (const values of layout.values()) {
    weights.set(
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      offset,
    );
    offset += values.byteLength;
  }

  return {
    manifest: layout.manifest,
    modelJson: JSON.stringify({
      ...layout.modelJson,
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: layout.specs }],
    }),
    weights,
  };
}

/** Loads the layers model of an artifact (Node or browser, no I/O). */
export async function loadArtifactModel(
  artifact: Artifact,
): Promise<tf.LayersModel> {
  if (artifact?.manifest?.format !== 'chorus.artifact') {
    throw new TrainingConfigError(
      'artifact.manifest',
      'this is not a Chorus artifact manifest (format "chorus.artifact").',
    );
  }
  const json = JSON.parse(artifact.modelJson) as {
    modelTopology: object;
    weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[];
  };
  const weightData = artifact.weights.slice().buffer;

  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData,
    }),
  );
}
