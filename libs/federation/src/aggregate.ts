import type { ObjectStorage } from '#libs/storage';
import { Random } from '#libs/training';

import { openArtifactWeights } from './artifact-reader';
import { badOption, UpdateRejectedError } from './errors';
import {
  failBoth,
  openWeightsFile,
  storeWriter,
  writeArtifact,
} from './storage-io';
import { headTask } from './tensors';
import { WeightsFileWriter, type LayerReader } from './weights-file';

export type AggregationStrategy = 'fedavg' | 'fedprox' | 'fedadam' | 'fedyogi';

/** Options for {@link aggregateRound}. */
export interface AggregateRoundOptions {
  /** The artifact zip of the round's global version. */
  global: { key: string };
  /** The participants' weights files and the rows each trained on. */
  updates: { key: string; sampleCount: number }[];
  /**
   * `fedavg` and `fedprox` (whose proximal term acts during local training)
   * add the sample-weighted mean delta to the global weights; `fedadam` and
   * `fedyogi` treat that mean delta as a pseudo-gradient of a server Adam or
   * Yogi step (Reddi et al., Adaptive Federated Optimization, 2021).
   */
  strategy: AggregationStrategy;
  /** `backbone`: task heads keep the global values. Default `all`. */
  scope?: 'all' | 'backbone';
  /** Server step size of fedadam/fedyogi. Default 0.01. */
  serverLearningRate?: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.99. */
  beta2?: number;
  /** Adaptivity: added to sqrt(v); also the initial v is tau². Default 1e-3. */
  tau?: number;
  /** fedadam/fedyogi: the moments stored by the previous round; null on round 1. */
  serverState?: { key: string } | null;
  /** Scale each update's delta down to at most this L2 norm. */
  clipNorm?: number;
  /**
   * Gaussian noise of std noiseMultiplier * clipNorm / updates is added to
   * the mean delta (needs clipNorm).
   */
  noiseMultiplier?: number;
  /** Seed of the noise. Default 1. */
  seed?: number;
  /** Where the new global artifact zip is written. */
  outputKey: string;
  /** fedadam/fedyogi: where the new moments are written. */
  stateOutputKey?: string;
}

export interface AggregateRoundResult {
  sha256: string;
  sizeBytes: number;
  /** The moments for the next round (fedadam/fedyogi). */
  stateKey?: string;
  /** Per update, the L2 norm of its delta (in scope) before clipping. */
  updateNorms: number[];
  noiseStd: number;
}

interface Settings {
  adaptive: boolean;
  yogi: boolean;
  lr: number;
  beta1: number;
  beta2: number;
  tau: number;
  noiseStd: number;
  weights: number[];
}

/**
 * Aggregates one federated round into a new global artifact with the same
 * topology and manifest (metrics cleared), streaming weight by weight: the
 * global, every update and the server state are read in lockstep. With
 * clipNorm the update norms are measured in a first pass.
 */
export async function aggregateRound(
  storage: ObjectStorage,
  options: AggregateRoundOptions,
): Promise<AggregateRoundResult> {
  const settings = validateRound(options);
  const inScope = (name: string) =>
    (options.scope ?? 'all') === 'all' || !headTask(name);
  const norms = options.clipNorm
    ? await measureNorms(storage, options, inScope)
    : undefined;
  const scales = norms?.map((n) =>
    n > options.clipNorm! ? options.clipNorm! / n : 1,
  );
  const global = await openArtifactWeights(storage, options.global.key);
  const readers: LayerReader[] = [global];
  try {
    const updates: LayerReader[] = [];
    for (const update of options.updates) {
      updates.push(
        await openWeightsFile(storage, update.key, { expected: global.specs }),
      );
      readers.push(updates.at(-1)!);
    }
    const stateSpecs = global.specs
      .filter((s) => inScope(s.name))
      .flatMap((s) => [
        { name: `m/${s.name}`, shape: s.shape },
        { name: `v/${s.name}`, shape: s.shape },
      ]);
    const state =
      settings.adaptive && options.serverState
        ? await openWeightsFile(storage, options.serverState.key, {
            expected: stateSpecs,
          })
        : undefined;
    if (state) {
      readers.push(state);
    }
    const stateWriter = settings.adaptive
      ? new WeightsFileWriter(stateSpecs)
      : undefined;
    const stateUpload = stateWriter
      ? storeWriter(storage, options.stateOutputKey!, stateWriter)
      : undefined;
    const squares = options.updates.map(() => 0);
    const random = new Random(options.seed ?? 1);
    const values = async function* () {
      for (let t = await global.read(); t; t = await global.read()) {
        const us = await Promise.all(updates.map((u) => u.read()));
        if (!inScope(t.name)) {
          yield t.values;
          continue;
        }
        const g = t.values;
        const delta = new Float32Array(g.length);
        us.forEach((u, k) => {
          const w = settings.weights[k] * (scales?.[k] ?? 1);
          const values = u!.values;
          let sum = 0;
          for (let i = 0; i < g.length; i++) {
            const d = values[i] - g[i];
            sum += d * d;
            delta[i] += w * d;
          }
          checkFinite(sum, k, t.name);
          squares[k] += sum;
        });
        if (settings.noiseStd > 0) {
          for (let i = 0; i < delta.length; i++) {
            delta[i] += settings.noiseStd * random.normal();
          }
        }
        if (!settings.adaptive) {
          for (let i = 0; i < g.length; i++) {
            delta[i] += g[i];
          }
          yield delta;
          continue;
        }
        const m = (await state?.read())?.values ?? new Float32Array(g.length);
        const v =
          (await state?.read())?.values ??
          new Float32Array(g.length).fill(settings.tau ** 2);
        const next = serverStep(g, delta, m, v, settings);
        await stateWriter!.write(m);
        await stateWriter!.write(v);
        yield next;
      }
    };
    let stored;
    try {
      stored = await writeArtifact(storage, {
        key: options.outputKey,
        modelJson: global.modelJson,
        manifest: { ...global.manifest, metrics: {} },
        specs: global.specs,
        values: values(),
      });
      stateWriter?.end();
    } catch (error) {
      throw stateWriter
        ? await failBoth(stateWriter, stateUpload!, error)
        : error;
    }
    await stateUpload;

    return {
      ...stored,
      stateKey: stateWriter ? options.stateOutputKey : undefined,
      updateNorms: norms ?? squares.map(Math.sqrt),
      noiseStd: settings.noiseStd,
    };
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}

/**
 * One server Adam or Yogi step on the mean delta; updates m and v in place
 * and returns the new weights.
 */
function serverStep(
  g: Float32Array,
  delta: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: Settings,
): Float32Array {
  const next = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const d = delta[i];
    const d2 = d * d;
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * d;
    v[i] = s.yogi
      ? v[i] - (1 - s.beta2) * d2 * Math.sign(v[i] - d2)
      : s.beta2 * v[i] + (1 - s.beta2) * d2;
    next[i] = g[i] + (s.lr * m[i]) / (Math.sqrt(v[i]) + s.tau);
  }

  return next;
}

