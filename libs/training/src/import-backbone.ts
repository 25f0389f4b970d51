import type { Artifact, ArtifactManifest } from './artifact';
import { TrainingConfigError } from './errors';
import { ACTIVATIONS } from './model';
import {
  checkWeightSpecs,
  decodeWeights,
  weightSpecsOf,
  weightsFromArtifact,
  type NamedWeights,
  type WeightSpec,
} from './named-weights';
import type { Activation, BackboneOptions } from './spec';

/** A backbone taken from elsewhere, ready to be a fine-tune's `base`. */
export interface ImportedBackbone {
  /** Derived MLP spec (widths, activation) or the artifact's backbone. */
  backbone: BackboneOptions;
  /** Renamed to Chorus names, backbone/* only. */
  weights: NamedWeights;
  /**
   * The flat input width the first dense layer expects (for an artifact
   * with a CNN backbone: the width of its tabular input).
   */
  inputWidth: number;
  /** When the import was a Chorus artifact. */
  manifest?: ArtifactManifest;
}

interface LayerJson {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  inbound_nodes?: unknown[];
}

/** A hidden layer as read: dense, then optional batch norm, activation, dropout. */
interface Block {
  index: number;
  name: string;
  units: number;
  useBias: boolean;
  activation: string;
  norm?: { name: string; center: boolean; scale: boolean };
  dropout: number;
}

const KINDS = ['Dense', 'Dropout', 'Activation', 'BatchNormalization'];

/** One backbone weight an import writes, made of uploaded tensors. */
export interface ImportedWeight {
  name: string;
  shape: number[];
  /** The uploaded tensor it copies (or, with `minus`, starts from). */
  from?: string;
  /** An uploaded dense bias folded in: subtracted from `from`. */
  minus?: string;
  /** Made of no uploaded tensor: every value is this. */
  fill?: number;
}

/** What importing a tfjs layers model makes, planned from its model.json. */
export interface BackboneImportPlan {
  backbone: BackboneOptions;
  inputWidth: number;
  /** The uploaded weights, in file order: float32, whole-number shapes. */
  specs: WeightSpec[];
  /** The backbone weights to write, in order. */
  weights: ImportedWeight[];
}

/**
 * Validates a tfjs layers model.json and plans how its hidden Dense layers
 * become an MLP backbone, without its weights. The model must be a chain of
 * Dense layers with Dropout, Activation and BatchNormalization layers
 * between them and one flat input. The last Dense layer (and whatever
 * follows it) is the output layer and is dropped, unless it is the only
 * Dense layer, which is then kept as the one hidden layer. Hidden layers
 * must share one activation out of the MLP backbone's (relu, elu, selu,
 * tanh, sigmoid, gelu), applied after the optional batch normalisation, and
 * use batch normalisation all or none. A dense bias before batch
 * normalisation is folded into its moving mean (exact in both modes); the
 * batch-norm epsilon used is Chorus' 0.001.
 */
