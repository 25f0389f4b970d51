import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportArtifact } from './artifact';
import { selectBackend } from './backend';
import { readCheckpointTensors, type Checkpoint } from './checkpoint';
import { backboneLayers } from './finetune';
import {
  namedWeightsOf,
  weightsFromArtifact,
  type NamedWeights,
} from './named-weights';
import { Predictor } from './predictor';
import type { TaskOptions } from './spec';
import {
  barImages,
  datasetFrom,
  FEATURES,
  tabularDataset,
} from './testing/synthetic';
import { train, type TrainResult } from './train';
import type { TrainOptions } from './train-options';

const data = tabularDataset(256, 31);
const PRICE: TaskOptions = {
  name: 'price',
  kind: 'regression',
  target: 'price',
};
const SEGMENT: TaskOptions = {
  name: 'segment',
  kind: 'multiclass',
  target: 'segment',
};
const BUYS: TaskOptions = { name: 'buys', kind: 'binary', target: 'buys' };
const BACKBONE = {
  kind: 'mlp' as const,
  widths: [16, 8],
  batchNorm: true,
  dropout: 0.1,
};
const rows = Array.from({ length: 20 }, (_, i) => ({
  x1: Math.sin(i),
  x2: Math.cos(i * 1.3),
  x3: (i % 7) - 3,
  colour: ['red', 'green', 'blue'][i % 3],
}));

function options(extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    spec: { features: FEATURES, backbone: BACKBONE, tasks: [PRICE, SEGMENT] },
    data: { schema: data.schema, train: data.batches },
    epochs: 2,
    batchSize: 32,
    shuffleBuffer: 64,
    optimizer: { kind: 'adamw', learningRate: 0.01 },
    ...extra,
  };
}

/** The fine-tune: tasks price, segment and a new buys head, 3 epochs. */
function fineTune(base: NamedWeights, extra: Partial<TrainOptions> = {}) {
  return options({
    spec: {
      features: FEATURES,
      backbone: BACKBONE,
      tasks: [PRICE, SEGMENT, BUYS],
    },
    epochs: 3,
    seed: 2,
    base: { weights: base },
    ...extra,
  });
}

function backboneOf(weights: NamedWeights): [string, Float32Array][] {
  return [...weights]
    .filter(([name]) => name.startsWith('backbone/'))
    .map(([name, { values }]) => [name, values]);
}

function checkpointWeights(checkpoint: Checkpoint): NamedWeights {
  const tensors = readCheckpointTensors(checkpoint);

  return new Map(
    [...tensors]
      .filter(([name]) => name.startsWith('weight/'))
      .map(([name, t]) => [
        name.slice('weight/'.length),
        { shape: t.shape, values: t.values.slice() },
      ]),
  );
}

describe('backboneLayers', () => {
  it('orders embeddings first, then convolutions, then dense blocks', () => {
    const names = [
      'backbone/dense_10/kernel',
      'backbone/dense_2/kernel',
      'backbone/conv_1/kernel',
      'backbone/conv_0/bn/gamma',
      'backbone/conv_0/kernel',
      'backbone/embed/city/kernel',
      'backbone/dense_2/projection/kernel',
      'head/price/logits/kernel',
    ];

    expect(backboneLayers(names)).toEqual([
      'backbone/embed/city',
      'backbone/conv_0',
      'backbone/conv_1',
      'backbone/dense_2',
      'backbone/dense_10',
    ]);
  });
});

