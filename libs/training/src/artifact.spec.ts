import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { artifactLayout, exportArtifact } from './artifact';
import { selectBackend } from './backend';
import { Predictor } from './predictor';
import { savedArtifacts } from './testing/layers-files';
import { datasetFrom, tabularDataset } from './testing/synthetic';
import { train, type TrainedModel } from './train';

const data = tabularDataset(400, 21);
const rows = [
  { x1: 0.5, x2: -1, x3: 0.2, colour: 'green' },
  { x1: '1.5', x2: null, x3: -0.3, colour: 'purple' },
  { x1: -2, x2: 0.4, x3: 1, colour: 'red' },
];

describe('artifact', () => {
  let trained: TrainedModel;

  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
    // x2 has missing values here, so it gets a missing indicator input.
    const x2 = data.columns.x2.slice();
    x2[3] = NaN;
    const withMissing = datasetFrom(
      { ...data.columns, x2 },
      { colour: 'categorical', segment: 'categorical', buys: 'boolean' },
      { colour: ['red', 'green', 'blue'], segment: ['a', 'b', 'c'] },
    );
    const result = await train({
      spec: {
        features: [
          'x1',
          'x2',
          'x3',
          { column: 'colour', encoding: 'embedding', embeddingDim: 2 },
        ],
        backbone: { kind: 'mlp', widths: [16], batchNorm: true, dropout: 0.1 },
        tasks: [
          { name: 'price', kind: 'regression', target: 'price' },
          { name: 'buys', kind: 'binary', target: 'buys' },
          { name: 'segment', kind: 'multiclass', target: 'segment' },
          { name: 'tags', kind: 'multilabel', target: ['tagA', 'tagB'] },
        ],
      },
      data: { schema: withMissing.schema, train: withMissing.batches },
      epochs: 3,
    });
    trained = result.model;
  });

  afterAll(() => trained.dispose());

  it('loads back to identical predictions', async () => {
    const artifact = await exportArtifact(trained);
    const stored = {
      manifest: JSON.parse(JSON.stringify(artifact.manifest)),
      modelJson: artifact.modelJson,
      weights: new Uint8Array(artifact.weights),
    };
    const loaded = await Predictor.fromArtifact(stored);
    const original = Predictor.fromTrained(trained);

    expect(loaded.predict(rows)).toEqual(original.predict(rows));
    expect(JSON.parse(artifact.modelJson).weightsManifest[0].paths).toEqual([
      'weights.bin',
    ]);
    loaded.dispose();
  });

  it('predicts per task from plain rows, with labels', () => {
    const { predictions, errors } =
      Predictor.fromTrained(trained).predict(rows);
    const first = predictions[0]!;

    expect(errors).toEqual([]);
    expect(Object.keys(first)).toEqual(['price', 'buys', 'segment', 'tags']);
    expect(first.price).toEqual({ value: expect.any(Number) });
    expect(['0', '1']).toContain((first.buys as { label: string }).label);
    expect(['a', 'b', 'c']).toContain(
      (first.segment as { label: string }).label,
    );
    expect(
      Object.keys((first.tags as { probabilities: object }).probabilities),
    ).toEqual(['tagA', 'tagB']);
  });

  it('reports bad fields per row and still predicts the good rows', () => {
    const { predictions, errors } = Predictor.fromTrained(trained).predict([
      rows[0],
      { x1: 'abc', x2: 1, x3: 2, colour: 'red' },
      { x1: 1, x2: 1, x3: { a: 1 }, colour: 'red' },
    ]);

    expect(predictions[0]).not.toBeNull();
    expect(predictions[1]).toBeNull();
    expect(predictions[2]).toBeNull();
    expect(errors).toEqual([
      { row: 1, field: 'x1', message: 'expected a number, got "abc".' },
      { row: 2, field: 'x3', message: 'expected a number, got {"a":1}.' },
    ]);
  });

  it('exports one task as the backbone plus its head', async () => {
    const artifact = await exportArtifact(trained, { task: 'segment' });
    const loaded = await Predictor.fromArtifact(artifact);
    const full = Predictor.fromTrained(trained).predict(rows).predictions;
    const single = loaded.predict(rows).predictions;
    const layers = JSON.parse(
      artifact.modelJson,
    ).modelTopology.config.layers.map((l: { name: string }) => l.name);

    expect(artifact.manifest.tasks.map((t) => t.name)).toEqual(['segment']);
    expect(single.map((p) => p!.segment)).toEqual(full.map((p) => p!.segment));
    expect(layers.some((n: string) => n.startsWith('head/price'))).toBe(false);
    expect(layers).toContain('backbone/dense_0');
    loaded.dispose();
  });

  it('lays out the weights as model.save writes them, a tensor at a time', async () => {
    const saved = await savedArtifacts(trained.inference);
    const layout = artifactLayout(trained);
    const pieces: Float32Array[] = [];
    for await (const values of layout.values()) {
      pieces.push(values);
    }
    const streamed = Buffer.concat(
      pieces.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)),
    );

    expect(layout.specs).toEqual(saved.weightSpecs);
    expect(layout.modelJson.modelTopology).toEqual(saved.modelTopology);
    expect(pieces).toHaveLength(layout.specs.length);
    expect(streamed.equals(Buffer.from(saved.weightData as ArrayBuffer))).toBe(
      true,
    );
    // Reading the values leaves the model's variables alive.
    expect(
      Predictor.fromTrained(trained).predict(rows).predictions,
    ).toHaveLength(3);
  });

  it('records preprocessing a client can reproduce', async () => {
    const { manifest } = await exportArtifact(trained);
    const x2 = manifest.features.find((f) => f.column === 'x2');

    expect(manifest.inputs).toEqual(['input/tabular', 'input/embed/colour']);
    expect(x2).toMatchObject({ kind: 'numeric', missingIndicator: true });
    expect(manifest.features.find((f) => f.column === 'colour')).toMatchObject({
      encoding: 'embedding',
      vocabulary: ['red', 'green', 'blue'],
    });
    // x1, x3 without indicator (1 each) + x2 with indicator (2) = 4.
    expect(manifest.layout.tabularWidth).toBe(4);
  });
});