export function planBackboneImport(modelJson: string): BackboneImportPlan {
  let json: { modelTopology?: Record<string, unknown> };
  try {
    json = JSON.parse(modelJson);
  } catch {
    throw new TrainingConfigError(
      'modelJson',
      'this is not JSON; upload the model.json of a TensorFlow.js layers ' +
        'model.',
    );
  }
  const topology = (json?.modelTopology?.model_config ??
    json?.modelTopology) as
    | { class_name?: string; config?: { layers?: LayerJson[] } | LayerJson[] }
    | undefined;
  const layers = Array.isArray(topology?.config)
    ? topology.config
    : topology?.config?.layers;
  if (
    !['Sequential', 'Model', 'Functional'].includes(
      topology?.class_name ?? '',
    ) ||
    !Array.isArray(layers)
  ) {
    throw new TrainingConfigError(
      'modelJson',
      'this is not a TensorFlow.js layers model: model.json needs a ' +
        'modelTopology of class Sequential or Model with a list of layers.',
    );
  }
  const specs = weightSpecsOf(json, 'modelJson');
  checkWeightSpecs(specs, 'modelJson');
  const blocks = readBlocks(layers, topology!.class_name !== 'Sequential');
  const hidden = blocks.length > 1 ? blocks.slice(0, -1) : blocks;
  const activation = hiddenActivation(hidden);
  const batchNorm = hidden[0].norm !== undefined;
  const mixed = hidden.find((b) => (b.norm !== undefined) !== batchNorm);
  if (mixed) {
    throw new TrainingConfigError(
      `modelJson.layers[${mixed.index}] (${mixed.name})`,
      'batch normalization must follow every hidden dense layer or none.',
    );
  }
  const find = (layer: string, weight: string) => {
    const suffix = `${layer}/${weight}`;
    const spec = specs.find(
      (s) => s.name === suffix || s.name.endsWith(`/${suffix}`),
    );
    if (!spec) {
      throw new TrainingConfigError(
        'modelJson.weightsManifest',
        `layer ${layer} has no weight "${weight}" in the weights manifest.`,
      );
    }

    return spec.name;
  };
  const weights: ImportedWeight[] = [];
  let inputWidth = 0;
  hidden.forEach((block, i) => {
    const prefix = `backbone/dense_${i}`;
    const units = [block.units];
    const kernelName = find(block.name, 'kernel');
    const kernel = specs.find((s) => s.name === kernelName)!.shape;
    const expected = i === 0 ? kernel[0] : hidden[i - 1].units;
    if (
      kernel.length !== 2 ||
      kernel[0] !== expected ||
      kernel[1] !== block.units
    ) {
      throw new TrainingConfigError(
        `modelJson.layers[${block.index}] (${block.name})`,
        `its kernel has shape [${kernel.join(',')}]; a chain needs ` +
          `[${expected},${block.units}].`,
      );
    }
    if (i === 0) {
      inputWidth = kernel[0];
    }
    weights.push({
      name: `${prefix}/kernel`,
      shape: [...kernel],
      from: kernelName,
    });
    const bias = block.useBias ? find(block.name, 'bias') : undefined;
    if (!block.norm) {
      weights.push({
        name: `${prefix}/bias`,
        shape: units,
        ...(bias ? { from: bias } : { fill: 0 }),
      });

      return;
    }
    const norm = block.norm;
    weights.push(
      {
        name: `${prefix}/bn/gamma`,
        shape: units,
        ...(norm.scale ? { from: find(norm.name, 'gamma') } : { fill: 1 }),
      },
      {
        name: `${prefix}/bn/beta`,
        shape: units,
        ...(norm.center ? { from: find(norm.name, 'beta') } : { fill: 0 }),
      },
      {
        name: `${prefix}/bn/moving_mean`,
        shape: units,
        from: find(norm.name, 'moving_mean'),
        ...(bias ? { minus: bias } : {}),
      },
      {
        name: `${prefix}/bn/moving_variance`,
        shape: units,
        from: find(norm.name, 'moving_variance'),
      },
    );
  });
  const dropout = Math.max(...hidden.map((b) => b.dropout));
  checkInputShape(layers, inputWidth);

  return {
    backbone: {
      kind: 'mlp',
      widths: hidden.map((b) => b.units),
      activation,
      ...(batchNorm && { batchNorm }),
      ...(dropout > 0 && { dropout }),
    },
    inputWidth,
    specs,
    weights,
  };
}

/** Makes one planned weight from the uploaded tensors it names. */
function makeWeight(
  weight: ImportedWeight,
  tensor: (name: string) => Float32Array,
): Float32Array {
  if (weight.fill !== undefined) {
    return new Float32Array(weight.shape.reduce((a, b) => a * b, 1)).fill(
      weight.fill,
    );
  }
  const values = tensor(weight.from!);
  if (!weight.minus) {
    return values;
  }
  const bias = tensor(weight.minus);

  return values.map((v, j) => v - bias[j]);
}

/**
 * Imports a tfjs layers model held in memory: model.json text and the bytes
 * of its weight files in manifest order (see {@link planBackboneImport}).
 */
