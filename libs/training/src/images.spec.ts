import { beforeAll, describe, expect, it } from 'vitest';

import { exportArtifact } from './artifact';
import { augment } from './augmentation';
import { selectBackend } from './backend';
import { Predictor } from './predictor';
import { inputLayout, type FeaturePlan } from './preprocessing';
import { Random } from './random';
import { barImages } from './testing/synthetic';
import { train } from './train';

describe('images', () => {
  beforeAll(async () => {
    await selectBackend({ prefer: ['wasm', 'cpu'] });
  });

  it('a CNN backbone learns two image tasks with augmentation on', async () => {
    const data = barImages(600, 31);
    const validation = barImages(200, 32);
    const result = await train({
      spec: {
        features: ['image'],
        backbone: {
          kind: 'cnn',
          blocks: [{ filters: 8 }, { filters: 16 }],
          dense: [32],
        },
        tasks: [
          { name: 'vertical', kind: 'binary', target: 'vertical' },
          { name: 'half', kind: 'multiclass', target: 'half' },
        ],
      },
      data: {
        schema: data.schema,
        train: data.batches,
        validation: validation.batches,
      },
      epochs: 6,
      optimizer: { kind: 'adam', learningRate: 0.005 },
      augmentation: { image: { brightness: 0.1, contrast: 0.1 } },
    });
    const last = result.history.epochs.at(-1)!.validation;
    const image = data.columns.image as Uint8Array;
    const rows = [0, 1, 2].map((i) => ({
      image: Array.from(image.subarray(i * 64, (i + 1) * 64)),
    }));
    const loaded = await Predictor.fromArtifact(
      await exportArtifact(result.model),
    );
    const direct = Predictor.fromTrained(result.model).predict(rows);
    const reloaded = loaded.predict(rows);
    loaded.dispose();
    result.model.dispose();

    expect(reloaded).toEqual(direct);
    expect(direct.errors).toEqual([]);
    expect(last.vertical.accuracy).toBeGreaterThan(0.9);
    expect(last.half.accuracy).toBeGreaterThan(0.85);
  });

  it('flips, crops and rotates images without changing their labels', () => {
    const plan: FeaturePlan = {
      kind: 'image',
      column: 'image',
      height: 3,
      width: 3,
      channels: 1,
      scale: 1 / 255,
    };
    const layout = inputLayout([plan]);
    const original = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const flipped = { size: 1, embeddings: [], image: original.slice() };
    const labels = [{ values: Float32Array.of(1), mask: Float32Array.of(1) }];
    // Random draws < 0.5 flip; find a seed whose first draw flips.
    let seed = 0;
    while (new Random(seed).next() >= 0.5) {
      seed++;
    }
    augment(
      { image: { flip: true } },
      [plan],
      layout,
      flipped,
      labels,
      new Random(seed),
    );

    expect(Array.from(flipped.image)).toEqual([3, 2, 1, 6, 5, 4, 9, 8, 7]);
    expect(labels[0].values[0]).toBe(1);

    const rotated = { size: 1, embeddings: [], image: original.slice() };
    augment(
      { image: { rotation: 0 } },
      [plan],
      layout,
      rotated,
      labels,
      new Random(1),
    );
    expect(Array.from(rotated.image)).toEqual(Array.from(original));

    const cropped = { size: 1, embeddings: [], image: original.slice() };
    augment(
      { image: { cropPadding: 1 } },
      [plan],
      layout,
      cropped,
      labels,
      new Random(4),
    );
    const kept = Array.from(cropped.image).filter((v) => v !== 0);
    // A shift by at most one pixel keeps at least 4 of the 9 pixels.
    expect(kept.length).toBeGreaterThanOrEqual(4);
    expect(kept.every((v) => original.includes(v))).toBe(true);
  });
});
