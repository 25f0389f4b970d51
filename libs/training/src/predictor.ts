import * as tf from '@tensorflow/tfjs';

import {
  loadArtifactModel,
  manifestFor,
  type Artifact,
  type ArtifactManifest,
  type ArtifactTask,
} from './artifact';
import { inputTensors } from './model';
import { encodeJsonRows, type RowError } from './preprocessing';
import type { TrainedModel } from './train';

export type TaskPrediction =
  | { value: number }
  | {
      label: string;
      probability: number;
      probabilities?: Record<string, number>;
    }
  | { labels: string[]; probabilities: Record<string, number> };

export interface PredictResult {
  /** Per row: each task's prediction, or null when the row had errors. */
  predictions: (Record<string, TaskPrediction> | null)[];
  /** Problems found in the rows, each naming the row index and field. */
  errors: RowError[];
}

/**
 * Predicts from plain JSON rows with an artifact's preprocessing. Rows whose
 * fields cannot be read get `null` and an entry in `errors`; the others are
 * predicted.
 */
export class Predictor {
  constructor(
    readonly manifest: ArtifactManifest,
    readonly model: tf.LayersModel,
    private readonly ownsModel: boolean,
  ) {}

  static async fromArtifact(artifact: Artifact): Promise<Predictor> {
    return new Predictor(
      artifact.manifest,
      await loadArtifactModel(artifact),
      true,
    );
  }

  static fromTrained(trained: TrainedModel): Predictor {
    return new Predictor(
      manifestFor(trained.plan, trained.inference, trained.plan.tasks),
      trained.inference,
      false,
    );
  }

  /** Raw model outputs per task (rows x units), regression de-standardised. */
  outputs(rows: Record<string, unknown>[]): {
    outputs: Float32Array[];
    errors: RowError[];
  } {
    const { features, errors } = encodeJsonRows(
      this.manifest.features,
      this.manifest.layout,
      rows,
    );
    if (rows.length === 0) {
      return {
        outputs: this.manifest.tasks.map(() => new Float32Array()),
        errors,
      };
    }
    const tensors = tf.tidy(() => {
      const inputs = inputTensors(this.manifest.layout, features);
      const result = this.model.predict(inputs, { batchSize: 256 });

      return Array.isArray(result) ? result : [result];
    });
    const outputs = tensors.map((t) => t.dataSync() as Float32Array);
    tf.dispose(tensors);
    this.manifest.tasks.forEach((task, t) => {
      if (task.kind === 'regression') {
        outputs[t] = outputs[t].map(
          (v) => v * task.targetStd + task.targetMean,
        );
      }
    });

    return { outputs, errors };
  }

  predict(rows: Record<string, unknown>[]): PredictResult {
    const { outputs, errors } = this.outputs(rows);
    const failed = new Set(errors.map((e) => e.row));
    const predictions = rows.map((_, row) =>
      failed.has(row)
        ? null
        : Object.fromEntries(
            this.manifest.tasks.map((task, t) => [
              task.name,
              readPrediction(task, outputs[t], row),
            ]),
          ),
    );

    return { predictions, errors };
  }

  dispose(): void {
    if (this.ownsModel) {
      this.model.dispose();
    }
  }
}

function readPrediction(
  task: ArtifactTask,
  output: Float32Array,
  row: number,
): TaskPrediction {
  const units =
    task.kind === 'regression' || task.kind === 'binary'
      ? 1
      : task.labels.length;
  const values = Array.from(output.subarray(row * units, (row + 1) * units));
  switch (task.kind) {
    case 'regression':
      return { value: values[0] };
    case 'binary':
      return {
        label: task.labels[values[0] >= 0.5 ? 1 : 0],
        probability: values[0],
      };
    case 'multiclass': {
      const best = values.indexOf(Math.max(...values));

      return {
        label: task.labels[best],
        probability: values[best],
        probabilities: Object.fromEntries(
          task.labels.map((l, i) => [l, values[i]]),
        ),
      };
    }
    case 'multilabel':
      return {
        labels: task.labels.filter((_, i) => values[i] >= 0.5),
        probabilities: Object.fromEntries(
          task.labels.map((l, i) => [l, values[i]]),
        ),
      };
  }
}