export function importBackbone(
  modelJson: string,
  weights: Uint8Array,
): ImportedBackbone {
  const plan = planBackboneImport(modelJson);
  const named = decodeWeights(plan.specs, weights, {
    modelJson: 'modelJson',
    weights: 'weights',
  });

  return {
    backbone: plan.backbone,
    weights: new Map(
      plan.weights.map((w) => [
        w.name,
        {
          shape: w.shape,
          values: makeWeight(w, (name) => named.get(name)!.values),
        },
      ]),
    ),
    inputWidth: plan.inputWidth,
  };
}

/**
 * The plan's backbone weights, in order, made from the uploaded tensors as
 * they stream in (in `plan.specs` order). Each uploaded tensor must be
 * finite; it is held only until the last weight made of it is given, so
 * an upload in layer order passes through a tensor at a time.
 */
export async function* importWeights(
  plan: BackboneImportPlan,
  uploaded: AsyncIterable<{ name: string; values: Float32Array }>,
  field = 'weights',
): AsyncGenerator<{ name: string; shape: number[]; values: Float32Array }> {
  const uses = new Map<string, number>();
  for (const w of plan.weights) {
    for (const name of [w.from, w.minus]) {
      if (name) {
        uses.set(name, (uses.get(name) ?? 0) + 1);
      }
    }
  }
  const held = new Map<string, Float32Array>();
  let next = 0;
  const ready = (w: ImportedWeight) =>
    [w.from, w.minus].every((name) => !name || held.has(name));
  function* made() {
    while (next < plan.weights.length && ready(plan.weights[next])) {
      const weight = plan.weights[next++];
      yield {
        name: weight.name,
        shape: weight.shape,
        values: makeWeight(weight, (name) => held.get(name)!),
      };
      for (const name of [weight.from, weight.minus]) {
        if (name && (uses.set(name, uses.get(name)! - 1), !uses.get(name))) {
          held.delete(name);
        }
      }
    }
  }
  yield* made();
  for await (const tensor of uploaded) {
    if (!tensor.values.every(Number.isFinite)) {
      throw new TrainingConfigError(
        field,
        `weight "${tensor.name}" holds NaN or infinite values.`,
      );
    }
    if (uses.get(tensor.name) && !held.has(tensor.name)) {
      held.set(tensor.name, tensor.values);
    }
    yield* made();
  }
  if (next < plan.weights.length) {
    throw new TrainingConfigError(
      field,
      `the weights ended before ${plan.weights[next].from}.`,
    );
  }
}

/**
 * The backbone of a Chorus artifact made elsewhere, from its manifest and
 * weight specs (checked: float32 with whole-number shapes).
 */
export function artifactBackbone(
  manifest: ArtifactManifest | undefined,
  specs: WeightSpec[],
): Omit<ImportedBackbone, 'weights'> & { manifest: ArtifactManifest } {
  if (manifest?.format !== 'chorus.artifact' || manifest.version !== 1) {
    throw new TrainingConfigError(
      'artifact.manifest',
      'this is not a Chorus artifact manifest (format "chorus.artifact", ' +
        'version 1).',
    );
  }
  checkWeightSpecs(specs, 'artifact.modelJson');
  const first = specs.find((s) => s.name === 'backbone/dense_0/kernel');

  return {
    backbone: structuredClone(manifest.backbone),
    inputWidth:
      manifest.backbone.kind === 'mlp' && first
        ? first.shape[0]
        : manifest.layout.tabularWidth,
    manifest: structuredClone(manifest),
  };
}

/** The backbone of a Chorus artifact made elsewhere, held in memory. */
export function importArtifactBackbone(artifact: Artifact): ImportedBackbone {
  const all = weightsFromArtifact(artifact);
  const specs = [...all].map(([name, w]) => ({ name, shape: w.shape }));

  return {
    ...artifactBackbone(artifact.manifest, specs),
    weights: new Map([...all].filter(([name]) => name.startsWith('backbone/'))),
  };
}

