import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { exportArtifact } from './artifact';
import { selectBackend } from './backend';
import {
  importArtifactBackbone,
  importBackbone,
  importWeights,
  planBackboneImport,
} from './import-backbone';
import { decodeWeights, namedWeightsOf } from './named-weights';
import { Random } from './random';
import { datasetFrom, tabularDataset } from './testing/synthetic';
import { layersModelFiles } from './testing/layers-files';
import { train } from './train';

/** 12 inputs, dense 16 + BN + relu + dropout, dense 8 + BN + relu, 3 outputs. */
function mlp(): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 16, inputShape: [12] }));
  model.add(tf.layers.batchNormalization());
  model.add(tf.layers.activation({ activation: 'relu' }));
  model.add(tf.layers.dropout({ rate: 0.2 }));
  model.add(tf.layers.dense({ units: 8, useBias: false }));
  model.add(tf.layers.batchNormalization());
  model.add(tf.layers.activation({ activation: 'relu' }));
  model.add(tf.layers.dense({ units: 3, activation: 'softmax' }));

  return model;
}

/** Rows with numeric columns x0..x{width-1} and a binary target. */
function wide(width: number) {
  const random = new Random(3);
  const columns: Record<string, Float32Array> = {};
  for (let f = 0; f < width; f++) {
    columns[`x${f}`] = Float32Array.from({ length: 64 }, () => random.normal());
  }
  columns.y = columns.x0.map((v) => (v > 0 ? 1 : 0));

  return datasetFrom(columns, { y: 'boolean' });
}

