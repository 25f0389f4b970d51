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
import { Combiner, type MergeStrategy } from './strategies';
import { planRestandardisation, type WeightRewrite } from './standardisation';
import { headTask, sizeOf, type WeightSpec } from './tensors';
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
 * has every task of every source, in first-seen order. Sources trained with
 * other standardisation statistics are first re-expressed in statistics
 * pooled over all sources (see planRestandardisation).
 */
export async function mergeArtifacts(
  storage: ObjectStorage,
  options: MergeOptions,
): Promise<MergeResult> {
  const weights = validateMergeOptions(options);
  const trimRatio = options.trimRatio ?? 0.1;
  const opened = await Promise.allSettled(
    options.sources.map((s) => openArtifactWeights(storage, s.key)),
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
    const standardisation = planRestandardisation(
      readers,
      poolingWeights(options.sources),
    );
    plan.manifest.features = standardisation.features;
    for (const task of plan.manifest.tasks) {
      const target = standardisation.targets.get(task.name);
      if (target) {
        task.targetMean = target.mean;
        task.targetStd = target.std;
      }
    }
    const combiner = new Combiner({
      sources: readers.length,
      blockValues: BLOCK_VALUES,
    });
    const cursors = readers.map(
      (reader, k) =>
        new BlockCursor(
          reader,
          combiner.blocks[k],
          standardisation.rewrites[k],
        ),
    );
    let peakTensorBytes = 0;
    const values = async function* () {
      for (const spec of plan.specs) {
        const holders = plan.holders.get(spec.name)!;
        const combined = {
          strategy: options.strategy,
          weights: holders.map((k) => weights[k]),
          trimRatio,
        };
        const size = sizeOf(spec.shape);
        for (let offset = 0; offset < size; offset += BLOCK_VALUES) {
          const count = Math.min(BLOCK_VALUES, size - offset);
          await Promise.all(
            holders.map((k) => cursors[k].fill(spec.name, offset, count)),
          );
          // A copy: the combiner's memory is overwritten by the next block.
          const merged =
            holders.length === 1
              ? combiner.blocks[holders[0]].slice(0, count)
              : combiner.combine(holders, count, combined).slice();
          peakTensorBytes = Math.max(
            peakTensorBytes,
            merged.byteLength +
              cursors.reduce((n, cursor) => n + cursor.heldBytes, 0),
          );
          yield merged;
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

/**
 * How much each source counts in pooled statistics: its weight or sample
 * count when every source has one, else the same for all.
 */
function poolingWeights(sources: readonly MergeSource[]): number[] {
  const weights = sources.map((s) => s.weight ?? s.sampleCount ?? 0);

  return weights.every((w) => Number.isFinite(w) && w > 0)
    ? weights
    : weights.map(() => 1);
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
 * Values merged at once: 256 KiB of each source, so that the blocks of
 * eight sources stay in cache, no memory is touched anew per tensor, and a
 * 20 MiB model takes only some 80 rounds of awaits per source. Reading
 * whole tensors into fresh arrays instead cost more CPU than the transfer
 * (page faults on every new multi-megabyte array).
 */
const BLOCK_VALUES = 64 * 1024;

/**
 * Fills a source's block of the combiner with the values of its weights,
 * taken by name. Tensors the reader yields before the one asked for (heads
 * in another order) are read whole and wait in a small buffer.
 */
class BlockCursor {
  private readonly early = new Map<string, Float32Array>();
  /** The tensor the reader is at, and how many of its values are read. */
  private index = 0;
  private offset = 0;

  constructor(
    private readonly reader: LayerReader,
    private readonly block: Float32Array,
    /** Applied to every value read, in the reader's order. */
    private readonly rewrite?: WeightRewrite,
  ) {}

  /** Bytes of the block and of the tensors waiting. */
  get heldBytes(): number {
    let bytes = this.block.byteLength;
    this.early.forEach((values) => (bytes += values.byteLength));

    return bytes;
  }

  /**
   * Puts values [offset, offset + count) of the weight `name` at the start
   * of the block; a weight's blocks are filled in order.
   */
  async fill(name: string, offset: number, count: number): Promise<void> {
    const early = this.early.get(name);
    if (early) {
      this.block.set(early.subarray(offset, offset + count));
      if (offset + count >= early.length) {
        this.early.delete(name);
      }

      return;
    }
    const { specs } = this.reader;
    while (specs[this.index]?.name !== name) {
      if (this.index >= specs.length) {
        throw new Error(`The weights ended before ${name}.`);
      }
      const tensor = await this.reader.read();
      this.rewrite?.(tensor!.name, 0, tensor!.values);
      this.early.set(tensor!.name, tensor!.values);
      this.index++;
    }
    if (this.offset !== offset) {
      throw new Error(`Blocks of ${name} were taken out of order.`);
    }
    const part = await this.reader.readPart(this.block.subarray(0, count));
    if (part?.values.length !== count) {
      throw new Error(`The weights ended inside ${name}.`);
    }
    this.rewrite?.(name, offset, part.values);
    this.offset += count;
    if (this.offset === sizeOf(specs[this.index].shape)) {
      this.index++;
      this.offset = 0;
    }
  }
}
