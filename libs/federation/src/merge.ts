import type { ObjectStorage } from '#libs/storage';
import type { ArtifactManifest } from '#libs/training';

import {
  openArtifactWeights,
  type ArtifactWeightsReader,
  type ModelJson,
} from './artifact-reader';
import { checkCompatible } from './compatibility';
import { badOption } from './errors';
import { writeArtifact } from './storage-io';
import { combine, type MergeStrategy } from './strategies';
import {
  headTask,
  sizeOf,
  TensorPool,
  type NamedTensor,
  type WeightSpec,
} from './tensors';
import type { LayerReader } from './weights-file';

/** One model version to merge. */
export interface MergeSource {
  /** Artifact zip in storage. */
  key: string;
  /** Rows the version was trained on; fedavg weighs by it. */
  sampleCount?: number;
  /** Explicit fedavg weight; overrides sampleCount. */
  weight?: number;
}

/** Options for {@link mergeArtifacts}. */
export interface MergeOptions {
  sources: MergeSource[];
  /**
   * `fedavg`: mean weighted by sampleCount (or weight); `uniform`: plain
   * mean; `median`: coordinate-wise median; `trimmed-mean`: coordinate-wise
   * mean after dropping trimRatio of the values at each end.
   */
  strategy: MergeStrategy;
  /** trimmed-mean only, in [0, 0.5). Default 0.1. */
  trimRatio?: number;
  /** Where the merged artifact zip is written. */
  outputKey: string;
}

export interface MergeResult {
  sha256: string;
  sizeBytes: number;
  manifest: ArtifactManifest;
  /** Per task, how many sources had it (and so were merged into its head). */
  tasks: Record<string, number>;
  /** Most bytes of tensor values held at once while merging. */
  peakTensorBytes: number;
}

const STRATEGIES: MergeStrategy[] = [
  'fedavg',
  'uniform',
  'median',
  'trimmed-mean',
];

/**
 * Merges model versions into one artifact, streamed weight by weight: the
 * backbone over all sources, each task head over the sources that have the
 * task (a head only one source has is carried over as is). The merged model
 * has every task of every source, in first-seen order. Numeric features keep
 * the standardisation statistics of the first source.
 */
export async function mergeArtifacts(
  storage: ObjectStorage,
  options: MergeOptions,
): Promise<MergeResult> {
  const weights = validateMergeOptions(options);
  const trimRatio = options.trimRatio ?? 0.1;
  // Input arrays go back to the pool once merged: a few per source in flight.
  const pool = new TensorPool(4 * options.sources.length);
  const opened = await Promise.allSettled(
    options.sources.map((s) => openArtifactWeights(storage, s.key, { pool })),
  );
  const readers = opened.flatMap((o) =>
    o.status === 'fulfilled' ? [o.value] : [],
  );
  try {
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) {
      throw failed.reason;
    }
    checkCompatible(readers);
    const plan = planMerge(readers);
    const cursors = readers.map((reader) => new TensorCursor(reader));
    let peakTensorBytes = 0;
    const values = async function* () {
      for (const spec of plan.specs) {
        const holders = plan.holders.get(spec.name)!;
        const inputs = await Promise.all(
          holders.map((k) => cursors[k].take(spec.name)),
        );
        const merged =
          inputs.length === 1
            ? inputs[0].values
            : combine(
                inputs.map((t) => t.values),
                {
                  strategy: options.strategy,
                  weights: holders.map((k) => weights[k]),
                  trimRatio,
                },
              );
        const held =
          inputs.reduce((n, t) => n + t.values.byteLength, 0) +
          (inputs.length === 1 ? 0 : merged.byteLength) +
          cursors.reduce((n, c) => n + c.bufferedBytes, 0);
        peakTensorBytes = Math.max(peakTensorBytes, held);
        yield merged;
        if (inputs.length > 1) {
          inputs.forEach((t) => pool.give(t.values));
        }
      }
    };
    const stored = await writeArtifact(storage, {
      key: options.outputKey,
      modelJson: plan.modelJson,
      manifest: plan.manifest,
      specs: plan.specs,
      values: values(),
    });

    return {
      ...stored,
      manifest: plan.manifest,
      tasks: plan.taskCounts,
      peakTensorBytes,
    };
  } finally {
    await Promise.all(readers.map((reader) => reader.close()));
  }
}

