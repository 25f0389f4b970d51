import * as tf from '@tensorflow/tfjs';

import type { BalancerState } from './balancing';
import { TrainingConfigError } from './errors';
import type { BestEpoch, TrainingHistory } from './history';

/** One tensor inside a checkpoint's data, as float32. */
export interface CheckpointTensor {
  /** `weight/<name>`, `slot/<i>` or `best/<name>`. */
  name: string;
  shape: number[];
  /** Offset in floats into the data. */
  offset: number;
}

/** Plain JSON describing a checkpoint; the bytes live in `data`. */
export interface CheckpointManifest {
  format: 'chorus.checkpoint';
  version: 1;
  /** The model spec JSON, to refuse resuming a different model. */
  spec: string;
  /** Epochs completed; a resumed run starts at this epoch. */
  epoch: number;
  /** Optimisation steps completed. */
  step: number;
  optimizerIterations: number;
  random: number[];
  balancer: BalancerState;
  history: TrainingHistory;
  best: BestEpoch | null;
  /** Epochs without improvement, for early stopping. */
  wait: number;
  tensors: CheckpointTensor[];
}

/**
 * A training state: a manifest plus one little-endian float32 buffer. The
 * caller decides where it is stored.
 */
export interface Checkpoint {
  manifest: CheckpointManifest;
  data: Uint8Array;
}

export type CheckpointState = Omit<
  CheckpointManifest,
  'format' | 'version' | 'tensors'
>;

/**
 * Gathers a training state into one buffer. A tensor's `values` may be a
 * function, called when its turn comes, so that only one tensor's copy is
 * held beside the buffer (a variable's `dataSync` copies it).
 */
export function writeCheckpoint(
  state: CheckpointState,
  tensors: {
    name: string;
    values: Float32Array | (() => Float32Array);
    shape: number[];
  }[],
): Checkpoint {
  const sizes = tensors.map((t) => t.shape.reduce((a, b) => a * b, 1));
  const floats = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  const entries: CheckpointTensor[] = [];
  let offset = 0;
  for (const [i, tensor] of tensors.entries()) {
    const values =
      typeof tensor.values === 'function' ? tensor.values() : tensor.values;
    if (values.length !== sizes[i]) {
      throw new Error(
        `checkpoint tensor ${tensor.name} has ${values.length} values; ` +
          `its shape [${tensor.shape.join(',')}] holds ${sizes[i]}.`,
      );
    }
    floats.set(values, offset);
    entries.push({ name: tensor.name, shape: tensor.shape, offset });
    offset += sizes[i];
  }

  return {
    manifest: {
      format: 'chorus.checkpoint',
      version: 1,
      ...structuredClone(state),
      tensors: entries,
    },
    data: new Uint8Array(floats.buffer),
  };
}

/** The float values of every tensor of a checkpoint, by name. */
export function readCheckpointTensors(
  checkpoint: Checkpoint,
): Map<string, { values: Float32Array; shape: number[] }> {
  const { manifest, data } = checkpoint;
  if (manifest?.format !== 'chorus.checkpoint' || manifest.version !== 1) {
    throw new TrainingConfigError(
      'resumeFrom',
      'this is not a Chorus checkpoint of format version 1.',
    );
  }
  // A float view needs 4-byte alignment; copy only when it is not there.
  const floats =
    data.byteOffset % 4 === 0
      ? new Float32Array(data.buffer, data.byteOffset, data.byteLength >> 2)
      : new Float32Array(Uint8Array.from(data).buffer);
  const tensors = new Map<string, { values: Float32Array; shape: number[] }>();
  for (const entry of manifest.tensors) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    if (entry.offset + size > floats.length) {
      throw new TrainingConfigError(
        'resumeFrom.data',
        `the checkpoint data is shorter than its manifest says (${entry.name}).`,
      );
    }
    tensors.set(entry.name, {
      values: floats.subarray(entry.offset, entry.offset + size),
      shape: entry.shape,
    });
  }

  return tensors;
}

/** Copies saved values into variables, checking names and shapes. */
export function assignTensors(
  targets: { name: string; variable: tf.Variable }[],
  saved: Map<string, { values: Float32Array; shape: number[] }>,
): void {
  for (const { name, variable } of targets) {
    const entry = saved.get(name);
    if (!entry || entry.shape.join('x') !== variable.shape.join('x')) {
      throw new TrainingConfigError(
        'resumeFrom',
        `the checkpoint does not fit this model: "${name}" is missing or ` +
          'has another shape.',
      );
    }
    tf.tidy(() =>
      variable.assign(tf.tensor(entry.values, entry.shape, variable.dtype)),
    );
  }
}

/** JSON with object keys sorted, so equal specs compare equal. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : v,
  );
}