function readBlocks(layers: LayerJson[], functional: boolean): Block[] {
  const blocks: Block[] = [];
  let previous: string | undefined;
  layers.forEach((layer, index) => {
    const name = String(layer?.config?.name ?? layer?.name ?? index);
    const where = `modelJson.layers[${index}] (${name})`;
    if (functional) {
      checkChain(layer, previous, where);
    }
    previous = name;
    if (layer?.class_name === 'InputLayer' && index === 0) {
      return;
    }
    if (!KINDS.includes(layer?.class_name)) {
      throw new TrainingConfigError(
        where,
        'only dense, dropout, activation and batch normalization layers ' +
          'can be imported.',
      );
    }
    const config = layer.config;
    const block = blocks.at(-1);
    if (layer.class_name === 'Dense') {
      blocks.push({
        index,
        name,
        units: Number(config.units),
        useBias: config.use_bias !== false,
        activation: String(config.activation ?? 'linear'),
        dropout: 0,
      });

      return;
    }
    if (!block) {
      throw new TrainingConfigError(
        where,
        'the first layer after the input must be a dense layer.',
      );
    }
    if (layer.class_name === 'Dropout') {
      block.dropout = Math.max(block.dropout, Number(config.rate ?? 0));
    } else if (layer.class_name === 'Activation') {
      if (block.activation !== 'linear') {
        throw new TrainingConfigError(
          where,
          `it follows the activation "${block.activation}"; a layer can ` +
            'have one activation.',
        );
      }
      block.activation = String(config.activation);
    } else if (block.norm || block.activation !== 'linear') {
      throw new TrainingConfigError(
        where,
        'batch normalization must come right after a dense layer (before ' +
          'its activation).',
      );
    } else {
      block.norm = {
        name,
        center: config.center !== false,
        scale: config.scale !== false,
      };
    }
  });
  if (blocks.length === 0) {
    throw new TrainingConfigError(
      'modelJson.layers',
      'the model has no dense layer to import.',
    );
  }

  return blocks;
}

/** A functional model must be a chain: each layer reads the one before. */
function checkChain(
  layer: LayerJson,
  previous: string | undefined,
  where: string,
): void {
  const nodes = layer?.inbound_nodes ?? [];
  const inbound = nodes.flatMap((node) =>
    Array.isArray(node) ? node : [node],
  ) as unknown[];
  const names = inbound.map((entry) =>
    Array.isArray(entry) ? entry[0] : undefined,
  );
  const ok =
    previous === undefined
      ? names.length === 0
      : names.length === 1 && names[0] === previous;
  if (!ok) {
    throw new TrainingConfigError(
      where,
      'the model must be one chain with one input: each layer reads only ' +
        `the layer before it${previous ? ` (${previous})` : ''}.`,
    );
  }
}

function hiddenActivation(hidden: Block[]): Activation {
  const activation = hidden[0].activation;
  for (const block of hidden) {
    if (!ACTIVATIONS.includes(block.activation as Activation)) {
      throw new TrainingConfigError(
        `modelJson.layers[${block.index}] (${block.name})`,
        `its activation "${block.activation}" cannot be a backbone's; ` +
          `use one of ${ACTIVATIONS.join(', ')}.`,
      );
    }
    if (block.activation !== activation) {
      throw new TrainingConfigError(
        `modelJson.layers[${block.index}] (${block.name})`,
        `hidden layers must share one activation; this one uses ` +
          `"${block.activation}", the first "${activation}".`,
      );
    }
  }

  return activation as Activation;
}

function checkInputShape(layers: LayerJson[], width: number): void {
  const config = layers[0]?.config ?? {};
  const shape = (config.batch_input_shape ?? config.batchInputShape) as
    (number | null)[] | undefined;
  if (shape && (shape.length !== 2 || shape[1] !== width)) {
    throw new TrainingConfigError(
      'modelJson.layers[0]',
      `the input has shape [${shape.join(',')}]; only one flat input of ` +
        `${width} values can be imported.`,
    );
  }
}