describe('importBackbone', () => {
  let model: tf.Sequential;
  let file: { modelJson: string; weights: Uint8Array };

  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
    model = mlp();
    // Moving statistics and biases away from their initial values, so that
    // a wrong mapping shows.
    tf.tidy(() =>
      model.weights.forEach((w, i) =>
        w.write(
          tf.add(
            w.read(),
            tf.randomUniform(w.shape as number[], 0.1, 0.5, 'float32', i),
          ),
        ),
      ),
    );
    file = await layersModelFiles(model);
  });

  it('makes the same weights from tensors streamed in any order, each when ready', async () => {
    const plan = planBackboneImport(file.modelJson);
    const uploaded = decodeWeights(plan.specs, file.weights, {
      modelJson: 'modelJson',
      weights: 'weights',
    });
    const whole = importBackbone(file.modelJson, file.weights).weights;
    const stream = async (names: string[], log: string[]) => {
      const made: [string, Float32Array][] = [];
      const tensors = (async function* () {
        for (const name of names) {
          log.push(`in ${name}`);
          yield { name, values: uploaded.get(name)!.values };
        }
      })();
      for await (const weight of importWeights(plan, tensors)) {
        log.push(`out ${weight.name}`);
        made.push([weight.name, weight.values]);
      }

      return made;
    };
    const inOrder: string[] = [];
    const forward = await stream(
      plan.specs.map((s) => s.name),
      inOrder,
    );
    const backward = await stream(plan.specs.map((s) => s.name).reverse(), []);
    const first = plan.specs.find((s) => s.name.endsWith('kernel'))!.name;

    expect(forward.map(([name]) => name)).toEqual(
      plan.weights.map((w) => w.name),
    );
    for (const made of [forward, backward]) {
      for (const [name, values] of made) {
        expect(values, name).toEqual(whole.get(name)!.values);
      }
    }
    // The first kernel goes out before the next tensor is read.
    expect(inOrder.slice(0, 2)).toEqual([
      `in ${first}`,
      'out backbone/dense_0/kernel',
    ]);
  });

  it('refuses a streamed tensor with NaN, naming it', async () => {
    const plan = planBackboneImport(file.modelJson);
    const tensors = (async function* () {
      for (const spec of plan.specs) {
        yield {
          name: spec.name,
          values: new Float32Array(spec.shape.reduce((a, b) => a * b, 1)).fill(
            NaN,
          ),
        };
      }
    })();
    const drain = async () => {
      for await (const _ of importWeights(plan, tensors)) {
        // nothing
      }
    };

    await expect(drain()).rejects.toThrow(/holds NaN or infinite values/);
  });

  it('converts the hidden dense layers into an MLP backbone that computes the same', async () => {
    const imported = importBackbone(file.modelJson, file.weights);

    expect(imported.backbone).toEqual({
      kind: 'mlp',
      widths: [16, 8],
      activation: 'relu',
      batchNorm: true,
      dropout: 0.2,
    });
    expect(imported.inputWidth).toBe(12);
    expect([...imported.weights.keys()].sort()).toEqual(
      [
        'backbone/dense_0/kernel',
        'backbone/dense_0/bn/gamma',
        'backbone/dense_0/bn/beta',
        'backbone/dense_0/bn/moving_mean',
        'backbone/dense_0/bn/moving_variance',
        'backbone/dense_1/kernel',
        'backbone/dense_1/bn/gamma',
        'backbone/dense_1/bn/beta',
        'backbone/dense_1/bn/moving_mean',
        'backbone/dense_1/bn/moving_variance',
      ].sort(),
    );

    // A Chorus model on 12 numeric features, with the backbone frozen,
    // computes the uploaded model's hidden features.
    const data = wide(12);
    const result = await train({
      spec: {
        features: Array.from({ length: 12 }, (_, f) => `x${f}`),
        backbone: imported.backbone,
        tasks: [{ name: 'y', kind: 'binary', target: 'y' }],
      },
      data: { schema: data.schema, train: data.batches },
      epochs: 1,
      base: { weights: imported.weights },
      freeze: { kind: 'backbone' },
    });
    const x = tf.randomNormal([5, 12], 0, 1, 'float32', 7);
    const hidden = (m: tf.LayersModel, layer: tf.layers.Layer) =>
      tf
        .model({ inputs: m.inputs, outputs: layer.output as tf.SymbolicTensor })
        .predict(x) as tf.Tensor;
    const theirs = hidden(model, model.layers[6]);
    const ours = hidden(
      result.model.training,
      result.model.training.getLayer('backbone/dense_1/act'),
    );
    const [a, b] = [theirs.dataSync(), ours.dataSync()];
    tf.dispose([x, theirs, ours]);
    result.model.dispose();

    expect(b).toHaveLength(a.length);
    a.forEach((v, i) => expect(b[i]).toBeCloseTo(v, 4));
  });

  it('keeps a lone dense layer as the only hidden layer', async () => {
    const single = tf.sequential({
      layers: [
        tf.layers.dense({ units: 4, inputShape: [3], activation: 'tanh' }),
      ],
    });
    const { modelJson, weights } = await layersModelFiles(single);
    single.dispose();

    expect(importBackbone(modelJson, weights).backbone).toEqual({
      kind: 'mlp',
      widths: [4],
      activation: 'tanh',
    });
  });

  it('refuses a fine-tune whose features give another input width', async () => {
    const imported = importBackbone(file.modelJson, file.weights);
    const data = wide(9);

    await expect(
      train({
        spec: {
          features: Array.from({ length: 9 }, (_, f) => `x${f}`),
          backbone: imported.backbone,
          tasks: [{ name: 'y', kind: 'binary', target: 'y' }],
        },
        data: { schema: data.schema, train: data.batches },
        epochs: 1,
        base: { weights: imported.weights },
      }),
    ).rejects.toMatchObject({
      field: 'base',
      message: expect.stringContaining(
        'the base backbone takes 12 inputs; these features give 9',
      ),
    });
  });

  it('names a layer it cannot import', async () => {
    const cnn = tf.sequential({
      layers: [
        tf.layers.dense({ units: 4, inputShape: [16] }),
        tf.layers.reshape({ targetShape: [2, 2, 1] }),
        tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'conv2d_1' }),
      ],
    });
    const { modelJson, weights } = await layersModelFiles(cnn);
    cnn.dispose();

    expect(() => importBackbone(modelJson, weights)).toThrow(
      expect.objectContaining({
        field: expect.stringMatching(/^modelJson\.layers\[1\] \(reshape/),
        message: expect.stringContaining(
          'only dense, dropout, activation and batch normalization layers can be imported',
        ),
      }),
    );
  });

  it('refuses a branching functional model', async () => {
    const input = tf.input({ shape: [4] });
    const a = tf.layers.dense({ units: 3, name: 'a' }).apply(input);
    const b = tf.layers.dense({ units: 3, name: 'b' }).apply(input);
    const sum = tf.layers
      .dense({ units: 2, name: 'c' })
      .apply(
        tf.layers.add().apply([a, b] as tf.SymbolicTensor[]),
      ) as tf.SymbolicTensor;
    const branching = tf.model({ inputs: input, outputs: sum });
    const { modelJson, weights } = await layersModelFiles(branching);
    branching.dispose();

    expect(() => importBackbone(modelJson, weights)).toThrow(
      /one chain with one input/,
    );
  });

  it('refuses weights shorter than model.json declares', () => {
    const short = file.weights.slice(0, 1000);

    expect(() => importBackbone(file.modelJson, short)).toThrow(
      expect.objectContaining({
        field: 'weights',
        message: `weights: model.json declares ${file.weights.byteLength} bytes, got 1000.`,
      }),
    );
  });

  it('refuses weights other than float32', () => {
    const json = JSON.parse(file.modelJson);
    json.weightsManifest[0].weights[0].dtype = 'int32';

    expect(() => importBackbone(JSON.stringify(json), file.weights)).toThrow(
      /only unquantised float32 weights can be imported/,
    );
  });

  it('refuses NaN and infinite weights', () => {
    const bad = file.weights.slice();
    new DataView(bad.buffer).setFloat32(8, NaN, true);

    expect(() => importBackbone(file.modelJson, bad)).toThrow(
      /holds NaN or infinite values/,
    );
  });

  it.each([
    ['not json', 'this is not JSON'],
    [
      '{"format":"graph-model","modelTopology":{"node":[]}}',
      'not a TensorFlow.js layers model',
    ],
  ])('refuses an unknown format (%s)', (text, message) => {
    expect(() => importBackbone(text, new Uint8Array())).toThrow(
      expect.objectContaining({
        field: 'modelJson',
        message: expect.stringContaining(message),
      }),
    );
  });

  it('takes the backbone of a Chorus artifact', async () => {
    const data = tabularDataset(64, 4);
    const result = await train({
      spec: {
        features: ['x1', 'x2', 'x3'],
        backbone: { kind: 'mlp', widths: [6] },
        tasks: [{ name: 'buys', kind: 'binary', target: 'buys' }],
      },
      data: { schema: data.schema, train: data.batches },
      epochs: 1,
    });
    const artifact = await exportArtifact(result.model);
    const weights = namedWeightsOf(result.model);
    result.model.dispose();
    const imported = importArtifactBackbone(artifact);

    expect(imported.backbone).toEqual({ kind: 'mlp', widths: [6] });
    expect(imported.inputWidth).toBe(3);
    expect(imported.manifest?.tasks[0].name).toBe('buys');
    expect([...imported.weights.keys()].sort()).toEqual([
      'backbone/dense_0/bias',
      'backbone/dense_0/kernel',
    ]);
    expect(imported.weights.get('backbone/dense_0/kernel')!.values).toEqual(
      weights.get('backbone/dense_0/kernel')!.values,
    );
    expect(() =>
      importArtifactBackbone({ ...artifact, manifest: {} as never }),
    ).toThrow(expect.objectContaining({ field: 'artifact.manifest' }));
  });
});
