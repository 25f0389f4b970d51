import { Readable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ObjectStorage } from '#libs/storage';
import type { Artifact } from '#libs/training';

import type { NamedWeights } from './tensors';
import {
  deltaNorm,
  namedWeights,
  putArtifact,
  readAll,
  readWeightsFile,
  startStorage,
  tinyArtifact,
} from './testing/fixtures';
import { storeUpdate } from './validate';
import { encodeWeights } from './weights-file';

describe('storeUpdate', () => {
  let storage: ObjectStorage;
  let stop: () => Promise<void>;
  let global: Artifact;
  let globalWeights: NamedWeights;

  beforeAll(async () => {
    ({ storage, stop } = await startStorage());
    global = await tinyArtifact();
    globalWeights = namedWeights(global);
    await putArtifact(storage, 'global.zip', global);
  });

  afterAll(async () => {
    await stop();
  });

  const store = (
    key: string,
    update: NamedWeights | Buffer,
    options: { maxNorm?: number; clip?: boolean; maxBytes?: number } = {},
  ) =>
    storeUpdate(storage, {
      body: Readable.from([
        Buffer.isBuffer(update) ? update : encodeWeights(update),
      ]),
      key,
      globalKey: 'global.zip',
      ...options,
    });

  it('stores a good update as sent and reports its delta norm', async () => {
    const update = namedWeights(global, (v) => v + 0.01);
    const sent = encodeWeights(update);

    const result = await store('good', sent, { maxNorm: 10 });

    expect(result.clipped).toBe(false);
    expect(result.norm).toBeCloseTo(deltaNorm(update, globalWeights), 5);
    expect(result.sizeBytes).toBe(sent.length);
    expect((await readAll(await storage.get('good'))).equals(sent)).toBe(true);
  });

  it('rejects a NaN with its tensor and index and stores nothing', async () => {
    const update = namedWeights(global, (v, name, i) =>
      name === 'backbone/dense_0/bias' && i === 2 ? NaN : v,
    );

    await expect(store('nan', update)).rejects.toMatchObject({
      name: 'UpdateRejectedError',
      field: 'weights.backbone/dense_0/bias',
      reason: expect.stringMatching(/^non-finite value at index 2;/),
    });
    expect(await storage.stat('nan')).toBeUndefined();
  });

  it('rejects a delta over the bound unless asked to clip', async () => {
    const update = namedWeights(global, (v) => v + 1000);

    await expect(store('huge', update, { maxNorm: 10 })).rejects.toMatchObject({
      field: 'weights',
      reason: expect.stringMatching(/^update norm .* exceeds the bound 10;/),
    });
    expect(await storage.stat('huge')).toBeUndefined();
  });

  it('scales a delta over the bound down to it when clipping', async () => {
    const update = namedWeights(global, (v, _, i) => v + 1000 + i);

    const result = await store('clipped', update, { maxNorm: 10, clip: true });
    const stored = await readWeightsFile(storage, 'clipped');

    expect(result.clipped).toBe(true);
    expect(result.norm).toBeCloseTo(deltaNorm(update, globalWeights), 0);
    expect(result.scale).toBeCloseTo(10 / result.norm, 8);
    expect(deltaNorm(stored, globalWeights)).toBeCloseTo(10, 3);
    // The direction is kept: each stored delta is the sent one, scaled.
    const sent = update.get('backbone/dense_0/kernel')!.values;
    const back = stored.get('backbone/dense_0/kernel')!.values;
    const g = globalWeights.get('backbone/dense_0/kernel')!.values;
    expect(back[3] - g[3]).toBeCloseTo((sent[3] - g[3]) * result.scale, 4);
  });

  it('rejects a file missing a weight of the global model', async () => {
    const update = namedWeights(global);
    update.delete('head/buys/logits/bias');

    await expect(store('missing', update)).rejects.toMatchObject({
      field: 'weights.head/buys/logits/bias',
      reason: expect.stringMatching(/^missing/),
    });
    expect(await storage.stat('missing')).toBeUndefined();
  });

  it('rejects a file larger than maxBytes from its header', async () => {
    const sent = encodeWeights(namedWeights(global));

    await expect(
      store('large', sent, { maxBytes: sent.length - 1 }),
    ).rejects.toMatchObject({
      field: 'body',
      reason: `the file holds ${sent.length} bytes; the limit is ${sent.length - 1}.`,
    });
  });
});
