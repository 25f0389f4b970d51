import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ObjectStorage } from '#libs/storage';
import {
  Predictor,
  unzipArtifact,
  type Artifact,
  type ArtifactManifest,
} from '#libs/training';

import { IncompatibleModelsError } from './errors';
import { mergeArtifacts } from './merge';
import {
  BUYS,
  PRICE,
  putArtifact,
  readAll,
  specsOf,
  startStorage,
  tensorsOf,
  tinyArtifact,
  withWeights,
  type TinyModelOptions,
} from './testing/fixtures';

type Numeric = Extract<
  ArtifactManifest['features'][number],
  { kind: 'numeric' }
>;

/**
 * x1 (row 0), x2 with a missing indicator (rows 1 and 2), colour one-hot
 * (rows 3 to 6), x3 (row 7); a binary and a regression task.
 */
const MODEL: TinyModelOptions = {
  features: ['x1', { column: 'x2', missingIndicator: true }, 'colour', 'x3'],
  tasks: [BUYS, PRICE],
};

/** A numeric feature's statistics in a source: new = old · scale + plus. */
interface Restated {
  feature: number;
  row: number;
  indicatorRow?: number;
  meanPlus: number;
  stdTimes: number;
}

/**
 * The same function as `artifact`, written for other standardisation
 * statistics: x2's mean + 5 and std × 2, x3's mean - 1 and std × 0.5, and
 * price's target mean + 3 and std × 2. The shift of the inputs goes to
 * dense_0's bias, or to the moving mean of its batch normalisation.
 */
function restated(artifact: Artifact, x3Row = 7, kernelRows = 8): Artifact {
  const manifest = structuredClone(artifact.manifest);
  const changes: Restated[] = [
    { feature: 1, row: 1, indicatorRow: 2, meanPlus: 5, stdTimes: 2 },
    { feature: 3, row: x3Row, meanPlus: -1, stdTimes: 0.5 },
  ];
  const tensors = tensorsOf(artifact);
  const kernel = tensors.get('backbone/dense_0/kernel')!;
  const units = kernel.length / kernelRows;
  const shift = new Float64Array(units);
  const newKernel = Float32Array.from(kernel);
  for (const change of changes) {
    const feature = manifest.features[change.feature] as Numeric;
    // x_old = x_new · stdTimes + meanPlus / std_old.
    const plus = change.meanPlus / feature.std;
    for (let u = 0; u < units; u++) {
      const w = kernel[change.row * units + u];
      shift[u] += w * plus;
      newKernel[change.row * units + u] = w * change.stdTimes;
      if (change.indicatorRow !== undefined) {
        newKernel[change.indicatorRow * units + u] -= w * plus;
      }
    }
    feature.mean += change.meanPlus;
    feature.std *= change.stdTimes;
  }
  const price = manifest.tasks.find((t) => t.name === 'price')!;
  const oldPrice = { mean: price.targetMean, std: price.targetStd };
  price.targetMean += 3;
  price.targetStd *= 2;
  const weights = withWeights(artifact, (spec) => {
    const values = Float32Array.from(tensors.get(spec.name)!);
    if (spec.name === 'backbone/dense_0/kernel') {
      return newKernel;
    }
    if (spec.name === 'backbone/dense_0/bias') {
      return values.map((v, u) => v + shift[u]);
    }
    if (spec.name === 'backbone/dense_0/bn/moving_mean') {
      return values.map((v, u) => v - shift[u]);
    }
    // value = z · std + mean, the same before and after.
    if (spec.name === 'head/price/logits/kernel') {
      return values.map((v) => (v * oldPrice.std) / price.targetStd);
    }
    if (spec.name === 'head/price/logits/bias') {
      return values.map(
        (v) =>
          (v * oldPrice.std + oldPrice.mean - price.targetMean) /
          price.targetStd,
      );
    }

    return values;
  });

  return { ...weights, manifest };
}

const ROWS = [
  { x1: 0.5, x2: -1, colour: 'b', x3: 2 },
  { x1: -1.5, x2: null, colour: 'a', x3: 0.3 },
  { x1: 2, x2: 3.5, colour: 'zzz', x3: -2 },
];

async function outputsOf(artifact: Artifact): Promise<number[][]> {
  const predictor = await Predictor.fromArtifact(artifact);
  try {
    const { outputs, errors } = predictor.outputs(ROWS);
    expect(errors).toEqual([]);

    return outputs.map((o) => Array.from(o));
  } finally {
    predictor.model.dispose();
  }
}

function expectClose(actual: number[][], expected: number[][]) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, t) =>
    row.forEach((v, i) => expect(v).toBeCloseTo(expected[t][i], 4)),
  );
}