function validateMergeOptions(options: MergeOptions): number[] {
  if (!Array.isArray(options?.sources) || options.sources.length === 0) {
    throw badOption('sources', 'list at least one artifact to merge.');
  }
  if (!STRATEGIES.includes(options.strategy)) {
    throw badOption('strategy', `use one of ${STRATEGIES.join(', ')}.`);
  }
  const trim = options.trimRatio ?? 0.1;
  if (!(trim >= 0 && trim < 0.5)) {
    throw badOption('trimRatio', 'give a share in [0, 0.5).');
  }
  if (!options.outputKey) {
    throw badOption('outputKey', 'name the key of the merged artifact.');
  }
  if (options.sources.some((s) => s.key === options.outputKey)) {
    throw badOption('outputKey', 'must differ from every source key.');
  }

  return options.sources.map((source, i) => {
    const weight = source.weight ?? source.sampleCount;
    if (options.strategy !== 'fedavg') {
      return 1;
    }
    if (weight === undefined || !Number.isFinite(weight) || weight <= 0) {
      throw badOption(
        `sources[${i}].${source.weight === undefined ? 'sampleCount' : 'weight'}`,
        'fedavg needs a positive sampleCount (or weight) for every source.',
      );
    }

    return weight;
  });
}

interface MergePlan {
  specs: WeightSpec[];
  /** Per weight, the indexes of the sources that hold it. */
  holders: Map<string, number[]>;
  modelJson: ModelJson;
  manifest: ArtifactManifest;
  taskCounts: Record<string, number>;
}

/**
 * The merged model: the first source's topology and weights, plus the head
 * layers, outputs and weights of every task the first source lacks, taken
 * from the first source that has it.
 */
function planMerge(readers: readonly ArtifactWeightsReader[]): MergePlan {
  const [first] = readers;
  const modelJson = structuredClone(first.modelJson);
  const manifest: ArtifactManifest = {
    ...structuredClone(first.manifest),
    metrics: {},
  };
  const specs = [...first.specs];
  const taskCounts: Record<string, number> = {};
  readers.forEach((reader) => {
    for (const task of reader.manifest.tasks) {
      taskCounts[task.name] = (taskCounts[task.name] ?? 0) + 1;
      if (manifest.tasks.some((t) => t.name === task.name)) {
        continue;
      }
      const inHead = (name: string) => headTask(`${name}/`) === task.name;
      const topology = reader.modelJson.modelTopology.config;
      const config = modelJson.modelTopology.config;
      config.layers.push(
        ...structuredClone(topology.layers.filter((l) => inHead(l.name))),
      );
      config.output_layers.push(
        ...structuredClone(topology.output_layers.filter(([n]) => inHead(n))),
      );
      manifest.tasks.push(structuredClone(task));
      specs.push(...reader.specs.filter((s) => headTask(s.name) === task.name));
    }
  });
  const holders = new Map<string, number[]>();
  for (const spec of specs) {
    holders.set(
      spec.name,
      readers.flatMap((reader, k) =>
        reader.specs.some((s) => s.name === spec.name) ? [k] : [],
      ),
    );
  }

  return { specs, holders, modelJson, manifest, taskCounts };
}

/**
 * Hands out a reader's tensors by name while reading ahead up to twice the
 * reader's largest tensor, so that transfers go on while the current weight
 * is merged and written. Tensors the reader yields before the one asked for
 * (heads in another order) wait in a small buffer.
 */
class TensorCursor {
  private readonly buffered = new Map<string, NamedTensor>();
  private readonly ahead: {
    bytes: number;
    tensor: Promise<NamedTensor | undefined>;
  }[] = [];
  private requested = 0;
  private last: Promise<unknown> = Promise.resolve();
  private readonly budget: number;

  constructor(private readonly reader: LayerReader) {
    this.budget =
      2 * reader.specs.reduce((n, s) => Math.max(n, sizeOf(s.shape) * 4), 0);
  }

  /** Bytes of the tensors waiting and of those being read ahead. */
  get bufferedBytes(): number {
    let bytes = 0;
    this.buffered.forEach((t) => (bytes += t.values.byteLength));

    return this.ahead.reduce((n, a) => n + a.bytes, bytes);
  }

  async take(name: string): Promise<NamedTensor> {
    const held = this.buffered.get(name);
    if (held) {
      this.buffered.delete(name);

      return held;
    }
    for (;;) {
      this.readAhead();
      const next = this.ahead.shift();
      const tensor = await next?.tensor;
      if (!tensor) {
        throw new Error(`The weights ended before ${name}.`);
      }
      if (tensor.name === name) {
        this.readAhead();

        return tensor;
      }
      this.buffered.set(tensor.name, tensor);
    }
  }

  private readAhead(): void {
    const { specs } = this.reader;
    let bytes = this.ahead.reduce((n, a) => n + a.bytes, 0);
    while (this.requested < specs.length) {
      const size = sizeOf(specs[this.requested].shape) * 4;
      if (this.ahead.length > 0 && bytes + size > this.budget) {
        break;
      }
      // Reads of one stream run one after another.
      const tensor = this.last.then(() => this.reader.read());
      // A failed read ahead surfaces at its take, not as unhandled.
      tensor.catch(() => undefined);
      this.last = tensor;
      this.ahead.push({ bytes: size, tensor });
      this.requested++;
      bytes += size;
    }
  }
}
