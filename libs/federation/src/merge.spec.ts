import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ObjectStorage } from '#libs/storage';
import {
  loadArtifactModel,
  unzipArtifact,
  type Artifact,
} from '#libs/training';

import { mergeArtifacts, type MergeOptions } from './merge';
import {
  BUYS,
  filled,
  PRICE,
  putArtifact,
  readAll,
  SEGMENT,
  startStorage,
  tensorsOf,
  tinyArtifact,
  withWeights,
} from './testing/fixtures';

/**
 * `artifact` with the standardisation statistics of `like`, features and
 * regression targets: for tests of the averaging itself, which re-expressing
 * sources in pooled statistics would otherwise change.
 */
function withStatisticsOf(artifact: Artifact, like: Artifact): Artifact {
  const { manifest } = artifact;
  const tasks = manifest.tasks.map((task) => {
    const other = like.manifest.tasks.find((t) => t.name === task.name);

    return other
      ? { ...task, targetMean: other.targetMean, targetStd: other.targetStd }
      : task;
  });

  return {
    ...artifact,
    manifest: {
      ...manifest,
      features: structuredClone(like.manifest.features),
      tasks,
    },
  };
}

describe('mergeArtifacts', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;
  let base: Artifact;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
    base = await tinyArtifact();
  });

  afterAll(async () => {
    await stop();
  });

  /** Stores versions of `base` whose weight values are value(k, i). */
  async function versions(
    name: string,
    value: ((i: number) => number)[],
  ): Promise<string[]> {
    return Promise.all(
      value.map(async (v, k) => {
        const key = `${name}/source-${k}.zip`;
        await putArtifact(
          storage,
          key,
          withWeights(base, (spec) => filled(spec, v)),
        );

        return key;
      }),
    );
  }

  async function merged(options: MergeOptions) {
    const result = await mergeArtifacts(storage, options);
    const artifact = await unzipArtifact(
      await readAll(await storage.get(options.outputKey)),
    );

    return { result, artifact, tensors: tensorsOf(artifact) };
  }

  const kernel = (tensors: Map<string, Float32Array>) =>
    Array.from(tensors.get('backbone/dense_0/kernel')!);

  it('fedavg weighs each version by its sample count', async () => {
    const keys = await versions('fedavg', [
      (i) => i,
      (i) => 10 + i,
      (i) => 40 + i,
    ]);

    const { tensors, result } = await merged({
      sources: [
        { key: keys[0], sampleCount: 100 },
        { key: keys[1], sampleCount: 100 },
        { key: keys[2], sampleCount: 200 },
      ],
      strategy: 'fedavg',
      outputKey: 'fedavg/merged.zip',
    });

    // (0 + 10 + 2 * 40) / 4 = 22.5 above each index.
    expect(kernel(tensors)).toEqual(kernel(tensors).map((_, i) => 22.5 + i));
    expect(result.tasks).toEqual({ buys: 3 });
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await storage.stat('fedavg/merged.zip'))?.size).toBe(
      result.sizeBytes,
    );
  });

  it('merges weights larger than one block coordinate by coordinate', async () => {
    // A 400 x 250 kernel: 100,000 values, more than a block of 65,536.
    const wide = await tinyArtifact({ widths: [400, 250] });
    const keys = await Promise.all(
      [0, 1, 2].map(async (k) => {
        const key = `blocks/source-${k}.zip`;
        const values = withWeights(wide, (spec) =>
          filled(spec, (i) => (i % 1000) * (k + 1)),
        );
        await putArtifact(storage, key, values);

        return key;
      }),
    );

    const { tensors } = await merged({
      sources: keys.map((key) => ({ key, sampleCount: 10 })),
      strategy: 'median',
      outputKey: 'blocks/merged.zip',
    });

    // The median of (i % 1000) times 1, 2 and 3 is twice it, everywhere.
    const big = tensors.get('backbone/dense_1/kernel')!;
    expect(big.length).toBe(100_000);
    expect(big.every((v, i) => v === (i % 1000) * 2)).toBe(true);
    for (const values of tensors.values()) {
      expect(values.every((v, i) => v === (i % 1000) * 2)).toBe(true);
    }
  });

  it('lets an explicit weight override the sample count', async () => {
    const keys = await versions('weight', [() => 0, () => 30]);

    const { tensors } = await merged({
      sources: [
        { key: keys[0], sampleCount: 1, weight: 2 },
        { key: keys[1], sampleCount: 1000, weight: 1 },
      ],
      strategy: 'fedavg',
      outputKey: 'weight/merged.zip',
    });

    // (2 * 0 + 1 * 30) / 3 = 10.
    expect(new Set(kernel(tensors))).toEqual(new Set([10]));
  });

  it('uniform takes the plain mean', async () => {
    const keys = await versions('uniform', [() => 0, () => 10, () => 40]);

    const { tensors } = await merged({
      sources: keys.map((key, k) => ({ key, sampleCount: 1 + 100 * k })),
      strategy: 'uniform',
      outputKey: 'uniform/merged.zip',
    });

    // 50 / 3, in float32.
    expect(kernel(tensors)[0]).toBeCloseTo(50 / 3, 5);
  });

  it('median takes the middle value of each coordinate', async () => {
    const keys = await versions('median', [(i) => i, (i) => 100 - i, () => 5]);

    const { tensors } = await merged({
      sources: keys.map((key) => ({ key })),
      strategy: 'median',
      outputKey: 'median/merged.zip',
    });

    // Sorted per index: i, 5, 100 - i (or 5, i, 100 - i) for i <= 50.
    expect(kernel(tensors)).toEqual(
      kernel(tensors).map((_, i) => Math.max(i, 5)),
    );
  });

  it('trimmed-mean drops trimRatio of the values at each end', async () => {
    const constants = [-100, 1, 2, 3, 1000];
    const keys = await versions(
      'trimmed',
      constants.map((c) => () => c),
    );

    const trimmed = await merged({
      sources: keys.map((key) => ({ key })),
      strategy: 'trimmed-mean',
      trimRatio: 0.2,
      outputKey: 'trimmed/merged.zip',
    });
    const untrimmed = await merged({
      sources: keys.map((key) => ({ key })),
      strategy: 'trimmed-mean',
      outputKey: 'trimmed/default.zip',
    });

    // 0.2 * 5 = 1 value off each end: (1 + 2 + 3) / 3 = 2.
    expect(new Set(kernel(trimmed.tensors))).toEqual(new Set([2]));
    // The default 0.1 * 5 rounds down to none: 906 / 5 = 181.2.
    expect(kernel(untrimmed.tensors)[0]).toBeCloseTo(181.2, 4);
  });

  it('writes an artifact that loads and predicts', async () => {
    const a = await tinyArtifact({ seed: 1 });
    const b = withStatisticsOf(await tinyArtifact({ seed: 2 }), a);
    await putArtifact(storage, 'load/a.zip', a);
    await putArtifact(storage, 'load/b.zip', b);

    const { artifact, tensors } = await merged({
      sources: [
        { key: 'load/a.zip', sampleCount: 1 },
        { key: 'load/b.zip', sampleCount: 3 },
      ],
      strategy: 'fedavg',
      outputKey: 'load/merged.zip',
    });
    const model = await loadArtifactModel(artifact);
    const input = tf.tensor2d([[0.5, -1, 2]]);
    const output = model.predict(input) as tf.Tensor;
    const [p] = await output.data();
    tf.dispose([input, output]);
    model.dispose();

    const kA = tensorsOf(a).get('backbone/dense_0/kernel')!;
    const kB = tensorsOf(b).get('backbone/dense_0/kernel')!;
    kernel(tensors).forEach((v, i) => {
      expect(v).toBeCloseTo(0.25 * kA[i] + 0.75 * kB[i], 6);
    });
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1);
  });

  it('merges the backbone over all, each head over the versions with its task', async () => {
    const a = await tinyArtifact({ tasks: [BUYS, PRICE], seed: 1 });
    const b = withStatisticsOf(
      await tinyArtifact({ tasks: [BUYS, SEGMENT], seed: 2 }),
      a,
    );
    const c = withStatisticsOf(
      await tinyArtifact({ tasks: [PRICE], seed: 3 }),
      a,
    );
    const segment = tensorsOf(b);
    const constant = (artifact: Artifact, value: number) =>
      withWeights(artifact, (spec) =>
        spec.name.startsWith('head/segment/')
          ? segment.get(spec.name)!
          : filled(spec, () => value),
      );
    await putArtifact(storage, 'heads/a.zip', constant(a, 1));
    await putArtifact(storage, 'heads/b.zip', constant(b, 2));
    await putArtifact(storage, 'heads/c.zip', constant(c, 6));

    const { result, artifact, tensors } = await merged({
      sources: ['a', 'b', 'c'].map((s) => ({ key: `heads/${s}.zip` })),
      strategy: 'uniform',
      outputKey: 'heads/merged.zip',
    });
    const model = await loadArtifactModel(artifact);
    const input = tf.tensor2d([[0.5, -1, 2]]);
    const outputs = model.predict(input) as tf.Tensor[];
    const shapes = outputs.map((o) => o.shape);
    tf.dispose([input, ...outputs]);
    model.dispose();

    expect(result.manifest.tasks.map((t) => t.name)).toEqual([
      'buys',
      'price',
      'segment',
    ]);
    expect(result.tasks).toEqual({ buys: 2, price: 2, segment: 1 });
    // Backbone: (1 + 2 + 6) / 3; buys: (1 + 2) / 2; price: (1 + 6) / 2.
    expect(kernel(tensors)[0]).toBe(3);
    expect(tensors.get('head/buys/logits/kernel')![0]).toBe(1.5);
    expect(tensors.get('head/price/logits/kernel')![0]).toBe(3.5);
    expect(tensors.get('head/segment/logits/kernel')).toEqual(
      segment.get('head/segment/logits/kernel'),
    );
    expect(shapes).toEqual([
      [1, 1],
      [1, 1],
      [1, 3],
    ]);
  });

  it('names the first backbone layer whose shape differs', async () => {
    const narrow = await tinyArtifact({ widths: [4, 2] });
    const wide = await tinyArtifact({ widths: [4, 3] });
    await putArtifact(storage, 'shape/narrow.zip', narrow);
    await putArtifact(storage, 'shape/wide.zip', wide);

    const failure = mergeArtifacts(storage, {
      sources: [
        { key: 'shape/narrow.zip' },
        { key: 'shape/narrow.zip' },
        { key: 'shape/wide.zip' },
      ],
      strategy: 'uniform',
      outputKey: 'shape/merged.zip',
    });

    await expect(failure).rejects.toMatchObject({
      name: 'IncompatibleModelsError',
      field: 'weights.backbone/dense_1/kernel',
      message:
        'source 3: layer backbone/dense_1/kernel has shape [4,3], ' +
        'source 1 has [4,2].',
    });
    expect(await storage.stat('shape/merged.zip')).toBeUndefined();
  });

  it('names the first input feature that differs', async () => {
    const ordered = await tinyArtifact({ features: ['x1', 'x2', 'x3'] });
    const swapped = await tinyArtifact({ features: ['x1', 'x3', 'x2'] });
    await putArtifact(storage, 'features/a.zip', ordered);
    await putArtifact(storage, 'features/b.zip', swapped);

    const failure = mergeArtifacts(storage, {
      sources: [{ key: 'features/a.zip' }, { key: 'features/b.zip' }],
      strategy: 'uniform',
      outputKey: 'features/merged.zip',
    });

    await expect(failure).rejects.toMatchObject({
      field: 'features[1]',
      message:
        'source 2: input feature 1 is numeric x3, source 1 has numeric x2.',
    });
  });

  it('asks for sample counts when fedavg has none', async () => {
    const failure = mergeArtifacts(storage, {
      sources: [{ key: 'fedavg/source-0.zip' }],
      strategy: 'fedavg',
      outputKey: 'none.zip',
    });

    await expect(failure).rejects.toMatchObject({
      details: { field: 'sources[0].sampleCount' },
    });
  });
});