/** First pass for clipping: each update's delta norm over the scope. */
async function measureNorms(
  storage: ObjectStorage,
  options: AggregateRoundOptions,
  inScope: (name: string) => boolean,
): Promise<number[]> {
  const global = await openArtifactWeights(storage, options.global.key);
  const readers: LayerReader[] = [global];
  try {
    for (const update of options.updates) {
      readers.push(
        await openWeightsFile(storage, update.key, { expected: global.specs }),
      );
    }
    const squares = options.updates.map(() => 0);
    for (let t = await global.read(); t; t = await global.read()) {
      const us = await Promise.all(readers.slice(1).map((r) => r.read()));
      if (!inScope(t.name)) {
        continue;
      }
      us.forEach((u, k) => {
        let sum = 0;
        for (let i = 0; i < t.values.length; i++) {
          const d = u!.values[i] - t.values[i];
          sum += d * d;
        }
        checkFinite(sum, k, t.name);
        squares[k] += sum;
      });
    }

    return squares.map(Math.sqrt);
  } finally {
    await Promise.all(readers.map((r) => r.close()));
  }
}

/** A NaN or infinity anywhere in a tensor makes its squared delta sum so. */
function checkFinite(squares: number, update: number, name: string): void {
  if (!Number.isFinite(squares)) {
    throw new UpdateRejectedError(
      `updates[${update}].weights.${name}`,
      'holds non-finite values (or a delta too large for float32); ' +
        'validate updates when they are received.',
    );
  }
}

function validateRound(options: AggregateRoundOptions): Settings {
  const strategies = ['fedavg', 'fedprox', 'fedadam', 'fedyogi'];
  if (!strategies.includes(options?.strategy)) {
    throw badOption('strategy', `use one of ${strategies.join(', ')}.`);
  }
  if (!Array.isArray(options.updates) || options.updates.length === 0) {
    throw badOption('updates', 'a round needs at least one update.');
  }
  options.updates.forEach((u, i) => {
    if (!(Number.isFinite(u.sampleCount) && u.sampleCount > 0)) {
      throw badOption(
        `updates[${i}].sampleCount`,
        'give the positive number of rows the update trained on.',
      );
    }
  });
  if (options.scope && !['all', 'backbone'].includes(options.scope)) {
    throw badOption('scope', 'use all or backbone.');
  }
  if (options.clipNorm !== undefined && !(options.clipNorm > 0)) {
    throw badOption('clipNorm', 'give a positive norm.');
  }
  const noise = options.noiseMultiplier ?? 0;
  if (!(noise >= 0)) {
    throw badOption('noiseMultiplier', 'give a number of at least 0.');
  }
  if (noise > 0 && options.clipNorm === undefined) {
    throw badOption(
      'noiseMultiplier',
      'noise is scaled by clipNorm; set clipNorm as well.',
    );
  }
  const inputs = [
    options.global?.key,
    options.serverState?.key,
    ...options.updates.map((u) => u.key),
  ];
  for (const field of ['outputKey', 'stateOutputKey'] as const) {
    if (options[field] !== undefined && inputs.includes(options[field])) {
      throw badOption(field, 'must differ from the keys the round reads.');
    }
  }
  const adaptive =
    options.strategy === 'fedadam' || options.strategy === 'fedyogi';
  if (adaptive && !options.stateOutputKey) {
    throw badOption(
      'stateOutputKey',
      `${options.strategy} keeps moments between rounds; name where to store them.`,
    );
  }
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.99;
  const tau = options.tau ?? 1e-3;
  const lr = options.serverLearningRate ?? 0.01;
  for (const [field, value] of Object.entries({ beta1, beta2 })) {
    if (!(value >= 0 && value < 1)) {
      throw badOption(field, 'give a number in [0, 1).');
    }
  }
  if (!(tau > 0) || !(lr > 0)) {
    throw badOption(
      tau > 0 ? 'serverLearningRate' : 'tau',
      'give a positive number.',
    );
  }
  const total = options.updates.reduce((n, u) => n + u.sampleCount, 0);

  return {
    adaptive,
    yogi: options.strategy === 'fedyogi',
    lr,
    beta1,
    beta2,
    tau,
    noiseStd:
      options.clipNorm === undefined
        ? 0
        : (noise * options.clipNorm) / options.updates.length,
    weights: options.updates.map((u) => u.sampleCount / total),
  };
}
