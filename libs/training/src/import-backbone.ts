import type { Artifact, ArtifactManifest } from './artifact';
import { TrainingConfigError } from './errors';
import { ACTIVATIONS } from './model';
import {
  decodeWeights,
  weightSpecsOf,
  weightsFromArtifact,
  type NamedWeights,
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

/**
 * Validates a tfjs layers model (model.json text plus the bytes of its
 * weight files in manifest order) and converts its hidden Dense layers into
 * an MLP backbone. The model must be a chain of Dense layers with Dropout,
 * Activation and BatchNormalization layers between them and one flat input.
 * The last Dense layer (and whatever follows it) is the output layer and is
 * dropped, unless it is the only Dense layer, which is then kept as the one
 * hidden layer. Hidden layers must share one activation out of the MLP
 * backbone's (relu, elu, selu, tanh, sigmoid, gelu), applied after the
 * optional batch normalisation, and use batch normalisation all or none.
 * A dense bias before batch normalisation is folded into its moving mean
 * (exact in both modes); the batch-norm epsilon used is Chorus' 0.001.
 */
export function importBackbone(
  modelJson: string,
  weights: Uint8Array,
): ImportedBackbone {
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
  const named = decodeWeights(weightSpecsOf(json, 'modelJson'), weights, {
    modelJson: 'modelJson',
    weights: 'weights',
  });
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
    for (const [name, value] of named) {
      if (name === suffix || name.endsWith(`/${suffix}`)) {
        return value;
      }
    }
    throw new TrainingConfigError(
      'modelJson.weightsManifest',
      `layer ${layer} has no weight "${weight}" in the weights manifest.`,
    );
  };
  const result: NamedWeights = new Map();
  let inputWidth = 0;
  hidden.forEach((block, i) => {
    const prefix = `backbone/dense_${i}`;
    const kernel = find(block.name, 'kernel');
    const expected = i === 0 ? kernel.shape[0] : hidden[i - 1].units;
    if (
      kernel.shape.length !== 2 ||
      kernel.shape[0] !== expected ||
      kernel.shape[1] !== block.units
    ) {
      throw new TrainingConfigError(
        `modelJson.layers[${block.index}] (${block.name})`,
        `its kernel has shape [${kernel.shape.join(',')}]; a chain needs ` +
          `[${expected},${block.units}].`,
      );
    }
    if (i === 0) {
      inputWidth = kernel.shape[0];
    }
    result.set(`${prefix}/kernel`, kernel);
    const bias = block.useBias
      ? find(block.name, 'bias').values
      : new Float32Array(block.units);
    if (!block.norm) {
      result.set(`${prefix}/bias`, { shape: [block.units], values: bias });

      return;
    }
    const norm = block.norm;
    const vector = (weight: string, fill: number) => ({
      shape: [block.units],
      values:
        fill < 0
          ? find(norm.name, weight).values
          : new Float32Array(block.units).fill(fill),
    });
    const mean = find(norm.name, 'moving_mean').values.map(
      (m, j) => m - bias[j],
    );
    result.set(`${prefix}/bn/gamma`, vector('gamma', norm.scale ? -1 : 1));
    result.set(`${prefix}/bn/beta`, vector('beta', norm.center ? -1 : 0));
    result.set(`${prefix}/bn/moving_mean`, {
      shape: [block.units],
      values: mean,
    });
    result.set(`${prefix}/bn/moving_variance`, vector('moving_variance', -1));
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
    weights: result,
    inputWidth,
  };
}

/** The backbone of a Chorus artifact made elsewhere. */
export function importArtifactBackbone(artifact: Artifact): ImportedBackbone {
  const manifest = artifact?.manifest;
  if (manifest?.format !== 'chorus.artifact' || manifest.version !== 1) {
    throw new TrainingConfigError(
      'artifact.manifest',
      'this is not a Chorus artifact manifest (format "chorus.artifact", ' +
        'version 1).',
    );
  }
  const all = weightsFromArtifact(artifact);
  const weights: NamedWeights = new Map(
    [...all].filter(([name]) => name.startsWith('backbone/')),
  );
  const first = weights.get('backbone/dense_0/kernel');

  return {
    backbone: structuredClone(manifest.backbone),
    weights,
    inputWidth:
      manifest.backbone.kind === 'mlp' && first
        ? first.shape[0]
        : manifest.layout.tabularWidth,
    manifest: structuredClone(manifest),
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
