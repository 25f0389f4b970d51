import * as tf from '@tensorflow/tfjs';

import { TrainingConfigError } from './errors';
import type { TaskMetrics } from './metrics';
import type { ModelPlan } from './model';
import type { FeaturePlan, InputLayout } from './preprocessing';
import type { BackboneOptions } from './spec';
import type { TaskPlan } from './tasks';
import type { TrainedModel } from './train';

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

/** Saves a trained model (or one task of it) as an artifact in memory. */
export async function exportArtifact(
  trained: TrainedModel,
  options: ExportOptions = {},
): Promise<Artifact> {
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
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;

      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
        },
      };
    }),
  );
  const weightData = saved?.weightData;
  const buffers = Array.isArray(weightData)
    ? weightData
    : weightData
      ? [weightData]
      : [];
  const weights = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const buffer of buffers) {
    weights.set(new Uint8Array(buffer), offset);
    offset += buffer.byteLength;
  }
  const modelJson = JSON.stringify({
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: saved?.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: saved?.weightSpecs }],
  });

  return {
    manifest: manifestFor(plan, model, tasks, options.metrics),
    modelJson,
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