describe('fine-tuning', () => {
  let base: TrainResult;
  let baseWeights: NamedWeights;

  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
    base = await train(options());
    baseWeights = namedWeightsOf(base.model);
  });

  afterAll(() => base.model.dispose());

  it('reads the same named weights from an artifact as from the model', async () => {
    const artifact = await exportArtifact(base.model);
    const read = weightsFromArtifact(artifact);

    expect([...read.keys()].sort()).toEqual([...baseWeights.keys()].sort());
    for (const [name, { shape, values }] of baseWeights) {
      expect(read.get(name)!.shape).toEqual(shape);
      expect(read.get(name)!.values).toEqual(values);
    }
  });

  it('keeps a frozen backbone, its batch-norm statistics included, bit-identical', async () => {
    const result = await train(
      fineTune(baseWeights, { freeze: { kind: 'backbone' } }),
    );
    const after = namedWeightsOf(result.model);
    result.model.dispose();

    const frozen = backboneOf(baseWeights);
    expect(frozen.map(([name]) => name)).toContain(
      'backbone/dense_0/bn/moving_mean',
    );
    for (const [name, values] of frozen) {
      expect(after.get(name)!.values, name).toEqual(values);
    }
    expect(after.get('head/price/logits/kernel')!.values).not.toEqual(
      baseWeights.get('head/price/logits/kernel')!.values,
    );
    expect(result.history.epochs.map((e) => e.trainableBackbone)).toEqual([
      false,
      false,
      false,
    ]);
  });

  it('freezes only the first layers with the layers policy', async () => {
    const result = await train(
      fineTune(baseWeights, { freeze: { kind: 'layers', count: 1 } }),
    );
    const after = namedWeightsOf(result.model);
    result.model.dispose();

    for (const [name, values] of backboneOf(baseWeights)) {
      if (name.startsWith('backbone/dense_0/')) {
        expect(after.get(name)!.values, name).toEqual(values);
      } else {
        expect(after.get(name)!.values, name).not.toEqual(values);
      }
    }
    expect(result.history.epochs[0].frozenLayers).toEqual(['backbone/dense_0']);
  });

  it('unfreezes the backbone exactly at the two-stage epoch, at a tenth of the rate', async () => {
    const snapshots: NamedWeights[] = [];
    const result = await train(
      fineTune(baseWeights, {
        epochs: 4,
        freeze: { kind: 'two-stage', frozenEpochs: 2 },
        onEpoch: ({ checkpoint }) => {
          snapshots.push(checkpointWeights(checkpoint));
        },
      }),
    );
    result.model.dispose();
    const kernel = 'backbone/dense_1/kernel';
    const original = baseWeights.get(kernel)!.values;

    expect(snapshots[0].get(kernel)!.values).toEqual(original);
    expect(snapshots[1].get(kernel)!.values).toEqual(original);
    expect(snapshots[2].get(kernel)!.values).not.toEqual(original);
    expect(snapshots[3].get(kernel)!.values).not.toEqual(
      snapshots[2].get(kernel)!.values,
    );
    expect(result.history.epochs.map((e) => e.trainableBackbone)).toEqual([
      false,
      false,
      true,
      true,
    ]);
    const rates = (epoch: number) =>
      result.history.steps.find((s) => s.epoch === epoch)!.learningRates;
    expect(rates(1)).toEqual({ backbone: 0.01, heads: 0.01 });
    expect(rates(2)).toEqual({ backbone: 0.001, heads: 0.01 });
  });

  it('resumes a two-stage run across the switch exactly', async () => {
    const run = (extra: Partial<TrainOptions> = {}) =>
      train(
        fineTune(baseWeights, {
          epochs: 4,
          freeze: { kind: 'two-stage', frozenEpochs: 2 },
          proximal: { mu: 0.1 },
          ...extra,
        }),
      );
    const whole = await run();
    const controller = new AbortController();
    const stopped = await run({
      signal: controller.signal,
      onEpoch: ({ epoch }) => {
        if (epoch === 1) {
          controller.abort();
        }
      },
    });
    stopped.model.dispose();
    const checkpoint = stopped.checkpoint!;
    const resumed = await run({
      resumeFrom: {
        manifest: JSON.parse(JSON.stringify(checkpoint.manifest)),
        data: new Uint8Array(checkpoint.data),
      },
    });

    expect(checkpoint.manifest.epoch).toBe(2);
    expect(resumed.history.epochs.map((e) => e.trainableBackbone)).toEqual([
      false,
      false,
      true,
      true,
    ]);
    const expected = namedWeightsOf(whole.model);
    for (const [name, { values }] of namedWeightsOf(resumed.model)) {
      expect(values, name).toEqual(expected.get(name)!.values);
    }
    whole.model.dispose();
    resumed.model.dispose();
  });

  it('leaves the predictions of frozen old heads bit-identical when a head is added', async () => {
    const result = await train(
      fineTune(baseWeights, {
        freeze: { kind: 'backbone' },
        freezeHeads: ['price', 'segment'],
        learningRates: { heads: 0.05 },
      }),
    );
    const before = Predictor.fromTrained(base.model).outputs(rows).outputs;
    const after = Predictor.fromTrained(result.model).outputs(rows).outputs;
    const added = namedWeightsOf(result.model).get('head/buys/logits/kernel');
    result.model.dispose();

    expect(after).toHaveLength(3);
    expect(after[0]).toEqual(before[0]);
    expect(after[1]).toEqual(before[1]);
    expect(added!.values.some((v) => v !== 0)).toBe(true);
    expect(result.history.epochs[0].frozenLayers).toEqual([
      'backbone/dense_0',
      'backbone/dense_1',
      'head/price',
      'head/segment',
    ]);
  });

  it('keeps the standardisation of the base on data of another scale', async () => {
    // The same rows with x1 and the price target on other scales: their
    // means and stds in this dataset differ from the base's.
    const { columns } = data;
    const shifted = datasetFrom(
      {
        ...columns,
        x1: (columns.x1 as Float32Array).map((v) => 3 * v + 2),
        price: (columns.price as Float32Array).map((v) => 2 * v + 10),
      },
      Object.fromEntries(data.schema.columns.map((c) => [c.name, c.type])),
      { colour: ['red', 'green', 'blue'], segment: ['a', 'b', 'c'] },
    );
    const artifact = await exportArtifact(base.model);
    const frozen = (statistics?: typeof artifact.manifest) =>
      fineTune(baseWeights, {
        data: { schema: shifted.schema, train: shifted.batches },
        base: { weights: baseWeights, statistics },
        freeze: { kind: 'backbone' },
        freezeHeads: ['price', 'segment'],
        epochs: 1,
      });
    const before = Predictor.fromTrained(base.model).outputs(rows).outputs;

    const kept = await train(frozen(artifact.manifest));
    const own = await train(frozen());
    const keptOutputs = Predictor.fromTrained(kept.model).outputs(rows);
    const ownOutputs = Predictor.fromTrained(own.model).outputs(rows);
    const x1 = (result: TrainResult) =>
      result.model.plan.features.find((f) => f.column === 'x1');
    const price = (result: TrainResult) =>
      result.model.plan.tasks.find((t) => t.name === 'price')!;
    kept.model.dispose();
    own.model.dispose();

    // Frozen weights reading inputs on their own scale predict as before.
    expect(keptOutputs.outputs[0]).toEqual(before[0]);
    expect(keptOutputs.outputs[1]).toEqual(before[1]);
    expect(x1(kept)).toEqual(x1(base));
    expect(price(kept).targetMean).toBe(price(base).targetMean);
    // With this data's statistics, the same frozen weights do not.
    expect(ownOutputs.outputs[0]).not.toEqual(before[0]);
    expect(price(own).targetStd).toBeCloseTo(2 * price(base).targetStd, 5);
  });

  it('reuses heads whose name and shapes match and starts others fresh', async () => {
    // "segment" becomes binary here: one output instead of three.
    const changed = fineTune(baseWeights, {
      spec: {
        features: FEATURES,
        backbone: BACKBONE,
        tasks: [PRICE, { name: 'segment', kind: 'binary', target: 'buys' }],
      },
      freeze: { kind: 'backbone' },
    });

    const result = await train({
      ...changed,
      freezeHeads: ['price'],
      epochs: 1,
    });
    result.model.dispose();

    expect(result.reusedHeads).toEqual(['price']);
    await expect(
      train({ ...changed, freezeHeads: ['segment'] }),
    ).rejects.toMatchObject({
      field: 'freezeHeads[0]',
      message: expect.stringContaining('no head for task "segment"'),
    });
  });

  it('names the first backbone layer whose shape differs from the base', async () => {
    const narrower = fineTune(baseWeights, {
      spec: {
        features: FEATURES,
        backbone: { ...BACKBONE, widths: [16, 4] },
        tasks: [PRICE],
      },
    });

    await expect(train(narrower)).rejects.toMatchObject({
      name: 'TrainingConfigError',
      field: 'base',
      message:
        'base: layer backbone/dense_1/kernel: the base has shape [16,8], ' +
        'this model needs [16,4].',
    });
  });

  it('trains fresh input layers under newInputs and loads the rest', async () => {
    const fewer = (newInputs: boolean) =>
      fineTune(baseWeights, {
        spec: {
          features: ['x1', 'x2'],
          backbone: BACKBONE,
          tasks: [PRICE],
        },
        base: { weights: baseWeights, newInputs },
        freeze: { kind: 'layers', count: 2 },
      });

    await expect(train(fewer(false))).rejects.toMatchObject({
      field: 'base',
      message: expect.stringMatching(
        /the base backbone takes 7 inputs; these features give 2/,
      ),
    });
    const result = await train(fewer(true));
    const after = namedWeightsOf(result.model);
    result.model.dispose();

    expect(after.get('backbone/dense_0/kernel')!.shape).toEqual([2, 16]);
    expect(after.get('backbone/dense_1/kernel')!.values).toEqual(
      baseWeights.get('backbone/dense_1/kernel')!.values,
    );
    expect(after.get('head/price/logits/kernel')!.values).not.toEqual(
      baseWeights.get('head/price/logits/kernel')!.values,
    );
  });

  it('pulls weights towards the base harder with a larger proximal mu', async () => {
    const shifted = tabularDataset(256, 77);
    const distance = async (mu: number) => {
      const result = await train(
        fineTune(baseWeights, {
          spec: {
            features: FEATURES,
            backbone: BACKBONE,
            tasks: [BUYS],
          },
          data: { schema: shifted.schema, train: shifted.batches },
          epochs: 3,
          proximal: { mu },
        }),
      );
      const after = namedWeightsOf(result.model);
      result.model.dispose();
      let sum = 0;
      for (const [name, values] of backboneOf(baseWeights)) {
        if (!/moving_/.test(name)) {
          after
            .get(name)!
            .values.forEach((v, i) => (sum += (v - values[i]) ** 2));
        }
      }

      return { sum, steps: result.history.steps };
    };
    const free = await distance(0);
    const pulled = await distance(1);

    expect(pulled.sum).toBeLessThan(free.sum * 0.8);
    expect(pulled.steps.at(-1)!.proximal).toBeGreaterThan(0);
    expect(free.steps.at(-1)!.proximal).toBeUndefined();
  });

  it('keeps frozen convolution blocks and their batch norm of a CNN bit-identical', async () => {
    const images = barImages(128, 5);
    const cnn = (extra: Partial<TrainOptions> = {}) =>
      options({
        spec: {
          features: ['image'],
          backbone: {
            kind: 'cnn',
            blocks: [{ filters: 4 }, { filters: 4 }],
            batchNorm: true,
            dense: [8],
          },
          tasks: [{ name: 'vertical', kind: 'binary', target: 'vertical' }],
        },
        data: { schema: images.schema, train: images.batches },
        ...extra,
      });
    const first = await train(cnn());
    const weights = namedWeightsOf(first.model);
    first.model.dispose();
    const tuned = await train(
      cnn({
        base: { weights },
        freeze: { kind: 'layers', count: 1 },
        spec: {
          ...cnn().spec,
          tasks: [{ name: 'half', kind: 'multiclass', target: 'half' }],
        },
      }),
    );
    const after = namedWeightsOf(tuned.model);
    tuned.model.dispose();

    for (const [name, values] of backboneOf(weights)) {
      if (name.startsWith('backbone/conv_0/')) {
        expect(after.get(name)!.values, name).toEqual(values);
      } else {
        expect(after.get(name)!.values, name).not.toEqual(values);
      }
    }
    expect(after.has('backbone/conv_0/bn/moving_variance')).toBe(true);
  });

  it('keeps tf.memory().numTensors flat across a fine-tune', async () => {
    const before = tf.memory().numTensors;
    const result = await train(
      fineTune(baseWeights, {
        freeze: { kind: 'two-stage', frozenEpochs: 1 },
        proximal: { mu: 0.5 },
        learningRates: { backbone: 0.002, heads: 0.02 },
        balancing: { strategy: 'pcgrad' },
      }),
    );
    result.model.dispose();

    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([
    [{ freeze: { kind: 'backbone' } }, 'freeze'],
    [{ proximal: { mu: 0.1 } }, 'proximal'],
    [{ freezeHeads: ['price'] }, 'freezeHeads'],
  ] as [Partial<TrainOptions>, string][])(
    'refuses fine-tuning options without a base (%o)',
    async (extra, field) => {
      await expect(train(options(extra))).rejects.toMatchObject({
        name: 'TrainingConfigError',
        field,
      });
    },
  );

  it.each([
    [{ freeze: { kind: 'layers', count: 0 } }, 'freeze.count'],
    [{ freeze: { kind: 'layers', count: 3 } }, 'freeze.count'],
    [{ freeze: { kind: 'two-stage', frozenEpochs: 0 } }, 'freeze.frozenEpochs'],
    [
      {
        freeze: {
          kind: 'two-stage',
          frozenEpochs: 1,
          unfrozenLearningRate: -1,
        },
      },
      'freeze.unfrozenLearningRate',
    ],
    [{ freeze: { kind: 'everything' } }, 'freeze.kind'],
    [{ learningRates: { heads: 0 } }, 'learningRates.heads'],
    [{ learningRates: { backbone: Infinity } }, 'learningRates.backbone'],
    [{ proximal: { mu: -1 } }, 'proximal.mu'],
    [{ proximal: { mu: NaN } }, 'proximal.mu'],
    [{ freezeHeads: ['missing'] }, 'freezeHeads[0]'],
    [
      { freeze: { kind: 'backbone' }, freezeHeads: ['price', 'segment'] },
      'freezeHeads',
    ],
  ] as [Partial<TrainOptions>, string][])(
    'names the bad fine-tuning field (%o)',
    async (extra, field) => {
      const before = tf.memory().numTensors;
      const run = options({ base: { weights: baseWeights }, ...extra });

      await expect(train(run)).rejects.toMatchObject({
        name: 'TrainingConfigError',
        field,
      });
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
