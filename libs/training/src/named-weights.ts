import type { Artifact } from './artifact';
import { TrainingConfigError } from './errors';
import type { TrainedModel } from './train';

/** Weights by originalName (e.g. 'backbone/dense_0/kernel'), float32. */
export type NamedWeights = Map<
  string,
  { shape: number[]; values: Float32Array }
>;

/** One entry of a tfjs weights manifest, as model.json holds it. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype?: string;
  quantization?: unknown;
}

/** The weight specs of a tfjs layers model.json, all groups in order. */
export function weightSpecsOf(json: unknown, field: string): WeightSpec[] {
  const manifest = (json as { weightsManifest?: unknown })?.weightsManifest;
  if (
    !Array.isArray(manifest) ||
    manifest.some((group) => !Array.isArray(group?.weights))
  ) {
    throw new TrainingConfigError(
      field,
      'this is not a TensorFlow.js layers model.json: it needs a ' +
        'weightsManifest list of groups with weights.',
    );
  }

  return manifest.flatMap((group: { weights: WeightSpec[] }) => group.weights);
}

/**
 * Checks the weight specs of an upload: a name and whole-number shape each,
 * unquantised float32 only (`field` names the model.json they are in).
 */
export function checkWeightSpecs(specs: WeightSpec[], field: string): void {
  specs.forEach((spec, i) => {
    const where = `${field}.weightsManifest weights[${i}] (${spec?.name})`;
    if (
      typeof spec?.name !== 'string' ||
      !Array.isArray(spec.shape) ||
      spec.shape.some((d) => !Number.isInteger(d) || d < 0)
    ) {
      throw new TrainingConfigError(
        where,
        'each weight needs a name and a shape of whole numbers.',
      );
    }
    if ((spec.dtype ?? 'float32') !== 'float32' || spec.quantization) {
      throw new TrainingConfigError(
        where,
        `the weight is ${spec.quantization ? 'quantised ' : ''}` +
          `${spec.dtype ?? 'float32'}; only unquantised float32 weights ` +
          'can be imported.',
      );
    }
  });
}

/** The bytes that float32 weights of these specs take back to back. */
export const bytesOfSpecs = (specs: readonly WeightSpec[]): number =>
  4 * specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

/**
 * Reads float32 weights laid back to back in `bytes` in the order of
 * `specs`; refuses other dtypes, quantised weights, a byte count other than
 * the specs declare and values that are NaN or infinite.
 */
export function decodeWeights(
  specs: WeightSpec[],
  bytes: Uint8Array,
  fields: { modelJson: string; weights: string },
): NamedWeights {
  checkWeightSpecs(specs, fields.modelJson);
  const sizes = specs.map((spec) => spec.shape.reduce((a, b) => a * b, 1));
  const declared = bytesOfSpecs(specs);
  if (bytes.byteLength !== declared) {
    throw new TrainingConfigError(
      fields.weights,
      `model.json declares ${declared} bytes, got ${bytes.byteLength}.`,
    );
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const floats = new Float32Array(copy.buffer);
  const weights: NamedWeights = new Map();
  let offset = 0;
  specs.forEach((spec, i) => {
    const values = floats.subarray(offset, offset + sizes[i]);
    offset += sizes[i];
    if (!values.every(Number.isFinite)) {
      throw new TrainingConfigError(
        fields.weights,
        `weight "${spec.name}" holds NaN or infinite values.`,
      );
    }
    weights.set(spec.name, { shape: [...spec.shape], values });
  });

  return weights;
}

/** Reads the named weights of an artifact (its weights.bin per model.json's weight specs). */
export function weightsFromArtifact(artifact: Artifact): NamedWeights {
  let json: unknown;
  try {
    json = JSON.parse(artifact?.modelJson);
  } catch {
    throw new TrainingConfigError(
      'artifact.modelJson',
      'the artifact model.json is not valid JSON.',
    );
  }

  return decodeWeights(
    weightSpecsOf(json, 'artifact.modelJson'),
    artifact.weights,
    { modelJson: 'artifact.modelJson', weights: 'artifact.weights' },
  );
}

/**
 * The weights namedWeightsOf gives, to be written one at a time: their
 * specs, and each one's values copied only when the writer asks for it.
 */
export function weightStreamOf(model: TrainedModel): {
  specs: WeightSpec[];
  tensors(): AsyncIterable<{
    name: string;
    shape: number[];
    values: Float32Array;
  }>;
} {
  const weights = model.training.weights;
  const specs = weights.map((w) => ({
    name: w.originalName,
    shape: [...w.shape] as number[],
  }));

  return {
    specs,
    async *tensors() {
      for (const [i, weight] of weights.entries()) {
        // read() is the variable itself: copied, never disposed.
        const values = (await weight.read().data()) as Float32Array;
        yield { ...specs[i], values };
      }
    },
  };
}

/** Current weights of a trained model (training view), by originalName. */
export function namedWeightsOf(model: TrainedModel): NamedWeights {
  return new Map(
    model.training.weights.map((w) => [
      w.originalName,
      {
        shape: [...w.shape] as number[],
        values: (w.read().dataSync() as Float32Array).slice(),
      },
    ]),
  );
}