describe('merging sources standardised differently', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
  });

  afterAll(async () => {
    await stop();
  });

  async function mergeTwo(name: string, a: Artifact, b: Artifact) {
    await putArtifact(storage, `${name}/a.zip`, a);
    await putArtifact(storage, `${name}/b.zip`, b);
    const result = await mergeArtifacts(storage, {
      sources: [
        { key: `${name}/a.zip`, sampleCount: 100 },
        { key: `${name}/b.zip`, sampleCount: 300 },
      ],
      strategy: 'fedavg',
      outputKey: `${name}/merged.zip`,
    });
    const merged = await unzipArtifact(
      await readAll(await storage.get(`${name}/merged.zip`)),
    );

    return { result, merged };
  }

  it('re-expresses each source in pooled statistics, keeping its function', async () => {
    const a = await tinyArtifact(MODEL);
    const b = restated(a);
    // b computes what a computes, from other weights and statistics.
    expectClose(await outputsOf(b), await outputsOf(a));
    expect(tensorsOf(b).get('backbone/dense_0/kernel')).not.toEqual(
      tensorsOf(a).get('backbone/dense_0/kernel'),
    );

    const { merged, result } = await mergeTwo('plain', a, b);

    // Merging two versions of one function gives that function back.
    expectClose(await outputsOf(merged), await outputsOf(a));
    // Pooled as if the rows were pooled, weighted 1 : 3.
    const x2a = a.manifest.features[1] as Numeric;
    const x2 = merged.manifest.features[1] as Numeric;
    const mean = x2a.mean + 0.75 * 5;
    expect(x2.mean).toBeCloseTo(mean, 10);
    expect(x2.std).toBeCloseTo(
      Math.sqrt(
        0.25 * (x2a.std ** 2 + (x2a.mean - mean) ** 2) +
          0.75 * ((2 * x2a.std) ** 2 + (x2a.mean + 5 - mean) ** 2),
      ),
      10,
    );
    expect(result.manifest.features).toEqual(merged.manifest.features);
    const priceA = a.manifest.tasks.find((t) => t.name === 'price')!;
    const price = merged.manifest.tasks.find((t) => t.name === 'price')!;
    expect(price.targetMean).toBeCloseTo(priceA.targetMean + 0.75 * 3, 10);
    // x1 is the same everywhere and keeps its statistics exactly.
    expect(merged.manifest.features[0]).toEqual(a.manifest.features[0]);
  });

  it('takes the shift from the moving mean under batch normalisation', async () => {
    const a = await tinyArtifact({ ...MODEL, backbone: { batchNorm: true } });
    expect(specsOf(a).map((s) => s.name)).not.toContain(
      'backbone/dense_0/bias',
    );
    const b = restated(a);
    expectClose(await outputsOf(b), await outputsOf(a));

    const { merged } = await mergeTwo('norm', a, b);

    expectClose(await outputsOf(merged), await outputsOf(a));
  });

  it('finds the tabular rows among all inputs of the first layer', async () => {
    // colour as an embedding of width 2: the first layer reads the tabular
    // inputs x1, x2 and its indicator, x3 (rows 0 to 3), then the embedding
    // (rows 4 and 5).
    const a = await tinyArtifact({
      ...MODEL,
      features: [
        'x1',
        { column: 'x2', missingIndicator: true },
        { column: 'colour', encoding: 'embedding', embeddingDim: 2 },
        'x3',
      ],
    });
    expect(a.manifest.layout.tabularWidth).toBe(4);
    const b = restated(a, 3, 6);
    expectClose(await outputsOf(b), await outputsOf(a));

    const { merged } = await mergeTwo('embedded', a, b);

    expectClose(await outputsOf(merged), await outputsOf(a));
  });

  it('refuses, naming the feature, when a residual reads the inputs', async () => {
    // Width 8 = the tabular width: the residual adds the inputs themselves.
    const a = await tinyArtifact({
      ...MODEL,
      widths: [8],
      backbone: { residual: true },
    });
    const b = restated(a);

    const failure = mergeTwo('residual', a, b);

    await expect(failure).rejects.toThrow(IncompatibleModelsError);
    await expect(failure).rejects.toMatchObject({
      field: 'features[1]',
      message: expect.stringMatching(
        /^source 1: numeric x2 was standardised with mean /,
      ),
    });
    await expect(failure).rejects.toThrow(
      'layer backbone/dense_0/residual (Add) reads them',
    );
    expect(await storage.stat('residual/merged.zip')).toBeUndefined();
  });
});
